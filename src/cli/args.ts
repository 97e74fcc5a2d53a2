import { UsageError } from './output.js';

/** `KEY=VALUE` from a flag's value; a usage error naming the flag otherwise. */
export function parseKeyValue(flag: string, v: string): { key: string; value: string } {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new UsageError(`${flag} ${JSON.stringify(v)}: expected KEY=VALUE`);
  return { key: v.slice(0, eq), value: v.slice(eq + 1) };
}

/** Repeated `--tag KEY=VALUE` flags as a record. */
export function parseTags(values: string[], flag = '--tag'): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const v of values) {
    const { key, value } = parseKeyValue(flag, v);
    tags[key] = value;
  }
  return tags;
}

/** A number from a flag's value (undefined when absent); a usage error naming the flag otherwise. */
export function parseNumber(flag: string, v: string | undefined, opts: { integer?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a number`);
  if (opts.integer && !Number.isInteger(n)) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a whole number`);
  return n;
}

/** parseArgs' complaints (unknown flag, missing value) are usage errors: exit 2, nothing done. */
export function asUsageError(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS') ? new UsageError((err as Error).message) : err;
}
