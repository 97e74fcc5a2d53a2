import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeInstancesCommand, DescribeVolumesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { repoRoot } from '../src/dev/services.js';

test(
  'npm run demo runs the whole job: upload, a training run from launch to teardown, its results verified, the cost; exit 0',
  { timeout: 600_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trainctl-demo-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, TRAINCTL_DEMO_DB: join(dir, 'demo.db') };
      // As a newcomer runs it: no cluster configured, so the demo starts its own servers.
      delete env.TEMPORAL_ADDRESS;
      delete env.AWS_ENDPOINT_URL;
      const child = spawn('npm', ['run', 'demo', '--', '--dataset-mib', '64'], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      assert.equal(code, 0, out);
      assert.match(out, /^\s+\d+ files, 64\.0 MiB in [\d.]+ s, \d+ verified$/m, 'the dataset was uploaded and verified');
      assert.match(out, /ui: http:\/\/localhost:\d+\/namespaces\/default\/workflows\/run%2Fdemo-run\/history/, 'the run has a Web UI link');
      assert.match(out, /^4\. Run demo-run completed: exit code 0/m);
      assert.match(out, /teardown: deleted volume vol-[0-9a-f]+/);
      assert.match(out, /teardown: terminated instance i-[0-9a-f]+/);
      assert.equal(
        (out.match(/^\s+verified: s3:\/\/\S+ == the instance's /gm) ?? []).length,
        2,
        'the last checkpoint and the model in S3 equal the instance files',
      );
      assert.match(out, /^5\. Cost of project demo: \$[\d.]+ so far, 0 resources still running/m);
      assert.match(out, /everything it started is stopped/);
      assert.match(out, /^\[trainctl setup\] using Node v(2[2-9]|[3-9]\d)\.\d+\.\d+ /m, 'the bootstrap says which Node (22 or newer) it runs the demo on');
      assert.doesNotMatch(out, /NodeVersionSupportWarning/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'npm run demo -- --keep leaves no running managed instance and no managed volume in the emulator, keeps it up until Ctrl-C, then stops all and exits 0',
  { timeout: 600_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trainctl-demo-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, TRAINCTL_DEMO_DB: join(dir, 'demo.db') };
      delete env.TEMPORAL_ADDRESS;
      delete env.AWS_ENDPOINT_URL;
      const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'dev', 'demo.ts'), '--keep', '--dataset-mib', '32'], {
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
      const ec2 = new EC2Client({ endpoint: emulator[2], region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
      const managed = [{ Name: 'tag:trainctl:managed', Values: ['true'] }];
      const instances = (await ec2.send(new DescribeInstancesCommand({ Filters: managed }))).Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
      assert.ok(instances.length >= 1, 'the run launched a managed instance');
      assert.deepEqual(
        instances.filter((i) => i.State?.Name !== 'terminated').map((i) => i.InstanceId),
        [],
        'no managed instance is left running',
      );
      const volumes = (await ec2.send(new DescribeVolumesCommand({ Filters: managed }))).Volumes ?? [];
      assert.deepEqual(
        volumes.map((v) => v.VolumeId),
        [],
        'no managed volume is left (teardown: delete)',
      );
      ec2.destroy();
      child.kill('SIGINT');
      assert.equal(await exited, 0, out);
      assert.match(out, /Demo done; everything it started is stopped\./);
      await assert.rejects(fetch(`${emulator[2]}/moto-api/data.json`), 'the emulator is gone after Ctrl-C');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
