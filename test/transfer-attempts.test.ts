import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CancelledFailure } from '@temporalio/common';
import { endsTheFile } from '../src/transfer/types.js';

/** An activity's abort signal as the SDK fires it: its reason a CancelledFailure naming why. */
function abortedFor(reason: string): AbortSignal {
  const c = new AbortController();
  c.abort(new CancelledFailure(reason));
  return c.signal;
}

test(
  'a file keeps its temp files and upload when its attempt is abandoned, and loses them when the transfer is cancelled or cannot succeed',
  { timeout: 10_000 },
  () => {
    const retryable = (err: unknown) => err instanceof Error && err.message === 'blip';
    // A heartbeat timed out (a loaded machine, a killed worker) or the worker shuts down: the next attempt resumes, maybe already beside this one.
    for (const reason of ['TIMED_OUT', 'NOT_FOUND', 'WORKER_SHUTDOWN', 'PAUSED', 'RESET']) {
      const signal = abortedFor(reason);
      assert.equal(endsTheFile(signal.reason, signal, retryable), false, `${reason}: kept for the next attempt`);
      assert.equal(endsTheFile(new Error('aborted'), signal, retryable), false, `${reason}: whatever the step threw on the abort`);
    }
    // The transfer was cancelled: nothing will resume it.
    const cancelled = abortedFor('CANCELLED');
    assert.equal(endsTheFile(cancelled.reason, cancelled, retryable), true);
    assert.equal(endsTheFile(new CancelledFailure('CANCELLED'), undefined, retryable), true, 'the SDK failure alone');
    // Not cancelled: a retryable failure keeps them, any other ends the file.
    assert.equal(endsTheFile(new Error('blip'), new AbortController().signal, retryable), false);
    assert.equal(endsTheFile(new Error('denied'), undefined, retryable), true);
  },
);
