#!/usr/bin/env python3
"""A small, deterministic stand-in for a training program (Python 3 standard library only).

What it does
  1. Reads every file under the dataset folder ($TRAINCTL_DATA_DIR, or --data), in sorted
     relative-path order, and hashes path and bytes into a SHA-256 "data digest".
  2. "Trains" for --steps steps (default 200): the state starts as SHA-256("init" + digest)
     and each step replaces it with SHA-256(state + digest + step). The final state therefore
     depends on every input byte and on every step having run exactly once, in order.
  3. Every --checkpoint-every steps (default 20) writes $TRAINCTL_CHECKPOINT_DIR/ckpt-STEP.json
     ({"step", "state", "data_digest"}), atomically: a temporary file in the same folder,
     fsync, then rename. STEP is zero-padded to 8 digits so names sort by step.
  4. With $TRAINCTL_RESUME_FROM (a checkpoint file, or a folder: its latest ckpt-*.json) it
     continues at the checkpoint's step + 1. A checkpoint made from other data is refused.
  5. At the end writes model.json ({"steps", "state", "data_digest"}) into $TRAINCTL_OUTPUT_DIR,
     or to the file given by --out (atomically too).

Progress goes to stdout, one line per step ("step N/M state=…"), flushed at once.
--step-seconds S sleeps S seconds per step so that a test can stop it half way.
--fail-at STEP exits with code 7 when that step is reached (for failure tests).

Signals
  SIGTERM (and SIGINT): the step in progress completes, a checkpoint of the last completed step
  is written, and the program exits 0 without writing the model.

Exit codes
  0  finished, or stopped by SIGTERM/SIGINT after writing a checkpoint
  2  bad arguments (argparse), or a resume checkpoint that is unreadable or from other data
  3  the dataset folder is missing or holds no files
  7  --fail-at was reached
"""

import argparse
import hashlib
import json
import os
import signal
import sys
import time

EXIT_OK = 0
EXIT_BAD_ARGS = 2
EXIT_DATA_MISSING = 3
EXIT_INJECTED_FAILURE = 7


def log(message):
    print(message, flush=True)


def data_digest(data_dir):
    files = []
    for dirpath, _dirnames, filenames in os.walk(data_dir):
        for name in filenames:
            full = os.path.join(dirpath, name)
            files.append((os.path.relpath(full, data_dir).replace(os.sep, "/"), full))
    files.sort()
    digest = hashlib.sha256()
    total = 0
    for rel, full in files:
        digest.update(rel.encode("utf-8") + b"\0")
        with open(full, "rb") as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                total += len(chunk)
        digest.update(b"\0")
    return digest.hexdigest(), len(files), total


def step_state(state, digest, step):
    return hashlib.sha256(f"{state}:{digest}:{step}".encode("ascii")).hexdigest()


def write_json_atomic(path, value):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def latest_checkpoint(path):
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.startswith("ckpt-") and n.endswith(".json"))
        if names:
            return os.path.join(path, names[-1])
    return None


def parse_args(argv):
    p = argparse.ArgumentParser(description="trainctl example training program")
    p.add_argument("--data", default=os.environ.get("TRAINCTL_DATA_DIR"), help="dataset folder (default $TRAINCTL_DATA_DIR)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--checkpoint-every", type=int, default=20)
    p.add_argument("--checkpoint-dir", default=os.environ.get("TRAINCTL_CHECKPOINT_DIR"), help="default $TRAINCTL_CHECKPOINT_DIR")
    p.add_argument("--resume-from", default=os.environ.get("TRAINCTL_RESUME_FROM") or None, help="default $TRAINCTL_RESUME_FROM")
    p.add_argument("--out", default=None, help="model file (default $TRAINCTL_OUTPUT_DIR/model.json)")
    p.add_argument("--step-seconds", type=float, default=0.0)
    p.add_argument("--fail-at", type=int, default=None)
    args = p.parse_args(argv)
    if args.steps < 1 or args.checkpoint_every < 1 or args.step_seconds < 0:
        p.error("--steps and --checkpoint-every must be >= 1, --step-seconds >= 0")
    if not args.data:
        p.error("no dataset: set TRAINCTL_DATA_DIR or pass --data")
    if not args.checkpoint_dir:
        p.error("no checkpoint folder: set TRAINCTL_CHECKPOINT_DIR or pass --checkpoint-dir")
    if args.out is None:
        out_dir = os.environ.get("TRAINCTL_OUTPUT_DIR")
        if not out_dir:
            p.error("no output: set TRAINCTL_OUTPUT_DIR or pass --out")
        args.out = os.path.join(out_dir, "model.json")
    return args


def main(argv):
    args = parse_args(argv)

    stop = {"requested": None}

    def on_signal(signum, _frame):
        stop["requested"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if not os.path.isdir(args.data):
        log(f"error: dataset folder {args.data} does not exist")
        return EXIT_DATA_MISSING
    digest, count, size = data_digest(args.data)
    if count == 0:
        log(f"error: dataset folder {args.data} holds no files")
        return EXIT_DATA_MISSING
    log(f"data {count} files {size} bytes digest={digest}")

    def checkpoint(step, state):
        path = os.path.join(args.checkpoint_dir, f"ckpt-{step:08d}.json")
        write_json_atomic(path, {"step": step, "state": state, "data_digest": digest})
        log(f"checkpoint step={step} path={path}")

    step = 0
    state = hashlib.sha256(f"init:{digest}".encode("ascii")).hexdigest()
    if args.resume_from:
        ckpt = latest_checkpoint(args.resume_from)
        if ckpt is None:
            log(f"error: no checkpoint at {args.resume_from}")
            return EXIT_BAD_ARGS
        try:
            with open(ckpt, encoding="utf-8") as f:
                saved = json.load(f)
            step, state = int(saved["step"]), str(saved["state"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            log(f"error: unreadable checkpoint {ckpt}: {err}")
            return EXIT_BAD_ARGS
        if saved.get("data_digest") != digest:
            log(f"error: checkpoint {ckpt} was made from other data")
            return EXIT_BAD_ARGS
        log(f"resumed from {ckpt} at step {step}")

    while step < args.steps:
        if stop["requested"]:
            log(f"received {stop['requested']} at step {step}; checkpointing")
            checkpoint(step, state)
            return EXIT_OK
        nxt = step + 1
        if args.fail_at is not None and nxt == args.fail_at:
            log(f"error: injected failure at step {nxt}")
            return EXIT_INJECTED_FAILURE
        state = step_state(state, digest, nxt)
        step = nxt
        log(f"step {step}/{args.steps} state={state[:16]}")
        if step % args.checkpoint_every == 0:
            checkpoint(step, state)
        if args.step_seconds and step < args.steps and not stop["requested"]:
            time.sleep(args.step_seconds)

    if step % args.checkpoint_every != 0:
        checkpoint(step, state)
    write_json_atomic(args.out, {"steps": step, "state": state, "data_digest": digest})
    log(f"done steps={step} state={state} model={args.out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
