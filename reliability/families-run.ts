/**
 * The training-run family: a whole run (instance, volume, dataset pulled onto the instance, the
 * example training program, checkpoints and outputs to S3, teardown) on the instance simulator
 * (src/dev/instances.ts), which plays each launched instance with a host worker process. Heavy, so
 * a scenario runs at most {@link TRAINING_RUNS} of them. Checked: one instance launched per run,
 * nothing of it left running (instance, data volume), outputs in S3.
 */
import { DescribeInstancesCommand, DescribeImagesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import * as runApi from '../src/api/run.js';
import type { RunRequest } from '../src/contracts/run.js';
import { noCounts, objectsUnder, volumesTagged } from './checks.js';
import { CAMPAIGN_TAG, settleResult, type Ending, type Family } from './campaign.js';

/** Runs per scenario at most: each is an instance, i.e. a host worker process, on a 2-core machine. */
export const TRAINING_RUNS = 5;

async function anyAmi(ec2: EC2Client): Promise<string> {
  const images = await ec2.send(new DescribeImagesCommand({}));
  const ami = images.Images?.find((i) => /^ami-[0-9a-f]{8,17}$/.test(i.ImageId ?? ''))?.ImageId;
  if (!ami) throw new Error('the emulator lists no AMI');
  return ami;
}

export const trainingRun: Family = {
  name: 'trainingRun',
  what: `a whole training run (g5.xlarge on the instance simulator, an 8 GiB volume, a 4-shard dataset pulled into the instance’s local cache, the example training program for 20 steps with checkpoints, outputs to S3, teardown); at most ${TRAINING_RUNS} per scenario. Checked: one instance launched for the run (more are duplicates), no instance or data volume of it left (leaks), its outputs in S3.`,
  maxRuns: TRAINING_RUNS,
  needsSimulator: true,
  async prepare(ctx, run) {
    const name = `${ctx.tag}-run-${run}`;
    const prefix = `${ctx.tag}/run-${run}/`;
    for (let i = 0; i < 4; i++) {
      await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: `${prefix}dataset/shard-${i}.txt`, Body: `shard ${i}\n`.repeat(1000 + i) }));
    }
    const request: RunRequest = {
      name,
      project: ctx.project,
      region: 'us-east-1',
      availabilityZone: 'us-east-1a',
      instance: { type: 'g5.xlarge', ami: await anyAmi(ctx.ec2) },
      volume: { sizeGiB: 8 },
      dataset: { source: { kind: 's3', uri: `s3://${ctx.bucket}/${prefix}dataset/` }, strategy: 'LocalCache' },
      training: {
        command: ['python3', 'train.py', '--steps', '20', '--checkpoint-every', '5', '--step-seconds', '0.05'],
        codeFrom: { kind: 'local', path: ctx.trainingCode },
        checkpointUri: `s3://${ctx.bucket}/${prefix}checkpoints/`,
        outputsUri: `s3://${ctx.bucket}/${prefix}outputs/`,
        checkpointEverySeconds: 10,
        stopGraceSeconds: 10,
      },
      tags: { [CAMPAIGN_TAG]: ctx.tag },
    };
    return {
      workflowId: `run/${name}`,
      start: async () => void (await runApi.start(ctx.client, request, { taskQueue: ctx.taskQueue })),
      settle: () =>
        settleResult(
          ctx,
          () => runApi.handle(ctx.client, name).result(),
          (r): Ending =>
            r.outcome === 'completed'
              ? { ended: 'completed', detail: `completed; undone: ${r.undone.length}` }
              : { ended: 'unexpected', detail: `${r.outcome}; undone: ${r.undone.join(', ')}` },
        ),
      async check(ending) {
        const c = noCounts();
        const res = await ctx.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:trainctl:run', Values: [name] }] }));
        const instances = (res.Reservations ?? []).flatMap((r) => r.Instances ?? []);
        if (instances.length > 1) {
          c.duplicates += instances.length - 1;
          c.findings.push(`${instances.length} instances launched: ${instances.map((i) => i.InstanceId).join(', ')}`);
        }
        for (const i of instances.filter((i) => i.State?.Name !== 'terminated')) {
          c.leaked++;
          c.findings.push(`instance ${i.InstanceId} left ${i.State?.Name}`);
        }
        for (const v of await volumesTagged(ctx.ec2, 'Name', `${name}-data`)) {
          c.leaked++;
          c.findings.push(`volume ${v.VolumeId} left ${v.State}`);
        }
        if (ending.ended === 'completed' && (await objectsUnder(ctx.s3, ctx.bucket, `${prefix}outputs/`)).size === 0) {
          c.unmet = 1;
          c.findings.push('no outputs in S3 after the run completed');
        }
        return c;
      },
    };
  },
};
