import { EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';

/**
 * One injected fault: for the first `times` calls of `command` (e.g. `CreateVolume`), either throw
 * the AWS error `error` (a real SDK ServiceException with that name and HTTP status), delay the
 * response by `delayMs` (the call still reaches the emulator first), or rewrite the output.
 */
export interface FaultRule {
  command: string;
  times?: number;
  error?: { name: string; status: number; message?: string };
  delayMs?: number;
  mutate?: (output: Record<string, unknown>) => void;
  /** Only calls whose input passes this count (e.g. one volume id); others go through untouched. */
  match?: (input: Record<string, unknown>) => boolean;
}

/** What the fault layer did, for assertions. */
export interface FaultLog {
  calls: Record<string, number>;
  injected: { command: string; kind: 'error' | 'delay' | 'mutate'; at: number }[];
}

interface MiddlewareClient {
  middlewareStack: {
    add(
      mw: (next: (args: unknown) => Promise<{ output: unknown }>, context: { commandName?: string }) => (args: unknown) => Promise<{ output: unknown }>,
      opts: { step: 'initialize'; name: string },
    ): void;
  };
}

/**
 * Adds a client-side fault layer to an AWS SDK v3 client. moto injects no faults, so tests do it
 * here; build the client with `maxAttempts: 1` so that Temporal's retries, not the SDK's, are seen.
 * Test tooling only: nothing in src/ outside dev/ imports it.
 */
export function injectFaults(client: EC2Client | S3Client, rules: FaultRule[]): FaultLog {
  const service = client instanceof EC2Client ? 'ec2' : 's3';
  // The SDK's generic middleware types are keyed to each client's command unions; this layer only
  // reads the command name and passes arguments through, so a structural view is enough.
  const stack = client.middlewareStack as unknown as MiddlewareClient['middlewareStack'];
  const log: FaultLog = { calls: {}, injected: [] };
  const remaining = rules.map((r) => ({ ...r, left: r.times ?? Number.POSITIVE_INFINITY }));
  stack.add(
    (next, context) => async (args) => {
      const command = (context.commandName ?? '').replace(/Command$/, '');
      log.calls[command] = (log.calls[command] ?? 0) + 1;
      const rule = remaining.find(
        (r) => r.command === command && r.left > 0 && (!r.match || r.match((args as { input?: Record<string, unknown> }).input ?? {})),
      );
      if (!rule) return next(args);
      rule.left -= 1;
      if (rule.error) {
        log.injected.push({ command, kind: 'error', at: Date.now() });
        const Ctor = service === 'ec2' ? EC2ServiceException : S3ServiceException;
        throw new Ctor({
          name: rule.error.name,
          $fault: rule.error.status >= 500 ? 'server' : 'client',
          $metadata: { httpStatusCode: rule.error.status, requestId: 'injected-fault' },
          message: rule.error.message ?? `${rule.error.name} (injected by the test fault layer)`,
        });
      }
      const result = await next(args);
      if (rule.delayMs) {
        log.injected.push({ command, kind: 'delay', at: Date.now() });
        await new Promise((r) => setTimeout(r, rule.delayMs));
      }
      if (rule.mutate) {
        log.injected.push({ command, kind: 'mutate', at: Date.now() });
        rule.mutate(result.output as Record<string, unknown>);
      }
      return result;
    },
    { step: 'initialize', name: 'trainctlFaultInjection' },
  );
  return log;
}
