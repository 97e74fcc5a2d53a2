/**
 * What an upload sends: the file itself, or — with compression — a compressed copy carrying the
 * original's checksum, in a private temp file named by activity and key.
 *
 * @module
 */
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileChecksum } from './checksum.js';
import { checkEncoding, compressor, type Encoding } from './compress.js';
import { openPrivateForWrite, privateDir } from './private-dir.js';
import { planPartSize } from './plan.js';
import type { Step } from './types.js';

/** What goes up: the file itself, or a compressed copy carrying the original's checksum. */
export interface Body {
  abs: string;
  size: number;
  mtimeMs: number;
  ino: number;
  ctimeMs: number;
  original?: { checksum: string; partSize: number };
  temp?: string;
}

/** The file, or (with compression) a compressed copy named by activity and key. */
export async function prepareBody(
  o: { abs: string; st: { size: number; mtimeMs: number; ino: number; ctimeMs: number }; encoding: Encoding; scopeId: string; key: string; label: string },
  step: Step,
  signal: AbortSignal | undefined,
): Promise<Body> {
  const { abs, st, encoding } = o;
  if (encoding === 'none') return { abs, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, ctimeMs: st.ctimeMs };
  checkEncoding(encoding);
  // Named by activity and key: a retry overwrites what a killed attempt left instead of adding to it.
  const temp = join(await privateDir('trainctl-compress'), `${createHash('sha256').update(`${o.scopeId}/${o.key}`).digest('hex')}.${encoding}`);
  try {
    const origPartSize = planPartSize(st.size);
    const sum = await step(`checksum ${o.label}`, () => fileChecksum(abs, origPartSize, signal));
    await step(`compress ${o.label}`, async () => {
      await pipeline(createReadStream(abs), compressor(encoding), (await openPrivateForWrite(temp)).createWriteStream(), ...(signal ? [{ signal }] : []));
    });
    // The same input compresses to the same bytes, so its size and the original's mtime
    // identify the body: a retry re-creates it and resumes the upload's finished parts.
    return {
      abs: temp,
      size: (await stat(temp)).size,
      mtimeMs: st.mtimeMs,
      ino: st.ino,
      ctimeMs: st.ctimeMs,
      original: { checksum: sum.checksum, partSize: origPartSize },
      temp,
    };
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
