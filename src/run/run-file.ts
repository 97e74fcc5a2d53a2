/**
 * Reading a run file: YAML or JSON, with `--set key.path=value` overrides, validated by the run
 * contract. Every problem names its field; nothing here contacts anything.
 *
 * @module
 */
import { parse as parseYaml } from 'yaml';
import { RunInputSchema, type RunInput, type RunRequest } from '../contracts/run.js';

/** A run file that cannot be read as YAML/JSON, or an override that cannot be applied. */
export class RunFileError extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RunFileError';
  }
}

/** Sets `path` (dot-separated, array indexes as numbers) in `target` to `value`, creating objects on the way. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  if (keys.some((k) => k === '' || k === '__proto__' || k === 'constructor' || k === 'prototype'))
    throw new RunFileError(`--set ${path}: not a field path`, path);
  let cur: Record<string, unknown> = target;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined) cur[k] = {};
    else if (typeof next !== 'object' || next === null) throw new RunFileError(`--set ${path}: ${k} is not an object`, path);
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

/**
 * Parses a run file's text (YAML, which includes JSON) and applies `--set key=value` overrides
 * (the value read as a YAML scalar or flow collection: `--set training.epochs=3`,
 * `--set 'training.command=[python3, train.py]'`). Returns the request as written; validate it
 * with {@link validateRun}.
 */
export function readRunFile(text: string, overrides: string[] = []): RunRequest {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new RunFileError(`the run file is not valid YAML or JSON: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new RunFileError('the run file must be a mapping of fields (name, region, instance, …)');
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new RunFileError(`--set ${o}: expected key.path=value`);
    const path = o.slice(0, eq);
    let value: unknown;
    try {
      value = parseYaml(o.slice(eq + 1));
    } catch {
      value = o.slice(eq + 1);
    }
    setPath(doc as Record<string, unknown>, path, value ?? '');
  }
  return doc as RunRequest;
}

/** Validates a run request; throws the ZodError naming each bad field. */
export function validateRun(request: RunRequest): RunInput {
  return RunInputSchema.parse(request);
}
