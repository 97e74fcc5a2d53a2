/**
 * The transfer engine as the activities run it: one file up or down, a batch of small files,
 * heartbeating a checkpoint each. Temporal-free: each call gets a {@link RunScope} (id, heartbeat,
 * abort signal, progress) from the activity that runs it.
 *
 * @module
 */
import { ErrorKind, TrainctlError, isRetryable } from '../errors/kinds.js';
import { classify } from '../errors/classify.js';
import { checkpointStore } from './checkpoint-store.js';
import { downloadVerified, pool } from './download.js';
import { heartbeatEvery } from './progress.js';
import { endsTheFile, type BatchInput, type DownloadInput, type EngineDeps, type FileResult, type RunScope } from './types.js';

/** What a batch heartbeats: the files it finished, by label. */
interface BatchCheckpoint {
  kind: 'batch';
  done: Record<string, FileResult>;
}

/** Deps of a batch: the engine's, and how a file's failure becomes the batch's (cancellation passes through). */
export interface BatchDeps extends EngineDeps {
  fail(err: unknown, what: string): unknown;
}

/**
 * Downloads one object with parallel ranged GETs into a temp file, verifies it and renames it into
 * place (see `downloadVerified`). Heartbeats the finished ranges; a retry resumes them.
 */
export async function downloadFile(input: DownloadInput, scope: RunScope, deps: EngineDeps): Promise<FileResult> {
  const abs = await deps.resolvePath(input.path);
  if (deps.fileRoots?.includes(abs))
    throw new TrainctlError(
      ErrorKind.InvalidInput,
      `${input.label}: refusing to download onto ${input.path}: it is a root that is a device or a file, not a folder`,
    );
  // Until a range finishes, the heartbeat repeats the last attempt's checkpoint rather than losing it.
  let checkpoint: unknown = scope.resume;
  const stopHb = scope.heartbeat
    ? heartbeatEvery(scope.heartbeat, () => checkpoint ?? { kind: 'download', phase: 'starting' }, deps.heartbeatIntervalMs)
    : () => undefined;
  try {
    const r = await downloadVerified({
      s3: await deps.step(`S3 client for ${input.label}`, () => deps.s3(input)),
      bucket: input.bucket,
      key: input.key,
      path: abs,
      label: input.label,
      concurrency: input.concurrency,
      rangeSize: input.partSize,
      sync: input.sync,
      resumable: true,
      resume: scope.resume,
      signal: scope.signal,
      onBytes: (n) => scope.progress.add(n),
      onCheckpoint: (cp) => {
        checkpoint = cp;
        scope.heartbeat?.(cp);
      },
      step: deps.step,
    });
    return {
      label: input.label,
      size: r.size,
      sent: r.sent,
      skipped: r.skipped,
      verified: r.verifiedBy === 'checksum',
      ...(r.checksum ? { checksum: r.checksum } : {}),
      resumed: r.resumed,
    };
  } finally {
    stopHb();
  }
}

/**
 * Moves many small files as one activity, `concurrency` at a time, heartbeating (and keeping on
 * disk) the files finished so far: a retry skips them. Each file runs as `one` does alone, inside
 * the batch's scope: the batch owns the heartbeat and the progress.
 */
export async function runBatch<I extends { label: string }>(
  input: BatchInput<I>,
  kind: 'upload' | 'download' | 'copy',
  one: (file: I, scope: RunScope, deps: EngineDeps) => Promise<FileResult>,
  scope: RunScope,
  deps: BatchDeps,
): Promise<FileResult[]> {
  const state = checkpointStore<BatchCheckpoint>(`${scope.id}/batch`);
  const fromHb = scope.resume as BatchCheckpoint | undefined;
  const fromDisk = await state.read();
  const cp: BatchCheckpoint = {
    kind: 'batch',
    done: { ...(fromHb?.kind === 'batch' ? fromHb.done : {}), ...(fromDisk?.kind === 'batch' ? fromDisk.done : {}) },
  };
  const { progress } = scope;
  for (const r of Object.values(cp.done)) progress.add(r.size);
  const nested: RunScope = { id: scope.id, resume: undefined, progress, signal: scope.signal };
  const heartbeat = scope.heartbeat ?? (() => undefined);
  const stopHb = heartbeatEvery(heartbeat, () => cp, deps.heartbeatIntervalMs);
  try {
    await pool(
      input.files.filter((f) => !cp.done[f.label]),
      input.concurrency,
      async (f) => {
        progress.current(f.label);
        try {
          cp.done[f.label] = await one(f, nested, deps);
        } catch (err) {
          throw deps.fail(err, `${kind} ${f.label}`);
        }
        heartbeat(cp);
        await state.save(cp);
      },
    );
  } catch (err) {
    if (endsTheFile(err, scope.signal, (e) => isRetryable(classify(e)))) await state.remove();
    throw err;
  } finally {
    stopHb();
  }
  await state.remove();
  return input.files.map((f) => cp.done[f.label] as FileResult);
}
