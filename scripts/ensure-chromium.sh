#!/usr/bin/env bash
# Debian's chromium for the Web UI browser test (test/run-ui.test.ts drives it with playwright-core;
# playwright's own browser downloads are not used). Installs it with apt-get when it is missing and
# this is root on a machine with apt-get; otherwise says what is missing and exits 1, and the
# browser test fails with the same message. Idempotent: a machine that has it returns at once.
set -euo pipefail
CHROMIUM="${TRAINCTL_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium is missing ($CHROMIUM) and cannot be installed here (needs root and apt-get): install Debian's chromium package" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! (timeout 300 apt-get update -qq && timeout 900 apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends chromium fonts-liberation) >/dev/null 2>&1; then
  echo "apt-get could not install chromium" >&2
  exit 1
fi
[ -x "$CHROMIUM" ] || { echo "chromium was installed but $CHROMIUM is not there" >&2; exit 1; }
