/**
 * `npm run bench`: trainctl next to s5cmd, aws-cli, rclone and fio on one real S3 server
 * (versitygw, POSIX backend on local disk), every workload in one process tree, tools alternating,
 * and the results written as markdown, JSON and an SVG plot. See bench/README.md.
 *
 *   node --import tsx bench/run.ts [--reps 3] [--only a,b,...] [--scale 1] [--tools s5cmd,aws,rclone,trainctl,fio]
 *                                  [--out bench/results] [--data-dir /var/tmp] [--temporal HOST:PORT]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateVolumeCommand, DescribeVolumesCommand, EC2Client, waitUntilVolumeAvailable } from '@aws-sdk/client-ec2';
import { repoRoot, startMoto, startTemporalDevServer, stopAll } from '../src/dev/services.js';
import { startVersitygw, VERSITYGW_VERSION } from '../src/dev/versitygw.js';
import { startFaultProxy, type FaultProxy } from '../src/dev/fault-proxy.js';
import { ensureBenchTools, type PeerName, type ToolInfo } from './tools.js';
import * as trainctl from './trainctl-driver.js';
import { writeResults, type Figure, type Results } from './report.js';

const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    only: { type: 'string' },
    scale: { type: 'string', default: '1' },
    tools: { type: 'string', default: 's5cmd,aws,rclone,trainctl,fio' },
    out: { type: 'string', default: join(repoRoot, 'bench', 'results') },
    'data-dir': { type: 'string', default: '/var/tmp' },
    temporal: { type: 'string' },
  },
});
const reps = Number(values.reps);
const scale = Number(values.scale);
if (!(reps >= 1) || !(scale > 0)) throw new Error('--reps must be ≥ 1 and --scale > 0');
const ALL = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] as const;
type Workload = (typeof ALL)[number];
const only = new Set<Workload>((values.only?.split(',').map((s) => s.trim()) ?? ALL) as Workload[]);
for (const w of only) if (!ALL.includes(w)) throw new Error(`--only: unknown workload ${w} (a-h)`);
const wantTools = new Set(values.tools.split(',').map((s) => s.trim()));

/** The settings every tool gets in its "matched" variant, where it has the knob. */
const MATCHED = { partConcurrency: 8, partSizeMiB: 16, fileConcurrency: 16 } as const;
const sizes = {
  bigFile: Math.max(1, Math.round(2048 * scale)) * MiB,
  smallCount: Math.max(4, Math.round(10_000 * scale)),
  smallSize: 64 * 1024,
  mediumCount: Math.max(2, Math.round(1_000 * scale)),
  mediumSize: 4 * MiB,
  volumes: Math.max(2, Math.round(20 * Math.min(1, scale * 4))),
  signals: Math.max(100, Math.round(10_000 * Math.min(1, scale * 4))),
};

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const figures: Figure[] = [];

/** Runs one workload; a failure is written into the results' notes and the next workload runs. */
/** An error and its causes, one line: a workflow's failure says only "Workflow execution failed" until its cause is read. */
function causes(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}

async function guard(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const msg = err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
    log(`workload ${name} failed: ${msg}`);
    notes.push(`${name} FAILED: ${msg.slice(0, 500)}`);
  }
}
const notes: string[] = [];
function record(f: Omit<Figure, 'values'> & { value?: number }): void {
  let fig = figures.find((x) => x.workload === f.workload && x.label === f.label && x.tool === f.tool && x.variant === f.variant);
  if (!fig)
    figures.push(
      (fig = {
        workload: f.workload,
        label: f.label,
        tool: f.tool,
        variant: f.variant,
        unit: f.unit,
        better: f.better,
        values: [],
        ...(f.flags ? { flags: f.flags } : {}),
      }),
    );
  if (f.value !== undefined) fig.values.push(f.value);
  if (f.notRun) fig.notRun = f.notRun;
}

// ---------- data ----------

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let left = bytes; left > 0; left -= 4 * MiB) {
    if (!out.write(randomBytes(Math.min(4 * MiB, left)))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

function treeBytes(path: string): { bytes: number; files: number } {
  const st = statSync(path);
  if (st.isFile()) return { bytes: st.size, files: 1 };
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(path, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) {
      bytes += statSync(join(e.parentPath, e.name)).size;
      files++;
    }
  }
  return { bytes, files };
}

// ---------- running peers ----------

const running = new Set<ReturnType<typeof spawn>>();
process.on('exit', () => running.forEach((c) => c.kill('SIGKILL')));

/** Runs a peer's command; a command still running after `timeoutMs` is killed and fails. */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30 * 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-3000)));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${cmd} ${args.slice(0, 3).join(' ')}… ${signal ? `killed (${signal}, over ${timeoutMs / 1000} s)` : `exited ${code}`}: ${err.trim().split('\n').slice(-2).join(' ')}`,
          ),
        );
    });
  });
}

function procRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function timed(fn: () => Promise<unknown>, samplePids: number[] = []): Promise<{ seconds: number; peaks: number[] }> {
  const peaks = samplePids.map(procRss);
  const t = setInterval(() => samplePids.forEach((p, i) => (peaks[i] = Math.max(peaks[i]!, procRss(p)))), 25);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(t);
  }
  return { seconds: (performance.now() - t0) / 1000, peaks: samplePids.map((p, i) => Math.max(peaks[i]!, procRss(p))) };
}

interface Ctx {
  endpoint: string;
  keys: { accessKey: string; secretKey: string };
  bucket: string;
  vgwData: string;
  work: string;
  tools: Map<PeerName, ToolInfo>;
  temporalAddress: string;
  client?: Awaited<ReturnType<typeof trainctl.connectClient>>['client'];
  worker?: trainctl.TrainctlWorker;
  host?: { worker: trainctl.TrainctlWorker; id: string; root: string };
}

type Variant = 'matched' | 'defaults';
interface Mover {
  tool: string;
  variant: Variant;
  flags: string;
  notRun?: string;
  /** Copies `src` (a file or a folder) to s3://bucket/key (a key or a prefix ending in /). */
  up(src: string, key: string, dir: boolean): Promise<void>;
  down(key: string, dst: string, dir: boolean): Promise<void>;
  /** Pids whose peak RSS is recorded under (e). */
  rssPids?: () => { name: string; pid: number }[];
}

function peerEnv(ctx: Ctx, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: ctx.work,
    AWS_ACCESS_KEY_ID: ctx.keys.accessKey,
    AWS_SECRET_ACCESS_KEY: ctx.keys.secretKey,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    ...extra,
  };
}

function s5cmdMover(ctx: Ctx, variant: Variant): Mover {
  const t = ctx.tools.get('s5cmd');
  const g = ['--endpoint-url', ctx.endpoint, ...(variant === 'matched' ? ['--numworkers', String(MATCHED.fileConcurrency)] : [])];
  const c = variant === 'matched' ? ['--concurrency', String(MATCHED.partConcurrency), '--part-size', String(MATCHED.partSizeMiB)] : [];
  const bin = t?.path ?? 's5cmd';
  const env = peerEnv(ctx);
  const s3 = (k: string) => `s3://${ctx.bucket}/${k}`;
  return {
    tool: 's5cmd',
    variant,
    flags: `s5cmd ${g.slice(2).join(' ')} cp ${c.join(' ')}`.replace(/\s+/g, ' '),
    ...(t?.notRun || !t?.path ? { notRun: t?.notRun ?? 'not installed' } : {}),
    up: (src, key, dir) => exec(bin, [...g, 'cp', ...c, dir ? `${src}/*` : src, s3(key)], env),
    down: (key, dst, dir) => exec(bin, [...g, 'cp', ...c, dir ? `${s3(key)}*` : s3(key), dir ? `${dst}/` : dst], env),
  };
}

function awsMover(ctx: Ctx, variant: Variant): Mover {
  const t = ctx.tools.get('aws');
  const cfg = join(ctx.work, `aws-config-${variant}`);
  // aws-cli has one pool for files and parts: max_concurrent_requests is both.
  writeFileSync(
    cfg,
    variant === 'matched'
      ? `[default]\nregion = us-east-1\ns3 =\n  multipart_chunksize = ${MATCHED.partSizeMiB}MB\n  max_concurrent_requests = ${MATCHED.fileConcurrency}\n`
      : `[default]\nregion = us-east-1\n`,
  );
  const env = peerEnv(ctx, { AWS_CONFIG_FILE: cfg });
  const bin = t?.path ?? 'aws';
  const common = ['--endpoint-url', ctx.endpoint, '--only-show-errors', '--no-progress'];
  const s3 = (k: string) => `s3://${ctx.bucket}/${k}`;
  return {
    tool: 'aws-cli',
    variant,
    flags:
      variant === 'matched'
        ? `aws s3 cp [--recursive]; config s3.multipart_chunksize=${MATCHED.partSizeMiB}MB, s3.max_concurrent_requests=${MATCHED.fileConcurrency}`
        : 'aws s3 cp [--recursive] (defaults: 8 MiB parts, 10 requests)',
    ...(t?.notRun || !t?.path ? { notRun: t?.notRun ?? 'not installed' } : {}),
    up: (src, key, dir) => exec(bin, ['s3', 'cp', ...(dir ? ['--recursive'] : []), src, s3(key), ...common], env),
    down: (key, dst, dir) => exec(bin, ['s3', 'cp', ...(dir ? ['--recursive'] : []), s3(key), dst, ...common], env),
  };
}

function rcloneMover(ctx: Ctx, variant: Variant): Mover {
  const t = ctx.tools.get('rclone');
  const env = peerEnv(ctx, {
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: ctx.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: ctx.keys.accessKey,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: ctx.keys.secretKey,
    RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG: join(ctx.work, 'rclone-none.conf'),
  });
  const m =
    variant === 'matched'
      ? [
          '--transfers',
          String(MATCHED.fileConcurrency),
          '--s3-upload-concurrency',
          String(MATCHED.partConcurrency),
          '--s3-chunk-size',
          `${MATCHED.partSizeMiB}M`,
          '--multi-thread-streams',
          String(MATCHED.partConcurrency),
        ]
      : [];
  const bin = t?.path ?? 'rclone';
  const r = (k: string) => `bench:${ctx.bucket}/${k}`;
  return {
    tool: 'rclone',
    variant,
    flags: `rclone copy (a folder) / copyto (a file) ${m.join(' ')}`.trim(),
    ...(t?.notRun || !t?.path ? { notRun: t?.notRun ?? 'not installed' } : {}),
    up: (src, key, dir) => exec(bin, [dir ? 'copy' : 'copyto', ...m, src, r(dir ? key.replace(/\/$/, '') : key)], env),
    down: (key, dst, dir) => exec(bin, [dir ? 'copy' : 'copyto', ...m, r(dir ? key.replace(/\/$/, '') : key), dst], env),
  };
}

function trainctlMover(ctx: Ctx, variant: Variant, via: 'orchestration' | 'host' | 's5cmd engine'): Mover {
  const tuning = { ...(variant === 'matched' ? MATCHED : {}), ...(via === 's5cmd engine' ? { engine: 's5cmd' as const } : {}) };
  const s3 = (k: string) => ({ s3: `s3://${ctx.bucket}/${k}` });
  const tq = ctx.worker?.taskQueue ?? '';
  const notRun =
    !ctx.client || !ctx.worker
      ? 'trainctl worker not started'
      : via === 'host' && !ctx.host
        ? 'host worker not started'
        : via === 's5cmd engine' && !ctx.tools.get('s5cmd')?.path
          ? 's5cmd not installed'
          : undefined;
  const local = (p: string): trainctl.Location => (via === 'host' && ctx.host ? { host: ctx.host.id, path: p.slice(ctx.host.root.length + 1) } : { local: p });
  const tunedFlags =
    variant === 'matched'
      ? ` concurrency=${MATCHED.partConcurrency} partSizeMiB=${MATCHED.partSizeMiB} fileConcurrency=${MATCHED.fileConcurrency}`
      : ' (defaults)';
  return {
    tool: via === 'host' ? 'trainctl (host worker)' : via === 's5cmd engine' ? 'trainctl (engine s5cmd)' : 'trainctl',
    variant,
    flags: `transfer workflow${via === 's5cmd engine' ? ' engine=s5cmd' : ''}${tunedFlags}`,
    ...(notRun ? { notRun } : {}),
    up: async (src, key) => void (await trainctl.runTransfer(ctx.client!, tq, local(src), s3(key), tuning)),
    down: async (key, dst) => void (await trainctl.runTransfer(ctx.client!, tq, s3(key), local(dst), tuning)),
    // With engine s5cmd the bytes go through s5cmd's own process: the worker's memory says nothing of (e).
    rssPids: () =>
      via === 's5cmd engine'
        ? []
        : via === 'host' && ctx.host
          ? [{ name: 'host worker', pid: ctx.host.worker.pid }]
          : ctx.worker
            ? [{ name: 'orchestration worker', pid: ctx.worker.pid }]
            : [],
  };
}

function movers(ctx: Ctx, withHost: boolean): Mover[] {
  const out: Mover[] = [];
  for (const v of ['matched', 'defaults'] as const) {
    if (wantTools.has('s5cmd')) out.push(s5cmdMover(ctx, v));
    if (wantTools.has('aws')) out.push(awsMover(ctx, v));
    if (wantTools.has('rclone')) out.push(rcloneMover(ctx, v));
    if (wantTools.has('trainctl')) {
      out.push(trainctlMover(ctx, v, 'orchestration'));
      if (withHost) out.push(trainctlMover(ctx, v, 'host'));
      // The orchestrator's cost over s5cmd itself: the same workflow with --engine s5cmd.
      if (wantTools.has('s5cmd')) out.push(trainctlMover(ctx, v, 's5cmd engine'));
    }
  }
  return out;
}

/** Removes an uploaded key or prefix straight from versitygw's POSIX folder (fast, outside the timing). */
function dropObjects(ctx: Ctx, key: string): void {
  rmSync(join(ctx.vgwData, ctx.bucket, key.replace(/\/$/, '')), { recursive: true, force: true });
}

/** (a)(b)(c): one dataset up and down with every mover, the order rotated each repetition. */
async function transferWorkload(ctx: Ctx, workload: Workload, title: string, dataset: string, dir: boolean, withHost: boolean): Promise<void> {
  const expected = treeBytes(dataset);
  const list = movers(ctx, withHost);
  for (const m of list)
    if (m.notRun)
      for (const label of ['upload', 'download'])
        record({ workload, label: `${title} ${label}`, tool: m.tool, variant: m.variant, unit: 'MiB/s', better: 'higher', flags: m.flags, notRun: m.notRun });
  const runnable = list.filter((m) => !m.notRun);
  for (let rep = 0; rep < reps; rep++) {
    const order = runnable.map((_, i) => runnable[(i + rep) % runnable.length]!);
    for (const m of order) {
      if (m.notRun) continue;
      const key = `${workload}/${m.tool.replace(/\W+/g, '-')}-${m.variant}-${rep}${dir ? '/' : ''}`;
      const dst = join(withHost && ctx.host ? ctx.host.root : ctx.work, `down-${workload}-${rep}`);
      if (dir) mkdirSync(dst, { recursive: true });
      const pids = m.rssPids?.() ?? [];
      let up: Awaited<ReturnType<typeof timed>>;
      let down: Awaited<ReturnType<typeof timed>>;
      try {
        log(`${workload} rep ${rep + 1}/${reps}: ${m.tool} (${m.variant}) up`);
        up = await timed(
          () => m.up(dataset, key, dir),
          pids.map((p) => p.pid),
        );
        log(`${workload} rep ${rep + 1}/${reps}: ${m.tool} (${m.variant}) down`);
        down = await timed(
          () => m.down(key, dst, dir),
          pids.map((p) => p.pid),
        );
      } catch (err) {
        // A tool that fails is reported as failed (with its error), never as a figure; the others go on.
        const why = `failed: ${causes(err)}`.replace(/\|/g, '/').slice(0, 400);
        log(`${m.tool} (${m.variant}) ${why}`);
        m.notRun = why;
        for (const label of ['upload', 'download'])
          record({ workload, label: `${title} ${label}`, tool: m.tool, variant: m.variant, unit: 'MiB/s', better: 'higher', flags: m.flags, notRun: why });
        rmSync(dst, { recursive: true, force: true });
        dropObjects(ctx, key);
        continue;
      }
      const got = treeBytes(dst);
      if (got.bytes !== expected.bytes || got.files !== expected.files)
        throw new Error(`${m.tool} (${m.variant}) downloaded ${got.files} files / ${got.bytes} bytes, expected ${expected.files} / ${expected.bytes}`);
      rmSync(dst, { recursive: true, force: true });
      dropObjects(ctx, key);
      const mib = expected.bytes / MiB;
      record({
        workload,
        label: `${title} upload`,
        tool: m.tool,
        variant: m.variant,
        unit: 'MiB/s',
        better: 'higher',
        flags: m.flags,
        value: mib / up.seconds,
      });
      record({
        workload,
        label: `${title} download`,
        tool: m.tool,
        variant: m.variant,
        unit: 'MiB/s',
        better: 'higher',
        flags: m.flags,
        value: mib / down.seconds,
      });
      if (only.has('e') && (workload === 'a' || workload === 'b')) {
        pids.forEach((p, i) => {
          record({
            workload: 'e',
            label: `peak RSS of the ${p.name} during (${workload}) upload`,
            tool: m.tool,
            variant: m.variant,
            unit: 'MiB',
            better: 'lower',
            value: up.peaks[i]! / MiB,
          });
          record({
            workload: 'e',
            label: `peak RSS of the ${p.name} during (${workload}) download`,
            tool: m.tool,
            variant: m.variant,
            unit: 'MiB',
            better: 'lower',
            value: down.peaks[i]! / MiB,
          });
        });
      }
    }
  }
}

/** (d): kill the orchestration worker at half of (a)'s upload, start another, and count the bytes the proxy saw. */
async function resumeWorkload(ctx: Ctx, source: string): Promise<void> {
  const size = statSync(source).size;
  const label = `resume of a ${(size / MiB).toFixed(0)} MiB upload`;
  if (!ctx.client) {
    record({ workload: 'd', label, tool: 'trainctl', variant: 'matched', unit: '× file size', better: 'lower', notRun: 'trainctl worker not started' });
    return;
  }
  const proxy: FaultProxy = await startFaultProxy(ctx.endpoint);
  const taskQueue = `bench-resume-${process.pid}`;
  const aws = { endpoint: proxy.endpoint, keys: ctx.keys };
  let worker = await trainctl.startOrchestrationWorker({ temporalAddress: ctx.temporalAddress, taskQueue, aws });
  const tuning = { ...MATCHED, heartbeatTimeoutSeconds: 5 };
  const sentBytes = async () => (await proxy.log()).filter((e) => e.op === 'UploadPart' || e.op === 'PutObject').reduce((s, e) => s + e.bytesIn, 0);
  const flags = `transfer workflow concurrency=${MATCHED.partConcurrency} partSizeMiB=${MATCHED.partSizeMiB} heartbeatTimeoutSeconds=5; worker SIGKILLed when the proxy has seen ≥ 50 % of the bytes, a new worker started at once`;
  try {
    for (let rep = 0; rep < reps; rep++) {
      await proxy.clearLog();
      const plain = await timed(() => trainctl.runTransfer(ctx.client!, taskQueue, { local: source }, { s3: `s3://${ctx.bucket}/d/plain-${rep}` }, tuning));
      record({
        workload: 'd',
        label: `${label}: uninterrupted wall time (through the proxy)`,
        tool: 'trainctl',
        variant: 'matched',
        unit: 's',
        better: 'lower',
        flags,
        value: plain.seconds,
      });
      dropObjects(ctx, `d/plain-${rep}`);
      await proxy.clearLog();
      log(`d rep ${rep + 1}/${reps}: upload, kill at 50 %`);
      const t0 = performance.now();
      const run = await trainctl.startTransfer(ctx.client, taskQueue, { local: source }, { s3: `s3://${ctx.bucket}/d/killed-${rep}` }, tuning);
      for (;;) {
        if ((await sentBytes()) >= size / 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Every request reaches the proxy's log as it starts: the first one after the kill is the retry's.
      const before = (await proxy.log()).length;
      worker.kill();
      const killedAt = performance.now();
      worker = await trainctl.startOrchestrationWorker({ temporalAddress: ctx.temporalAddress, taskQueue, aws });
      let retried: number | undefined;
      let finished = false;
      const watch = (async () => {
        while (retried === undefined && !finished) {
          if ((await proxy.log()).length > before) retried = performance.now();
          else await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await run.result().finally(() => (finished = true));
      await watch;
      const seconds = (performance.now() - t0) / 1000;
      if (retried !== undefined)
        record({
          workload: 'd',
          label: `${label}: from the kill to the retry's first S3 request`,
          tool: 'trainctl',
          variant: 'matched',
          unit: 's',
          better: 'lower',
          flags,
          value: (retried - killedAt) / 1000,
        });
      const sent = await sentBytes();
      dropObjects(ctx, `d/killed-${rep}`);
      record({
        workload: 'd',
        label: `${label}: bytes sent ÷ file size`,
        tool: 'trainctl',
        variant: 'matched',
        unit: '× file size',
        better: 'lower',
        flags,
        value: sent / size,
      });
      record({
        workload: 'd',
        label: `${label}: interrupted wall time`,
        tool: 'trainctl',
        variant: 'matched',
        unit: 's',
        better: 'lower',
        flags,
        value: seconds,
      });
      record({
        workload: 'd',
        label: `${label}: interrupted ÷ uninterrupted wall time`,
        tool: 'trainctl',
        variant: 'matched',
        unit: '×',
        better: 'lower',
        flags,
        value: seconds / plain.seconds,
      });
    }
  } finally {
    await worker.stop();
    await proxy.stop();
  }
}

/** (f): trainctl's prewarm reader vs fio direct and buffered over one file. */
async function prewarmWorkload(ctx: Ctx, path: string): Promise<void> {
  const size = statSync(path).size;
  const label = `prewarm read of ${(size / MiB).toFixed(0)} MiB`;
  const dropped = dropCaches();
  if (dropped) notes.push('(f): the page cache was dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every run.');
  else
    notes.push(
      '(f): the page cache could NOT be dropped between runs (writing /proc/sys/vm/drop_caches was refused): buffered figures (trainctl reader, fio --direct=0) may come from the page cache; only fio --direct=1 bypasses it.',
    );
  const fio = ctx.tools.get('fio');
  const fioRun = async (direct: boolean): Promise<number> => {
    const args = [
      '--name=bench',
      `--filename=${path}`,
      '--rw=read',
      '--bs=1M',
      '--iodepth=32',
      '--ioengine=libaio',
      `--direct=${direct ? 1 : 0}`,
      '--readonly',
      '--output-format=json',
    ];
    const r = await new Promise<string>((resolve, reject) => {
      const c = spawn(fio!.path!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`fio exited ${code}`))));
    });
    const job = (JSON.parse(r) as { jobs: { read: { bw_bytes: number; io_bytes: number } }[] }).jobs[0]!;
    if (job.read.io_bytes !== size) throw new Error(`fio read ${job.read.io_bytes} bytes, not ${size}`);
    return job.read.bw_bytes / MiB;
  };
  const peers: { tool: string; variant: string; flags: string; notRun?: string; run: () => Promise<number> }[] = [];
  if (wantTools.has('trainctl')) {
    peers.push({
      tool: 'trainctl',
      variant: 'reader',
      flags: 'prewarm reader: 32 × 1 MiB reads in flight, buffered, CRC-32 on',
      run: async () => {
        const t0 = performance.now();
        const n = await trainctl.prewarmRead(path, size, MiB, 32);
        if (n !== size) throw new Error(`prewarm read ${n} bytes, not ${size}`);
        return size / MiB / ((performance.now() - t0) / 1000);
      },
    });
  }
  if (wantTools.has('fio')) {
    for (const direct of [true, false]) {
      peers.push({
        tool: 'fio',
        variant: direct ? 'direct' : 'buffered',
        flags: `fio --rw=read --bs=1M --iodepth=32 --ioengine=libaio --direct=${direct ? 1 : 0}`,
        ...(fio?.notRun ? { notRun: fio.notRun } : {}),
        run: () => fioRun(direct),
      });
    }
  }
  for (const p of peers)
    if (p.notRun) record({ workload: 'f', label, tool: p.tool, variant: p.variant, unit: 'MiB/s', better: 'higher', flags: p.flags, notRun: p.notRun });
  const runnable = peers.filter((p) => !p.notRun);
  for (let rep = 0; rep < reps; rep++) {
    for (let i = 0; i < runnable.length; i++) {
      const p = runnable[(i + rep) % runnable.length]!;
      dropCaches();
      log(`f rep ${rep + 1}/${reps}: ${p.tool} ${p.variant}`);
      record({ workload: 'f', label, tool: p.tool, variant: p.variant, unit: 'MiB/s', better: 'higher', flags: p.flags, value: await p.run() });
    }
  }
}

function dropCaches(): boolean {
  try {
    spawnSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

/** (g)(h): against moto with their own orchestration worker. */
async function emulatorWorkloads(ctx: Ctx): Promise<void> {
  const moto = await startMoto();
  const taskQueue = `bench-moto-${process.pid}`;
  const worker = await trainctl.startOrchestrationWorker({ temporalAddress: ctx.temporalAddress, taskQueue, aws: { endpoint: moto.endpoint } });
  try {
    if (only.has('g')) {
      const ec2 = new EC2Client({ region: 'us-east-1', endpoint: moto.endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
      const label = `${sizes.volumes} volumes created one after another`;
      for (let rep = 0; rep < reps; rep++) {
        const runs = [
          {
            tool: 'trainctl',
            flags: 'provisionVolume workflow (volume create), 10 GiB gp3, sequential',
            run: async (i: number) =>
              trainctl.provisionVolume(ctx.client!, taskQueue, `bench-${process.pid}-${rep}-${i}`, {
                region: 'us-east-1',
                availabilityZone: 'us-east-1a',
                sizeGiB: 10,
                project: `bench${process.pid}`,
              }),
          },
          {
            tool: 'AWS SDK script',
            flags: 'DescribeVolumes (by Name tag) + CreateVolume + waitUntilVolumeAvailable, sequential',
            run: async (i: number) => {
              const name = `plain-${process.pid}-${rep}-${i}`;
              const d = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:Name', Values: [name] }] }));
              if (d.Volumes?.length) return;
              const v = await ec2.send(
                new CreateVolumeCommand({
                  AvailabilityZone: 'us-east-1a',
                  Size: 10,
                  VolumeType: 'gp3',
                  TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'Name', Value: name }] }],
                }),
              );
              await waitUntilVolumeAvailable({ client: ec2, maxWaitTime: 120, minDelay: 1 }, { VolumeIds: [v.VolumeId!] });
            },
          },
        ];
        for (let k = 0; k < runs.length; k++) {
          const r = runs[(k + rep) % runs.length]!;
          log(`g rep ${rep + 1}/${reps}: ${r.tool}`);
          const t = await timed(async () => {
            for (let i = 0; i < sizes.volumes; i++) await r.run(i);
          });
          record({ workload: 'g', label, tool: r.tool, variant: 'wall time', unit: 's', better: 'lower', flags: r.flags, value: t.seconds });
        }
      }
      ec2.destroy();
    }
    if (only.has('h')) {
      for (let rep = 0; rep < reps; rep++) {
        log(`h rep ${rep + 1}/${reps}: ${sizes.signals} signals`);
        const tracker = await trainctl.startCostTracker(ctx.client!, taskQueue, `bench-${process.pid}-${rep}`);
        const latencies: number[] = [];
        let failedQueries = 0;
        const queryErrors = new Set<string>();
        let streaming = true;
        const querying = (async () => {
          while (streaming) {
            const q0 = performance.now();
            try {
              await tracker.totalCost();
            } catch (err) {
              // A query that times out counts with the time it took, and is counted as failed.
              failedQueries++;
              queryErrors.add(err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err));
            }
            latencies.push(performance.now() - q0);
          }
        })();
        const t0 = performance.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (next < sizes.signals) await tracker.resourceStarted(`i-bench${String(next++).padStart(6, '0')}`);
          }),
        );
        const sendSeconds = (performance.now() - t0) / 1000;
        // The accepted count is read from the tracker's summary query; when that query itself fails
        // the count is unknown, which is reported as such — never as signals lost.
        let accepted: number | undefined;
        let acceptedError = '';
        const deadline = Date.now() + 120_000;
        for (;;) {
          try {
            accepted = await tracker.accepted();
            acceptedError = '';
          } catch (err) {
            acceptedError = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
          }
          if ((accepted !== undefined && accepted >= sizes.signals) || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        const seconds = (performance.now() - t0) / 1000;
        streaming = false;
        await querying;
        await tracker.terminate();
        latencies.sort((x, y) => x - y);
        const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
        const flags = `${sizes.signals} resourceStarted signals from 16 concurrent senders; totalCost queried in a loop meanwhile (${latencies.length} queries)`;
        const tool = 'trainctl cost tracker';
        const unknown =
          accepted === undefined || acceptedError !== '' ? `accepted count unknown: the summary query failed (${acceptedError || 'no answer'})` : undefined;
        record({
          workload: 'h',
          label: 'signals sent per second (client side)',
          tool,
          variant: 'sent',
          unit: 'signals/s',
          better: 'higher',
          flags,
          value: sizes.signals / sendSeconds,
        });
        if (unknown || accepted! < sizes.signals) {
          record({
            workload: 'h',
            label: 'signals per second, until all accepted',
            tool,
            variant: 'sustained',
            unit: 'signals/s',
            better: 'higher',
            flags,
            notRun: unknown ?? `only ${accepted} of ${sizes.signals} accepted after 120 s`,
          });
        } else {
          record({
            workload: 'h',
            label: 'signals per second, until all accepted',
            tool,
            variant: 'sustained',
            unit: 'signals/s',
            better: 'higher',
            flags,
            value: sizes.signals / seconds,
          });
        }
        if (unknown)
          record({
            workload: 'h',
            label: 'signals lost (sent − accepted, waiting up to 120 s after the last send)',
            tool,
            variant: 'lost',
            unit: 'signals',
            better: 'lower',
            flags,
            notRun: unknown,
          });
        else
          record({
            workload: 'h',
            label: 'signals lost (sent − accepted, waiting up to 120 s after the last send)',
            tool,
            variant: 'lost',
            unit: 'signals',
            better: 'lower',
            flags,
            value: sizes.signals - accepted!,
          });
        record({
          workload: 'h',
          label: 'totalCost queries that failed while streaming',
          tool,
          variant: 'failed',
          unit: 'queries',
          better: 'lower',
          flags: `${flags}${queryErrors.size ? `; errors: ${[...queryErrors].join('; ')}` : ''}`,
          value: failedQueries,
        });
        record({ workload: 'h', label: 'totalCost query p50 while streaming', tool, variant: 'p50', unit: 'ms', better: 'lower', flags, value: pct(50) });
        record({ workload: 'h', label: 'totalCost query p99 while streaming', tool, variant: 'p99', unit: 'ms', better: 'lower', flags, value: pct(99) });
      }
    }
  } finally {
    await worker.stop();
    await moto.stop();
  }
}

async function main(): Promise<void> {
  const peerNames: PeerName[] = [];
  const transfers = ['a', 'b', 'c', 'e'].some((w) => only.has(w as Workload));
  if (transfers) for (const p of ['s5cmd', 'aws', 'rclone'] as const) if (wantTools.has(p)) peerNames.push(p);
  if (only.has('f') && wantTools.has('fio')) peerNames.push('fio');
  const tools = ensureBenchTools(peerNames);
  const needTrainctl = wantTools.has('trainctl') && ['a', 'b', 'c', 'd', 'e', 'g', 'h'].some((w) => only.has(w as Workload));

  const work = mkdtempSync(join(values['data-dir'], 'trainctl-bench-'));
  trainctl.setLocalRoots([work]);
  // Also on Ctrl-C / SIGTERM, where the services module exits without running `finally`.
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const vgwData = join(work, 'versitygw');
  const keys = { accessKey: 'benchaccess', secretKey: `benchsecret${randomBytes(8).toString('hex')}` };
  const bucket = 'bench';
  const started = new Date();
  const closers: (() => Promise<unknown>)[] = [];
  try {
    // Keep-alive on, as S3 itself: versitygw's default answers every request with Connection: close.
    const vgw = await startVersitygw({ dataDir: vgwData, ...keys, keepAlive: true });
    closers.push(() => vgw.stop());
    // Through the API, not mkdir: versitygw keeps the bucket's ACL beside it, and rclone's
    // PutObject (x-amz-acl: private) fails with an internal error on a bucket without one.
    const s3 = new S3Client({
      region: 'us-east-1',
      endpoint: vgw.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: keys.accessKey, secretAccessKey: keys.secretKey },
    });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    s3.destroy();
    const ctx: Ctx = { endpoint: vgw.endpoint, keys, bucket, vgwData, work, tools, temporalAddress: values.temporal ?? '' };
    if (needTrainctl) {
      if (!ctx.temporalAddress) {
        const t = await startTemporalDevServer({ headless: true });
        closers.push(() => t.stop());
        ctx.temporalAddress = t.address;
      }
      const c = await trainctl.connectClient(ctx.temporalAddress);
      closers.push(() => c.close());
      ctx.client = c.client;
      const aws = { endpoint: vgw.endpoint, keys };
      // The s5cmd-engine variant finds the pinned s5cmd on the orchestration worker's PATH.
      const s5 = tools.get('s5cmd')?.path;
      if (s5) process.env.PATH = `${dirname(s5)}${delimiter}${process.env.PATH ?? ''}`;
      const hostRoot = join(work, 'host-root');
      mkdirSync(hostRoot);
      const withHost = only.has('e');
      const [worker, host] = await Promise.all([
        trainctl.startOrchestrationWorker({ temporalAddress: ctx.temporalAddress, taskQueue: `bench-${process.pid}`, aws }),
        withHost ? trainctl.startHostWorker({ temporalAddress: ctx.temporalAddress, hostId: 'benchhost', root: hostRoot, aws }) : undefined,
      ]);
      ctx.worker = worker;
      closers.push(() => worker.stop());
      if (host) {
        ctx.host = { worker: host, id: 'benchhost', root: hostRoot };
        closers.push(() => host.stop());
      }
    }
    // Datasets live under the host worker's root so its variant reads the very same files.
    const dataRoot = join(work, 'host-root');
    mkdirSync(dataRoot, { recursive: true });
    const withHost = !!ctx.host;
    let bigFile: string | undefined;
    const big = async () => {
      if (!bigFile) {
        bigFile = join(dataRoot, 'big.bin');
        log(`writing ${(sizes.bigFile / MiB).toFixed(0)} MiB of random data…`);
        await writeRandomFile(bigFile, sizes.bigFile);
      }
      return bigFile;
    };
    if (only.has('a') || only.has('e'))
      await guard('(a)', async () => transferWorkload(ctx, 'a', `(a) 1 × ${(sizes.bigFile / MiB).toFixed(0)} MiB`, await big(), false, withHost));
    if (only.has('b') || only.has('e')) {
      const dir = join(dataRoot, 'small');
      mkdirSync(dir);
      log(`writing ${sizes.smallCount} × 64 KiB files…`);
      for (let i = 0; i < sizes.smallCount; i++) writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.bin`), randomBytes(sizes.smallSize));
      await guard('(b)', () => transferWorkload(ctx, 'b', `(b) ${sizes.smallCount} × 64 KiB`, dir, true, withHost));
      rmSync(dir, { recursive: true, force: true });
    }
    if (only.has('c')) {
      const dir = join(dataRoot, 'medium');
      mkdirSync(dir);
      log(`writing ${sizes.mediumCount} × 4 MiB files…`);
      for (let i = 0; i < sizes.mediumCount; i++) await writeRandomFile(join(dir, `f${String(i).padStart(4, '0')}.bin`), sizes.mediumSize);
      await guard('(c)', () => transferWorkload(ctx, 'c', `(c) ${sizes.mediumCount} × 4 MiB`, dir, true, false));
      rmSync(dir, { recursive: true, force: true });
    }
    if (only.has('d')) await guard('(d)', async () => resumeWorkload(ctx, await big()));
    if (only.has('f')) await guard('(f)', async () => prewarmWorkload(ctx, await big()));
    if ((only.has('g') || only.has('h')) && ctx.client) await guard('(g)/(h)', () => emulatorWorkloads(ctx));
    else if (only.has('g') || only.has('h')) notes.push('(g)/(h) not run: trainctl is not among --tools.');
    if (ctx.host === undefined && only.has('e') && needTrainctl) notes.push('(e): the host worker could not be started.');

    const results: Results = {
      title: 'trainctl benchmarks',
      date: started.toISOString(),
      finished: new Date().toISOString(),
      scale,
      reps,
      workloads: [...only].sort(),
      machine: {
        cores: os.cpus().length,
        cpu: os.cpus()[0]?.model ?? '?',
        memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
        kernel: `${os.type()} ${os.release()}`,
        node: process.version,
        dataDir: values['data-dir'],
      },
      server: `versitygw ${VERSITYGW_VERSION} (POSIX backend on ${values['data-dir']}, plain HTTP on 127.0.0.1, --keep-alive)`,
      tools: [...tools.values()].map((t) => ({ name: t.name, version: t.version ?? null, source: t.source, ...(t.notRun ? { notRun: t.notRun } : {}) })),
      matched: MATCHED,
      sizes,
      notes,
      figures,
    };
    if (needTrainctl)
      results.tools.push({
        name: 'trainctl',
        version: `working tree ${gitRev()}`,
        source: 'this repository (src/worker.ts processes, workflows started by type name)',
      });
    writeResults(values.out, results);
    log(`results in ${values.out}/latest.{md,json,svg}`);
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

function gitRev(): string {
  const r = spawnSync('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
