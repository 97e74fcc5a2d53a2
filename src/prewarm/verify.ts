/**
 * ExistingEBS: check that a folder on an attached volume holds the dataset its manifest lists
 * (every file present with its size, and optionally its SHA-256). Temporal-free.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { VerifyManifestResult } from '../contracts/prewarm.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { safeRelative, stopIfCancelled, type WorkContext } from './work.js';

const DatasetManifestSchema = z.object({
  files: z.array(
    z.object({
      path: z.string().min(1),
      size: z.number().int().nonnegative(),
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
    }),
  ),
});
export type DatasetManifest = z.infer<typeof DatasetManifestSchema>;
type ManifestFile = DatasetManifest['files'][number];

export interface VerifyDatasetArgs {
  datasetDir: string;
  /** Relative to datasetDir unless absolute. */
  manifest: string;
  verify: 'size' | 'checksum';
}

/** What a check heartbeats: where a retry starts, and what it found so far. */
interface VerifyProgress {
  index: number;
  bytes: number;
  missing: string[];
  mismatched: { path: string; reason: string }[];
}

/** At most the first 100 problems of each kind are kept. */
const LIMIT = 100;

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** Compares one file with its manifest entry, recording a missing or different file in `p`; false when it is missing. */
async function checkFile(full: string, f: ManifestFile, verify: VerifyDatasetArgs['verify'], p: VerifyProgress): Promise<boolean> {
  const mismatched = (reason: string) => p.mismatched.length < LIMIT && p.mismatched.push({ path: f.path, reason });
  let s;
  try {
    s = await stat(full);
  } catch {
    if (p.missing.length < LIMIT) p.missing.push(f.path);
    return false;
  }
  if (!s.isFile()) mismatched('not a regular file');
  else if (s.size !== f.size) mismatched(`size ${s.size}, manifest says ${f.size}`);
  else if (verify === 'checksum' && f.sha256 !== undefined) {
    const got = await sha256File(full);
    if (got !== f.sha256) mismatched(`sha256 ${got}, manifest says ${f.sha256}`);
  }
  p.bytes += f.size;
  return true;
}

/**
 * Checks `datasetDir` against its manifest, file by file, heartbeating the next file's index so a
 * retry resumes there. Reports problems rather than failing (the workflow decides); fails only on a
 * manifest it cannot read or a manifest path that would leave the folder. Read-only.
 */
export async function verifyDataset(args: VerifyDatasetArgs, w: WorkContext): Promise<VerifyManifestResult> {
  const t0 = performance.now();
  const dir = await w.step(`resolve ${args.datasetDir}`, () => w.resolve(args.datasetDir));
  const manifestPath = await w.step(`resolve ${args.manifest}`, () => w.resolve(isAbsolute(args.manifest) ? args.manifest : join(dir, args.manifest)));
  const manifest = await w.step(`read manifest ${manifestPath}`, async () => DatasetManifestSchema.parse(JSON.parse(await readFile(manifestPath, 'utf8'))));
  const p: VerifyProgress = (w.previous as VerifyProgress | undefined) ?? { index: 0, bytes: 0, missing: [], mismatched: [] };
  for (; p.index < manifest.files.length; p.index++) {
    const f = manifest.files[p.index]!;
    if (!safeRelative(f.path))
      throw new TrainctlError(ErrorKind.InvalidInput, `manifest path ${JSON.stringify(f.path)} must be relative, without . or .. segments`);
    const full = await w.step(`resolve ${f.path}`, () => w.resolve(join(dir, ...f.path.split('/'))));
    const found = await checkFile(full, f, args.verify, p);
    // The next file is where a retry starts.
    w.heartbeat({ ...p, index: p.index + 1 });
    if (found) stopIfCancelled(w.signal);
  }
  return {
    files: manifest.files.length,
    bytes: p.bytes,
    ok: p.missing.length === 0 && p.mismatched.length === 0,
    missing: p.missing,
    mismatched: p.mismatched,
    seconds: (performance.now() - t0) / 1000,
  };
}
