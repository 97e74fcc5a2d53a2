/**
 * What every scenario sets up and takes down around its batch: a Temporal client for the server it
 * uses, emulator clients (straight, never through the fault proxy), a bucket, a local root, and
 * names no other batch uses; afterwards, housekeeping of everything the batch made — only after the
 * checks have read it.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { loadEnv } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { costTrackerWorkflowId } from '../src/contracts/cost.js';
import type { Scenario, ScenarioContext } from './types.js';
import { CAMPAIGN_TAG, type RunContext } from './campaign.js';
import { deleteVolumesTagged, emptyPrefix } from './checks.js';
import { campaignWorker, type CampaignWorker } from './workers.js';

export interface Stage {
  ctx: Omit<RunContext, 'expired'>;
  /** The batch's host worker (not started): `--host ID --root DIR`, its AWS calls to `awsEndpoint`. */
  hostWorker(awsEndpoint: string, extraEnv?: Record<string, string>): CampaignWorker;
  /** Housekeeping: ends the batch's cost tracker, deletes its objects, volumes and files. */
  close(): Promise<void>;
}

export async function stage(sc: ScenarioContext, scenario: Scenario, temporalAddress: string): Promise<Stage> {
  const token = randomUUID().slice(0, 6);
  const tag = `rel-${scenario}-${token}`;
  const env = loadEnv({ TEMPORAL_ADDRESS: temporalAddress, AWS_ENDPOINT_URL: sc.awsEndpoint, AWS_REGION: 'us-east-1', TRAINCTL_AWS: 'emulator' });
  const s3 = createS3Client(env);
  const ec2 = createEc2Client(env);
  const bucket = tag;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  const workDir = join(sc.workDir, scenario, 'data');
  mkdirSync(workDir, { recursive: true });
  const host = { id: tag, root: join(sc.workDir, scenario, 'host') };
  mkdirSync(host.root, { recursive: true });
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection, namespace: 'default' });
  const ctx: Omit<RunContext, 'expired'> = {
    client,
    taskQueue: tag,
    s3,
    ec2,
    bucket,
    workDir,
    host,
    tag,
    project: tag,
    heartbeatSeconds: sc.smoke ? 10 : 15,
    smoke: sc.smoke ?? false,
  };
  return {
    ctx,
    hostWorker: (awsEndpoint, extraEnv) =>
      campaignWorker({
        name: `${scenario}-host`,
        temporalAddress,
        awsEndpoint,
        taskQueue: tag,
        roots: [host.root],
        hostId: host.id,
        ...(extraEnv ? { extraEnv } : {}),
      }),
    async close() {
      const problems: string[] = [];
      const attempt = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (err) {
          problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
        }
      };
      await attempt('terminate the cost tracker', async () => {
        try {
          await client.workflow.getHandle(costTrackerWorkflowId(tag)).terminate('reliability batch over');
        } catch (err) {
          if ((err as { name?: string }).name !== 'WorkflowNotFoundError') throw err;
        }
      });
      await attempt('empty the bucket', () => emptyPrefix(s3, bucket, ''));
      await attempt('delete the bucket', () => s3.send(new DeleteBucketCommand({ Bucket: bucket })));
      await attempt('delete the volumes', () => deleteVolumesTagged(ec2, CAMPAIGN_TAG, tag));
      await attempt('close the connection', () => connection.close());
      rmSync(workDir, { recursive: true, force: true });
      rmSync(host.root, { recursive: true, force: true });
      s3.destroy();
      ec2.destroy();
      if (problems.length) sc.log(`${scenario}: housekeeping: ${problems.join('; ')}`);
    },
  };
}
