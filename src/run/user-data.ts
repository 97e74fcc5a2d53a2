import { z } from 'zod';

/**
 * The EC2 user-data that turns a fresh instance into a trainctl host: a bash script that installs
 * Node and trainctl and runs `trainctl worker --host INSTANCE_ID --root ROOT` as a systemd service.
 *
 * User-data is readable by anything on the instance (IMDS) and by anyone with console or
 * DescribeInstanceAttribute access, so it carries no secret: a Temporal API key is named (an SSM
 * parameter or a file on the instance) and read on the instance at boot.
 *
 * Every value is validated against a narrow character set and written single-quoted, so no value
 * can end the quote or start a command. The parameters sit in one delimited block that
 * {@link parseUserData} reads back (the instance simulator uses it to recognise trainctl hosts).
 */

/** The marker on the script's second line (the first must be the `#!` line cloud-init runs). */
export const USER_DATA_MARKER = '# trainctl-bootstrap v1';
/** EC2's limit on user-data, counted before base64 encoding. */
export const USER_DATA_MAX_BYTES = 16 * 1024;

const BEGIN = '# --- trainctl parameters (generated; no secrets) ---';
const END = '# --- end of trainctl parameters ---';

const safe = (re: RegExp, what: string) => z.string().regex(re, `must be ${what} (letters, digits and . _ - only; no quotes, spaces or shell characters)`);
const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute path of letters, digits and . _ - /')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..');

export const BootstrapParamsSchema = z
  .object({
    /** trainctl from the npm registry at this version … */
    version: z
      .string()
      .regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'must be a semver version such as 0.1.0')
      .optional(),
    /** … or from a tarball (`npm pack` output) at this https URL. */
    tarballUrl: z
      .string()
      .regex(
        /^https:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._~/%=&+-]*)?(\?[A-Za-z0-9._~/%=&+-]*)?$/,
        'must be an https URL without quotes, spaces or shell characters',
      )
      .optional(),
    /** The host's root folder (`--root`), where its volumes, data and training logs live. */
    root: absolutePath,
    temporalAddress: z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port'),
    temporalNamespace: safe(/^[A-Za-z0-9._-]+$/, 'a namespace'),
    /** The orchestration task queue (the host worker polls `trainctl-host-INSTANCE_ID` itself). */
    taskQueue: safe(/^[A-Za-z0-9._-]+$/, 'a task queue name'),
    region: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d+$/, 'must be an AWS region such as us-east-1'),
    temporalTls: z.boolean().optional(),
    /** Name of an SSM SecureString holding the Temporal API key (read on the instance). */
    apiKeySsmParameter: safe(/^\/?[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/, 'an SSM parameter name').optional(),
    /** Path of a file on the instance (e.g. baked into the AMI) holding the Temporal API key. */
    apiKeyFile: absolutePath.optional(),
    /** The Node.js release installed when the AMI has none ≥ 22. */
    nodeVersion: z
      .string()
      .regex(/^(2[2-9]|[3-9]\d)\.\d+\.\d+$/, 'must be a Node.js version ≥ 22, such as 22.12.0')
      .default('22.12.0'),
  })
  .strict()
  .refine((p) => (p.version === undefined) !== (p.tarballUrl === undefined), { message: 'give exactly one of version and tarballUrl', path: ['version'] })
  .refine((p) => !(p.apiKeySsmParameter && p.apiKeyFile), { message: 'give at most one of apiKeySsmParameter and apiKeyFile', path: ['apiKeyFile'] });

export type BootstrapParams = z.infer<typeof BootstrapParamsSchema>;
export type BootstrapParamsInput = z.input<typeof BootstrapParamsSchema>;

/** Shell variable of each parameter, in the order they are written. */
const VARS = {
  version: 'TRAINCTL_VERSION',
  tarballUrl: 'TRAINCTL_TARBALL_URL',
  root: 'TRAINCTL_ROOT',
  temporalAddress: 'TEMPORAL_ADDRESS',
  temporalNamespace: 'TEMPORAL_NAMESPACE',
  taskQueue: 'TRAINCTL_TASK_QUEUE',
  region: 'AWS_REGION',
  temporalTls: 'TEMPORAL_TLS',
  apiKeySsmParameter: 'TEMPORAL_API_KEY_SSM_PARAMETER',
  apiKeyFile: 'TEMPORAL_API_KEY_FILE',
  nodeVersion: 'NODE_VERSION',
} as const satisfies Record<keyof BootstrapParams, string>;

export class UserDataTooLargeError extends Error {
  constructor(readonly bytes: number) {
    super(`user-data is ${bytes} bytes; EC2 accepts at most ${USER_DATA_MAX_BYTES}`);
    this.name = 'UserDataTooLargeError';
  }
}

/** The bootstrap script for these parameters (validated; throws a ZodError naming the field). */
export function generateUserData(input: BootstrapParamsInput): string {
  const p = BootstrapParamsSchema.parse(input);
  const value = (k: keyof BootstrapParams): string => {
    const v = p[k];
    return v === undefined ? '' : String(v);
  };
  const params = (Object.keys(VARS) as (keyof BootstrapParams)[]).map((k) => `${VARS[k]}='${value(k)}'`);
  const script = [
    '#!/bin/bash',
    USER_DATA_MARKER,
    '# Turns this EC2 instance into a trainctl host: installs Node.js (>= 22) and trainctl, reads the',
    '# instance id from IMDSv2 and runs `trainctl worker --host INSTANCE_ID --root TRAINCTL_ROOT` as the',
    '# systemd service trainctl-worker, polling the Temporal task queue trainctl-host-INSTANCE_ID.',
    '# Generated by trainctl (src/run/user-data.ts). It holds no secrets: user-data is readable through',
    '# the instance metadata and the EC2 console. A Temporal API key is read here, at boot, from the SSM',
    '# parameter or the file named below, into a root-only file the service loads.',
    '# Log: /var/log/trainctl-bootstrap.log',
    'set -euo pipefail',
    '',
    BEGIN,
    ...params,
    END,
    '',
    'exec >>/var/log/trainctl-bootstrap.log 2>&1',
    'echo "trainctl bootstrap starting $(date -u +%FT%TZ)"',
    '',
    '# IMDSv2: a session token (PUT), then the instance id with it.',
    'IMDS=http://169.254.169.254/latest',
    'TOKEN=$(curl -fsS --retry 5 -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")',
    'INSTANCE_ID=$(curl -fsS --retry 5 -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/instance-id")',
    '',
    "# Node.js: the AMI's own if it is >= 22, else the official build, checked against its SHASUMS256.",
    'PREFIX=/opt/trainctl',
    'mkdir -p "$PREFIX"',
    'NODE_BIN=$(command -v node || true)',
    'if [ -z "$NODE_BIN" ] || [ "$("$NODE_BIN" -p \'process.versions.node.split(".")[0]\')" -lt 22 ]; then',
    '  case "$(uname -m)" in x86_64) ARCH=x64 ;; aarch64) ARCH=arm64 ;; *) echo "unsupported machine $(uname -m)"; exit 1 ;; esac',
    '  DIST="node-v$NODE_VERSION-linux-$ARCH"',
    '  cd /tmp',
    '  curl -fsSLO --retry 5 "https://nodejs.org/dist/v$NODE_VERSION/$DIST.tar.xz"',
    '  curl -fsSL --retry 5 "https://nodejs.org/dist/v$NODE_VERSION/SHASUMS256.txt" | grep " $DIST.tar.xz\\$" | sha256sum -c -',
    '  rm -rf "$PREFIX/node" && mkdir -p "$PREFIX/node"',
    '  tar -xJf "$DIST.tar.xz" -C "$PREFIX/node" --strip-components=1',
    '  NODE_BIN="$PREFIX/node/bin/node"',
    'fi',
    'NODE_DIR=$(dirname "$NODE_BIN")',
    '',
    '# trainctl, from the registry at a pinned version or from a tarball.',
    'if [ -n "$TRAINCTL_TARBALL_URL" ]; then PACKAGE="$TRAINCTL_TARBALL_URL"; else PACKAGE="trainctl@$TRAINCTL_VERSION"; fi',
    'PATH="$NODE_DIR:$PATH" "$NODE_DIR/npm" install --global --prefix "$PREFIX/app" "$PACKAGE"',
    '',
    '# A system user runs the worker and the training it starts; the root folder is its disk.',
    'id trainctl >/dev/null 2>&1 || useradd --system --home-dir "$TRAINCTL_ROOT" --shell /sbin/nologin trainctl',
    'mkdir -p "$TRAINCTL_ROOT" /etc/trainctl',
    'chown trainctl: "$TRAINCTL_ROOT"',
    '',
    "# The worker's settings (no secrets), then the API key, if one is named, into a root-only file.",
    'umask 077',
    '{',
    '  echo "INSTANCE_ID=$INSTANCE_ID"',
    '  echo "TRAINCTL_ROOT=$TRAINCTL_ROOT"',
    '  echo "TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS"',
    '  echo "TEMPORAL_NAMESPACE=$TEMPORAL_NAMESPACE"',
    '  echo "TRAINCTL_TASK_QUEUE=$TRAINCTL_TASK_QUEUE"',
    '  echo "AWS_REGION=$AWS_REGION"',
    '  echo "TRAINCTL_AWS=real"',
    '  if [ -n "$TEMPORAL_TLS" ]; then echo "TEMPORAL_TLS=$TEMPORAL_TLS"; fi',
    '  echo "PATH=$NODE_DIR:/usr/local/bin:/usr/bin:/bin"',
    '} >/etc/trainctl/worker.env',
    'rm -f /etc/trainctl/secrets.env',
    'if [ -n "$TEMPORAL_API_KEY_SSM_PARAMETER" ]; then',
    '  KEY=$(aws ssm get-parameter --region "$AWS_REGION" --with-decryption --name "$TEMPORAL_API_KEY_SSM_PARAMETER" --query Parameter.Value --output text)',
    '  printf "TEMPORAL_API_KEY=%s\\n" "$KEY" >/etc/trainctl/secrets.env',
    'elif [ -n "$TEMPORAL_API_KEY_FILE" ]; then',
    '  printf "TEMPORAL_API_KEY=%s\\n" "$(cat "$TEMPORAL_API_KEY_FILE")" >/etc/trainctl/secrets.env',
    'fi',
    'unset KEY',
    'umask 022',
    '',
    '# KillMode=process: a restart of the worker must not kill the training it started (that runs in',
    '# its own process group and is re-attached by the next worker).',
    "cat >/etc/systemd/system/trainctl-worker.service <<'UNIT'",
    '[Unit]',
    'Description=trainctl host worker',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'User=trainctl',
    'EnvironmentFile=/etc/trainctl/worker.env',
    'EnvironmentFile=-/etc/trainctl/secrets.env',
    'ExecStart=/opt/trainctl/app/bin/trainctl worker --host ${INSTANCE_ID} --root ${TRAINCTL_ROOT}',
    'Restart=always',
    'RestartSec=5',
    'KillMode=process',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    'UNIT',
    'systemctl daemon-reload',
    'systemctl enable --now trainctl-worker.service',
    'echo "trainctl worker started for $INSTANCE_ID"',
    '',
  ].join('\n');
  const bytes = Buffer.byteLength(script, 'utf8');
  if (bytes > USER_DATA_MAX_BYTES) throw new UserDataTooLargeError(bytes);
  return script;
}

/** user-data as RunInstances wants it (the EC2 API takes base64; the SDK does not encode it). */
export function encodeUserData(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/**
 * The parameters of a trainctl bootstrap script, or undefined for any other user-data (another
 * tool's, a trainctl marker with a broken or invalid parameter block, more than the EC2 limit).
 */
export function parseUserData(text: string): BootstrapParams | undefined {
  if (Buffer.byteLength(text, 'utf8') > USER_DATA_MAX_BYTES) return undefined;
  const lines = text.split(/\r?\n/);
  if (!lines[0]?.startsWith('#!') || lines[1] !== USER_DATA_MARKER) return undefined;
  const begin = lines.indexOf(BEGIN);
  const end = lines.indexOf(END, begin + 1);
  if (begin < 0 || end < 0) return undefined;
  const byVar = new Map<string, string>();
  for (const line of lines.slice(begin + 1, end)) {
    const m = /^([A-Z0-9_]+)='([^']*)'$/.exec(line);
    if (!m) return undefined;
    byVar.set(m[1]!, m[2]!);
  }
  const raw: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(VARS)) {
    const v = byVar.get(name);
    if (v === undefined || v === '') continue;
    raw[key] = key === 'temporalTls' ? v === 'true' : v;
  }
  const parsed = BootstrapParamsSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}
