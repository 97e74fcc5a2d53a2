/**
 * What trainctl knows about s5cmd, without Temporal: finding the executable, writing its command
 * file, environment and arguments, reading its `--json` output, and checking what it copied the
 * way the built-in engine checks its own copies. The activity (src/activities/transfer-s5cmd.ts)
 * runs the child process, heartbeats and turns errors into failures.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, dirname, join, sep } from 'node:path';
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { META_CHECKSUM, META_PART_SIZE, compositeChecksum } from './checksum.js';
import { childEnv } from '../child-env.js';
import { MiB } from './plan.js';

/** The first executable `name` on a PATH-style list, or undefined. */
export async function findExecutable(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    const ok = await access(candidate, constants.X_OK).then(
      () => stat(candidate).then((s) => s.isFile()),
      () => false,
    );
    if (ok) return candidate;
  }
  return undefined;
}

/** A double-quoted argument for an `s5cmd run` command file (its parser takes backslash escapes). */
function quote(s: string): string {
  if (/[\n\r\0]/.test(s)) throw new TrainctlError(ErrorKind.InvalidInput, `${JSON.stringify(s)} cannot go through s5cmd: it contains a line break or NUL`);
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/** One upload line of an `s5cmd run` command file: trainctl's checksum and part size go along as metadata. */
export function uploadCommand(p: { path: string; bucket: string; key: string; partSize: number; checksum: string }, concurrency: number): string {
  return `cp --raw -c ${concurrency} -p ${p.partSize / MiB} --metadata ${quote(`${META_CHECKSUM}=${p.checksum}`)} --metadata ${quote(`${META_PART_SIZE}=${p.partSize}`)} ${quote(p.path)} ${quote(`s3://${p.bucket}/${p.key}`)}`;
}

/** One download line of an `s5cmd run` command file: the object lands at `temp`, checked before it moves. */
export function downloadCommand(j: { bucket: string; key: string; temp: string }, concurrency: number, partSizeMiB: number): string {
  return `cp --raw -c ${concurrency} -p ${partSizeMiB} ${quote(`s3://${j.bucket}/${j.key}`)} ${quote(j.temp)}`;
}

/** The `--endpoint-url` for a client's resolved endpoint (an emulator, a VPC endpoint), or undefined for AWS's own. */
export function endpointUrl(endpoint: { protocol: string; hostname: string; port?: number | undefined; path: string } | undefined): string | undefined {
  return endpoint
    ? `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path === '/' ? '' : endpoint.path}`
    : undefined;
}

/** s5cmd's environment: the credentials the SDK resolved, handed over by environment only (never argv, never logged). */
export function s5cmdEnv(
  base: NodeJS.ProcessEnv,
  creds: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined },
  region: string,
): Record<string, string | undefined> {
  // A minimal environment: s5cmd needs its PATH, home and locale, and these credentials — never the
  // worker's Temporal API key or TLS key paths.
  return childEnv(base, {
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_SESSION_TOKEN: creds.sessionToken,
    AWS_REGION: region,
  });
}

/** `s5cmd [--endpoint-url URL] --json --numworkers N run FILE`. */
export function s5cmdArgs(endpoint: string | undefined, numworkers: number, commandFile: string): string[] {
  return [...(endpoint ? ['--endpoint-url', endpoint] : []), '--json', '--numworkers', String(numworkers), 'run', commandFile];
}

/**
 * What one s5cmd run said: its `--json` stdout, a record a line (`onDone(bytes)` per finished copy,
 * failures kept), and the tail of its stderr, for the message when it exits non-zero.
 */
export class S5cmdOutput {
  private readonly failures: string[] = [];
  private pending = '';
  private stderrTail = '';

  constructor(private readonly onDone: (bytes: number) => void) {}

  stdout(text: string): void {
    this.pending += text;
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        const rec = JSON.parse(line) as { success?: boolean; error?: string; source?: string; object?: { size?: number } };
        if (rec.success) this.onDone(rec.object?.size ?? 0);
        else if (rec.error) this.failures.push(`${rec.source ?? ''}: ${rec.error}`);
      } catch {
        this.failures.push(line);
      }
    }
  }

  stderr(text: string): void {
    this.stderrTail = (this.stderrTail + text).slice(-4000);
  }

  /** The first failures and the last lines of stderr, or `no message`. */
  why(): string {
    const why = [...this.failures.slice(0, 3), this.stderrTail.trim().split('\n').slice(-3).join(' ')].filter(Boolean).join('; ');
    return why || 'no message';
  }
}

/** One pass: trainctl's checksum, and the two ETags S3 can give the file (one PutObject, or multipart of `partSize`). */
export async function uploadDigest(path: string, partSize: number, signal?: AbortSignal): Promise<{ checksum: string; size: number; etags: string[] }> {
  const shaParts: Buffer[] = [];
  const md5Parts: Buffer[] = [];
  const whole = createHash('md5');
  let sha = createHash('sha256');
  let md5 = createHash('md5');
  let inPart = 0;
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: MiB, ...(signal ? { signal } : {}) }) as AsyncIterable<Buffer>) {
    whole.update(chunk);
    size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(partSize - inPart, chunk.length - off);
      const slice = chunk.subarray(off, off + take);
      sha.update(slice);
      md5.update(slice);
      inPart += take;
      off += take;
      if (inPart === partSize) {
        shaParts.push(sha.digest());
        md5Parts.push(md5.digest());
        sha = createHash('sha256');
        md5 = createHash('md5');
        inPart = 0;
      }
    }
  }
  if (inPart > 0) {
    shaParts.push(sha.digest());
    md5Parts.push(md5.digest());
  }
  const multipart = `${createHash('md5').update(Buffer.concat(md5Parts)).digest('hex')}-${md5Parts.length}`;
  return { checksum: compositeChecksum(shaParts), size, etags: [whole.digest('hex'), multipart] };
}

export const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

/** The deepest folder holding every path. */
export function commonDir(paths: readonly string[]): string {
  const dirs = paths.map((p) => dirname(p).split(sep));
  const first = dirs[0] ?? [];
  let n = first.length;
  for (const d of dirs) {
    let i = 0;
    while (i < n && d[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n).join(sep) || sep;
}

/** The download's temp folder, inside the destination (the rename into place stays on one filesystem), one per activity. */
export function downloadTempDir(paths: readonly string[], workflowId: string | undefined, activityId: string): string {
  const id = createHash('sha256').update(`${workflowId}/${activityId}`).digest('hex').slice(0, 16);
  return join(commonDir(paths), `.trainctl-s5cmd-${id}`);
}

/**
 * Throws (kind Integrity) unless the object s5cmd stored matches the local file: size, trainctl's
 * checksum and, unless SSE-KMS or SSE-C made S3's ETag something other than an MD5, the ETag.
 */
export function checkUploaded(
  p: { f: { label: string; bucket: string; key: string }; size: number; etags: string[]; checksum: string },
  h: HeadObjectCommandOutput | undefined,
): void {
  const etag = unquote(h?.ETag);
  // Compared for equality with the checksum computed here: the stored value needs no bounds check.
  const stored = h?.Metadata?.[META_CHECKSUM];
  const etagIsMd5 = h?.ServerSideEncryption !== 'aws:kms' && h?.ServerSideEncryption !== 'aws:kms:dsse' && !h?.SSECustomerAlgorithm;
  if (!h || h.ContentLength !== p.size || (etagIsMd5 && !p.etags.includes(etag)) || stored !== p.checksum) {
    throw new TrainctlError(
      ErrorKind.Integrity,
      `${p.f.label}: the object s5cmd stored at s3://${p.f.bucket}/${p.f.key} does not match the local file (size ${h?.ContentLength} vs ${p.size}, ETag ${etag || 'none'} vs ${p.etags.join(' or ')}, checksum ${stored ?? 'none'} vs ${p.checksum})`,
    );
  }
}

/**
 * Throws (kind Integrity) unless a downloaded file matches its object: trainctl's checksum when the
 * upload recorded one, else the ETag when it is a plain MD5, else the size HeadObject gave.
 */
export function checkDownloaded(
  j: { f: { label: string; bucket: string; key: string }; size: number; meta: { checksum?: string | undefined }; md5: string | undefined },
  d: { checksum: string; md5: string; size: number },
): void {
  const where = `s3://${j.f.bucket}/${j.f.key}`;
  const problem = j.meta.checksum
    ? d.checksum !== j.meta.checksum && `object ${where} has ${d.checksum}, its upload recorded ${j.meta.checksum}`
    : j.md5
      ? d.md5 !== j.md5 && `object ${where} has MD5 ${d.md5}, its ETag says ${j.md5}`
      : d.size !== j.size && `object ${where} gave ${d.size} bytes, HeadObject said ${j.size}`;
  if (problem) throw new TrainctlError(ErrorKind.Integrity, `${j.f.label}: checksum mismatch after the s5cmd download (${problem})`);
}
