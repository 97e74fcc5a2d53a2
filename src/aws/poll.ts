import { Context } from '@temporalio/activity';

/**
 * Polls `probe` inside an activity until it returns a value, heartbeating what it saw after every
 * poll, so a wait for AWS state is one activity in the history however long it takes.
 * Cancellable between polls (the activity context's sleep); `probe` throws to give up.
 */
export async function pollUntil<T>(probe: () => Promise<{ done: true; value: T } | { done: false; seen: unknown }>, intervalMs: number): Promise<T> {
  const ctx = Context.current();
  for (;;) {
    const r = await probe();
    if (r.done) return r.value;
    ctx.heartbeat(r.seen);
    await ctx.sleep(intervalMs);
  }
}
