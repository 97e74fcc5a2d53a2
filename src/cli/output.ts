import { ZodError } from 'zod';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure, TerminatedFailure } from '@temporalio/common';
import { classify, describeError } from '../errors/classify.js';
import { explainStartFailureOffline } from '../temporal.js';

/** A user mistake the CLI reports in one line per problem, without a stack trace. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes: 1 the operation failed, 2 the input was wrong (nothing was done). */
export const ExitCode = { Ok: 0, Failed: 1, Usage: 2 } as const;

/** Maps a schema path (`attachTo.instanceId`) to the flag a user typed. */
export type FlagNames = Record<string, string>;

/** One line per problem: an unknown key is named as the field it would be (`training.bogus`), not its parent. */
function issueLines(err: ZodError): { path: string; message: string }[] {
  return err.issues.flatMap((i) => {
    const path = i.path.join('.');
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => ({ path: path ? `${path}.${k}` : k, message: 'is not a known field (check its spelling)' }));
    return [{ path, message: i.message }];
  });
}

export function formatZodError(err: ZodError, flags: FlagNames = {}): string {
  return issueLines(err)
    .map(({ path, message }) => `  ${flags[path] ?? (path || '(input)')}: ${message}`)
    .join('\n');
}

/** The innermost failure of a failed workflow: the activity's ApplicationFailure where there is one. */
export function rootFailure(err: unknown): { kind: string; message: string } {
  let e: unknown = err;
  if (e instanceof WorkflowFailedError) e = e.cause;
  if (e instanceof ActivityFailure && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return { kind: e.type ?? 'Unknown', message: e.message };
  if (e instanceof CancelledFailure) return { kind: 'Cancelled', message: e.message || 'cancelled' };
  if (e instanceof TerminatedFailure) return { kind: 'Terminated', message: e.message || 'terminated' };
  if (e instanceof WorkflowNotFoundError) return { kind: 'NotFound', message: e.message };
  return { kind: classify(e), message: describeError(e) };
}

/** Prints a failure for a person (stderr) or a machine (`--json` on stdout) and returns the exit code. */
export function reportError(err: unknown, opts: { json: boolean; what: string; flags?: FlagNames; uiUrl?: string }): number {
  if (err instanceof ZodError) {
    if (opts.json) console.log(JSON.stringify({ ok: false, kind: 'InvalidInput', issues: issueLines(err) }));
    else console.error(`trainctl: invalid ${opts.what}; nothing was done:\n${formatZodError(err, opts.flags)}`);
    return ExitCode.Usage;
  }
  if (err instanceof UsageError) {
    if (opts.json) console.log(JSON.stringify({ ok: false, kind: 'InvalidInput', message: err.message }));
    else console.error(`trainctl: ${err.message}`);
    return ExitCode.Usage;
  }
  // A start the API did not explain already (it asks the server which attributes are missing).
  const { kind, message } = rootFailure(explainStartFailureOffline(err));
  if (opts.json) console.log(JSON.stringify({ ok: false, kind, message, ...(opts.uiUrl ? { ui: opts.uiUrl } : {}) }));
  else {
    console.error(`trainctl: ${opts.what} failed (${kind}): ${message}`);
    if (opts.uiUrl) console.error(`  run: ${opts.uiUrl}`);
  }
  return ExitCode.Failed;
}
