/**
 * The bound on one transfer's file list (Node only; the workflow never sees an oversized one).
 *
 * @module
 */
import { ErrorKind, TrainctlError } from '../errors/kinds.js';

/**
 * How big one transfer's file list may be, as the workflow receives it (one activity result):
 * Temporal refuses a payload over 2 MB, and the list also travels in the history's batch inputs.
 */
export const MAX_LISTING_BYTES = 1_500_000;

/**
 * Refuses (InvalidInput) a listing whose payload would pass {@link MAX_LISTING_BYTES}, before
 * anything is written, saying how to split it — rather than the server failing the run later.
 */
export function checkListingSize(files: readonly { rel: string; key?: string | undefined }[], where: string): void {
  let bytes = 0;
  for (const f of files) bytes += Buffer.byteLength(f.rel) + (f.key === undefined ? 0 : Buffer.byteLength(f.key)) + 40;
  if (bytes > MAX_LISTING_BYTES)
    throw new TrainctlError(
      ErrorKind.InvalidInput,
      `${where} lists ${files.length} files in about ${(bytes / 1e6).toFixed(1)} MB of names, more than one transfer carries (${MAX_LISTING_BYTES / 1e6} MB): split it by prefix or --include`,
    );
}
