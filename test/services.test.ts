import { ALL_SEARCH_ATTRIBUTES } from '../src/search-attributes.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { alive, repoRoot, startMoto, startTemporalDevServer } from '../src/dev/services.js';
import { missingSearchAttributes } from '../src/temporal.js';
import { waitFor } from './helpers/wait.js';

/** Whether process `pid` has exited within `ms`. */
function waitGone(pid: number, ms: number): Promise<boolean> {
  return waitFor(() => !alive(pid), { what: `process ${pid} to exit`, timeoutMs: ms, intervalMs: 200 }).catch(() => !alive(pid));
}

test('moto started on a free loopback port answers, resets, and is gone after stop()', async () => {
  const moto = await startMoto();
  try {
    assert.match(moto.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
    await moto.reset();
  } finally {
    await moto.stop();
  }
  assert.equal(await waitGone(moto.pid, 5_000), true);
});

test('a service outlives no parent: SIGKILL of the process that started moto still ends moto', async () => {
  const script = `import { startMoto } from ${JSON.stringify(join(repoRoot, 'src/dev/services.ts'))}; const m = await startMoto(); console.log(m.pid); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.on('exit', () => reject(new Error('the starter exited early')));
  });
  assert.ok(alive(pid), 'moto runs while its parent lives');
  child.kill('SIGKILL');
  const gone = await waitGone(pid, 15_000);
  if (!gone) process.kill(-pid, 'SIGKILL');
  assert.equal(gone, true, 'the watchdog stopped moto after its parent died');
});

test('the dev server starts with every trainctl search attribute registered, and without them when asked for a plain one', async () => {
  const [full, plain] = await Promise.all([startTemporalDevServer({ headless: true }), startTemporalDevServer({ headless: true, searchAttributes: false })]);
  try {
    for (const [server, missing] of [
      [full, 0],
      [plain, ALL_SEARCH_ATTRIBUTES.length],
    ] as const) {
      const connection = await Connection.connect({ address: server.address });
      try {
        assert.equal((await missingSearchAttributes(connection, 'default')).length, missing, server.address);
      } finally {
        await connection.close();
      }
    }
  } finally {
    await Promise.all([full.stop(), plain.stop()]);
  }
});
