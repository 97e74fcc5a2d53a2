import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ActivityFailure, TimeoutFailure } from '@temporalio/common';
import { testServices, testClient, startWorker, uniqueName, type TestServices, type RunningWorker } from './helpers/harness.js';
import { startHostWorker } from './helpers/host-worker.js';
import { createHostFs } from '../src/activities/host-fs.js';
import { checkHost } from '../src/api/prewarm.js';
import { mkdtempSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let services: TestServices;
let client: Client;
let worker: RunningWorker;

before(async () => {
  services = await testServices();
  client = await testClient(services.env);
  worker = await startWorker(services);
});

test('a host worker process polls trainctl-host-ID and answers work routed to it with its own root', async () => {
  const host = await startHostWorker(services.env);
  const { hostId, roots } = await checkHost(client, host.hostId, { taskQueue: worker.taskQueue, workflowId: uniqueName('host-check') });
  assert.equal(hostId, host.hostId);
  assert.deepEqual(
    roots.map((r) => r.path),
    [realpathSync(host.root)],
  );
  assert.ok((roots[0]?.freeBytes ?? 0) > 0);
});

test('checking a host whose worker is not running fails with a timeout instead of waiting forever', async () => {
  const err = await checkHost(client, 'no-such-host', { taskQueue: worker.taskQueue, workflowId: uniqueName('host-check'), waitSeconds: 2 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.ok(err.cause instanceof ActivityFailure, String(err.cause));
  assert.ok(err.cause.cause instanceof TimeoutFailure, String(err.cause.cause));
});

test('host file access resolves paths inside the roots and refuses .., absolute paths and symlinks that leave them', async () => {
  const root = mkdtempSync(join(tmpdir(), 'trainctl-hostfs-'));
  const outside = mkdtempSync(join(tmpdir(), 'trainctl-outside-'));
  try {
    mkdirSync(join(root, 'data'));
    symlinkSync(outside, join(root, 'escape'));
    const fs = await createHostFs([root]);
    assert.equal(await fs.resolve('data/new-file.bin'), join(realpathSync(root), 'data', 'new-file.bin'));
    for (const bad of ['../x', '/etc/passwd', 'escape/secret', 'data/../../x', 'a\0b']) {
      await assert.rejects(fs.resolve(bad), (e: Error & { kind?: string }) => e.kind === 'InvalidInput', bad);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});
