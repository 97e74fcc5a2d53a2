import { appendFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import type { PartHooks } from '../transfer/types.js';

/**
 * Test-only fault hooks: called around every part a transfer sends or fetches. Production workers
 * have none; `transferHooksFromEnv` builds them for a host worker process under test.
 */
export type TransferHooks = PartHooks;

/**
 * Hooks from `TRAINCTL_TEST_TRANSFER_PART_DELAY_MS` (slow every part down, so a test can kill the
 * process mid-transfer) and `TRAINCTL_TEST_TRANSFER_LOG` (append `PID KIND PART start|done LABEL`
 * per part and `PID KIND 0 file-done LABEL` per finished file of a batch, so a test can count what was sent). Undefined when neither is set.
 */
export function transferHooksFromEnv(env: Record<string, string | undefined>): TransferHooks | undefined {
  const delay = Number(env.TRAINCTL_TEST_TRANSFER_PART_DELAY_MS ?? 0);
  const file = env.TRAINCTL_TEST_TRANSFER_LOG;
  if (!delay && !file) return undefined;
  const note = (kind: string, n: number, what: string, label: string) => {
    if (file) appendFileSync(file, `${process.pid} ${kind} ${n} ${what} ${label}\n`);
  };
  return {
    async beforePart(kind, n, label) {
      note(kind, n, 'start', label);
      if (delay) await Context.current().sleep(delay);
    },
    afterPart(kind, n, label) {
      note(kind, n, 'done', label);
    },
    afterFile(kind, label) {
      note(kind, 0, 'file-done', label);
    },
  };
}
