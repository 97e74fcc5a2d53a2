/**
 * Sizes of payloads as Temporal counts them, for code that runs in the workflow sandbox (no Buffer,
 * no TextEncoder).
 *
 * @module
 */

/** Bytes of a string in UTF-8, without Buffer or TextEncoder (workflow code). */
export function utf8Bytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}
