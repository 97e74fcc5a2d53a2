/**
 * Optional compression of text-like files on their way to S3. The object carries its encoding in
 * metadata and trainctl's checksum of the original bytes, so a download decodes it and verifies
 * what lands, not what was stored.
 *
 * @module
 */
import * as zlib from 'node:zlib';
import { Transform } from 'node:stream';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';

export const Encoding = { none: 'none', gzip: 'gzip', zstd: 'zstd' } as const;
export type Encoding = (typeof Encoding)[keyof typeof Encoding];

/** Extensions of text-like data worth compressing; other files go as they are unless forced. */
export const TEXT_LIKE_EXTENSIONS: readonly string[] = [
  '.txt',
  '.csv',
  '.tsv',
  '.json',
  '.jsonl',
  '.ndjson',
  '.xml',
  '.html',
  '.htm',
  '.md',
  '.yaml',
  '.yml',
  '.log',
  '.py',
  '.sql',
  '.svg',
  '.ini',
  '.cfg',
  '.toml',
  '.tex',
  '.vocab',
  '.conll',
];

export function isTextLike(name: string): boolean {
  const lower = name.toLowerCase();
  return TEXT_LIKE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** The encoding a file gets: the requested one for text-like names (or every file when `all`). */
export function encodingFor(name: string, requested: Encoding, all: boolean): Encoding {
  if (requested === 'none') return 'none';
  return all || isTextLike(name) ? requested : 'none';
}

export function encodingOf(value: string | undefined): Encoding {
  if (value === undefined || value === '' || value === 'none') return 'none';
  if (value === 'gzip' || value === 'zstd') return value;
  throw new TrainctlError(ErrorKind.InvalidInput, `unknown trainctl-encoding ${JSON.stringify(value)}`);
}

// node:zlib gained zstd in Node 22.15 / 23.8; the types of this project's Node do not declare it.
const zstd = zlib as unknown as { createZstdCompress?: () => Transform; createZstdDecompress?: () => Transform };

/** Whether this Node's zlib can do `encoding`. */
export function encodingAvailable(encoding: Encoding): boolean {
  return encoding !== 'zstd' || (typeof zstd.createZstdCompress === 'function' && typeof zstd.createZstdDecompress === 'function');
}

/** Refuses an encoding this Node cannot do, with kind InvalidInput. */
export function checkEncoding(encoding: Encoding): void {
  if (!encodingAvailable(encoding)) {
    throw new TrainctlError(
      ErrorKind.InvalidInput,
      `zstd compression is not available: node:zlib of Node ${process.version} has no zstd (it needs Node ≥ 22.15); use compress gzip or none`,
    );
  }
}

export function compressor(encoding: Exclude<Encoding, 'none'>): Transform {
  checkEncoding(encoding);
  // Level 6 is gzip's default; the output is the same for the same input, so a retry re-creates identical parts.
  return encoding === 'gzip' ? zlib.createGzip({ level: 6 }) : (zstd.createZstdCompress as () => Transform)();
}

export function decompressor(encoding: Exclude<Encoding, 'none'>): Transform {
  checkEncoding(encoding);
  return encoding === 'gzip' ? zlib.createGunzip() : (zstd.createZstdDecompress as () => Transform)();
}

/**
 * Passes bytes through until more than `max` went by, then fails with kind Integrity: decoding
 * stops at the original size the object recorded, so a small object cannot expand without bound.
 */
export function byteLimit(max: number, label: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) done(new TrainctlError(ErrorKind.Integrity, `${label}: decoding produced more than the ${max} bytes the object recorded`));
      else done(null, chunk);
    },
  });
}
