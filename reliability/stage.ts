/**
 * What every scenario sets up and takes down around its batch: a Temporal client for the server it
 * uses, emulator clients (straight, never through the fault proxy), a bucket, a local root, and
 * names no other batch uses; afterwards, housekeeping of everything the batch made — only after the
 * checks have read it.
 */
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { loadEnv } from '../src/config.js';
import { createEc2Client, createS3Client } from '../src/aws/clients.js';
import { costTrackerWorkflowId } from '../src/contracts/cost.js';
import type { Scenario, ScenarioContext } from './types.js';
import { CAMPAIGN_TAG, type Family, type RunContext } from './campaign.js';
import { deleteVolumesTagged, emptyPrefix } from './checks.js';
import { campaignWorker, type Killable } from './workers.js';
import { needsHost } from './families.js';
import { startInstanceSimulator } from '../src/dev/instances.js';
import { repoRoot } from '../src/dev/services.js';

export interface Stage {
  ctx: Omit<RunContext, 'expired'>;
  /**
   * Starts what the families need besides the orchestration workers, their AWS calls to
   * `awsEndpoint`: the batch's host worker (`--host ID --root DIR`) and the instance simulator.
   * `killable` are the processes a scenario may crash.
   */
  startHosts(families: readonly Family[], awsEndpoint: string, extraEnv?: Record<string, string>): Promise<Hosts>;
  /** Housekeeping: ends the batch's cost tracker, deletes its objects, volumes and files. */
  close(): Promise<void>;
}

export interface Hosts {
  killable: Killable[];
  stop(): Promise<void>;
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
  const trainingCode = join(workDir, 'train-code');
  cpSync(join(repoRoot, 'examples', 'train'), trainingCode, { recursive: true });
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
    trainingCode,
    tag,
    project: tag,
    heartbeatSeconds: sc.smoke ? 10 : 15,
    smoke: sc.smoke ?? false,
  };
  return {
    ctx,
    async startHosts(families, awsEndpoint, extraEnv) {
      const worker = needsHost(families)
        ? campaignWorker({
            name: `${scenario}-host`,
            temporalAddress,
            awsEndpoint,
            taskQueue: tag,
            roots: [host.root],
            hostId: host.id,
            ...(extraEnv ? { extraEnv } : {}),
          })
        : undefined;
      await worker?.start();
      const sim = families.some((f) => f.needsSimulator)
        ? startInstanceSimulator({
            env: { TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: 'default', AWS_ENDPOINT_URL: awsEndpoint, AWS_REGION: 'us-east-1' },
            pollMs: 500,
            hostsDir: join(sc.workDir, scenario, 'instances'),
            graceMs: 5_000,
            tags: { [CAMPAIGN_TAG]: tag },
            onError: (err) => sc.log(`${scenario}: instance simulator: ${err instanceof Error ? err.message : String(err)}`),
          })
        : undefined;
      let victim: string | undefined;
      const instanceHost: Killable | undefined = sim && {
        name: 'an instance’s host worker',
        reaches: families.filter((f) => f.needsSimulator).map((f) => f.name),
        // A live instance's worker, picked by the clock (the simulator restarts it, as an instance's systemd would).
        async kill() {
          const live = [...sim.hosts().keys()];
          victim = live[Date.now() % Math.max(1, live.length)];
          if (victim === undefined) return false;
          await sim.kill(victim, 'SIGKILL');
          return true;
        },
        async start() {
          if (victim !== undefined) await sim.waitForHost(victim, 180_000).catch(() => undefined);
        },
      };
      return {
        killable: [
          ...(worker
            ? [{ name: worker.name, reaches: families.filter((f) => needsHost([f])).map((f) => f.name), kill: worker.kill, start: worker.start }]
            : []),
          ...(instanceHost ? [instanceHost] : []),
        ],
        stop: async () => {
          await Promise.all([worker?.stop(), sim?.stop()]);
        },
      };
    },
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
