import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../src/dev/services.js';

test('npm run demo exits 0, prints a vol- id with a UI link, and its second provisioning reports created: false', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainctl-demo-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, TRAINCTL_DEMO_DB: join(dir, 'demo.db') };
    // As a newcomer runs it: no cluster configured, so the demo starts its own servers.
    delete env.TEMPORAL_ADDRESS;
    delete env.AWS_ENDPOINT_URL;
    const child = spawn('npm', ['run', 'demo'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, out);
    const created = /^(vol-[0-9a-f]+)\s+created\s+demo-dataset$/m.exec(out);
    const reused = /^(vol-[0-9a-f]+)\s+reused \(created: false\)\s+demo-dataset$/m.exec(out);
    assert.ok(created, `first provisioning printed a created vol- id:\n${out}`);
    assert.ok(reused, `second provisioning printed created: false:\n${out}`);
    assert.equal(reused[1], created[1]);
    assert.match(out, /run: http:\/\/localhost:\d+\/namespaces\/default\/workflows\/volume%2Fus-east-1%2Fdemo-dataset\/[0-9a-f-]+\/history/);
    assert.match(out, /everything it started is stopped/);
    assert.match(out, /^\[trainctl setup\] using Node v(2[2-9]|[3-9]\d)\.\d+\.\d+ /m, 'the bootstrap says which Node (22 or newer) it runs the demo on');
    assert.doesNotMatch(out, /NodeVersionSupportWarning/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run demo -- --keep keeps the servers and worker up until Ctrl-C, then stops them all and exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainctl-demo-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, TRAINCTL_DEMO_DB: join(dir, 'demo.db') };
    delete env.TEMPORAL_ADDRESS;
    delete env.AWS_ENDPOINT_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'dev', 'demo.ts'), '--keep'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const kept = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('Ctrl-C here stops')) resolve();
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', () => reject(new Error(`the demo exited early:\n${out}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await kept;
    const emulator = /^  export TEMPORAL_ADDRESS=(\S+) AWS_ENDPOINT_URL=(\S+)/m.exec(out);
    assert.ok(emulator, out);
    const res = await fetch(`${emulator[2]}/moto-api/data.json`);
    assert.equal(res.ok, true, 'the emulator still answers while kept');
    child.kill('SIGINT');
    assert.equal(await exited, 0, out);
    assert.match(out, /Demo done; everything it started is stopped\./);
    await assert.rejects(fetch(`${emulator[2]}/moto-api/data.json`), 'the emulator is gone after Ctrl-C');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
