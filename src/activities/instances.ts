import { createHash } from 'node:crypto';
import { DescribeInstancesCommand, RunInstancesCommand, type EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { Context, log } from '@temporalio/activity';
import { TagKey } from '../contracts/common.js';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { tagsOf } from '../aws/tags.js';
import { pollUntil } from '../aws/poll.js';
import { encodeUserData, generateUserData, type BootstrapParamsInput } from '../run/user-data.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';

/** The run a resource belongs to (its name): `trainctl:run`. */
export const RUN_TAG = 'trainctl:run';
const PROJECT_TAG = 'trainctl:project';

export interface InstanceDeps {
  ec2(region: string): EC2Client;
  pollIntervalMs?: number;
  throttleBackoff?: ThrottleBackoff;
  /**
   * What a launched instance's bootstrap connects to: this worker's Temporal and the trainctl
   * package to install. Never a secret (user-data is readable from the instance and the console).
   */
  bootstrap: Omit<BootstrapParamsInput, 'root'>;
}

export interface InstanceInfo {
  instanceId: string;
  state: string;
  instanceType: string;
  availabilityZone?: string;
  tags: Record<string, string>;
  /** Spot or on-demand. */
  lifecycle: 'spot' | 'on-demand';
}

export interface LaunchInstanceInput {
  runName: string;
  project: string;
  region: string;
  availabilityZone: string;
  instanceType: string;
  ami: string;
  market: 'on-demand' | 'spot';
  maxPriceUsdPerHour?: number;
  /** The instance profile (name or ARN) whose role the host worker uses for AWS. */
  instanceProfile?: string;
  root: string;
  tags: Record<string, string>;
  workflowId: string;
  runId: string;
}

function toInfo(i: Instance): InstanceInfo {
  return {
    instanceId: i.InstanceId ?? '',
    state: i.State?.Name ?? 'unknown',
    instanceType: i.InstanceType ?? 'unknown',
    ...(i.Placement?.AvailabilityZone ? { availabilityZone: i.Placement.AvailabilityZone } : {}),
    tags: tagsOf(i.Tags),
    lifecycle: i.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
  };
}

/** RunInstances' idempotency token for one workflow run. */
export function launchTokenFor(workflowId: string, runId: string): string {
  return createHash('sha256').update(`launch\n${workflowId}\n${runId}`).digest('hex').slice(0, 64);
}

/** Training instances: launch (idempotent per run), describe, wait for a state, stop, terminate. */
export function createInstanceActivities(deps: InstanceDeps) {
  const backoff = deps.throttleBackoff;
  const opts = () => ({ abortSignal: abortSignal() });

  async function describe(region: string, filters: { Name: string; Values: string[] }[], ids?: string[]): Promise<InstanceInfo[]> {
    const res = await deps.ec2(region).send(new DescribeInstancesCommand({ ...(ids ? { InstanceIds: ids } : { Filters: filters }) }), opts());
    return (res.Reservations ?? []).flatMap((r) => r.Instances ?? []).map(toInfo);
  }

  async function describeOne(region: string, instanceId: string): Promise<InstanceInfo> {
    const [found] = await describe(region, [], [instanceId]);
    if (!found) throw new TrainctlError(ErrorKind.NotFound, `instance ${instanceId} not found in ${region}`);
    return found;
  }

  return {
    /**
     * Launches the run's instance with trainctl's bootstrap as user-data, tagged Name /
     * trainctl:managed / trainctl:project / trainctl:run / the workflow and run ids in the same call.
     * Idempotent per workflow run: a retry first looks for the instance this run launched (the
     * emulator ignores ClientToken), and RunInstances carries a ClientToken derived from the run
     * (real AWS honours it), so a lost response never makes a second instance.
     */
    async launchInstance(input: LaunchInstanceInput): Promise<InstanceInfo> {
      return step(
        `launch ${input.instanceType} for run ${input.runName}`,
        async () => {
          const mine = (await describe(input.region, [{ Name: `tag:${TagKey.RunId}`, Values: [input.runId] }])).filter(
            (i) => i.state !== 'terminated' && i.state !== 'shutting-down',
          );
          if (mine[0]) {
            log.info('instance already launched by this run', { instanceId: mine[0].instanceId, attempt: Context.current().info.attempt });
            return mine[0];
          }
          const userData = generateUserData({ ...deps.bootstrap, root: input.root });
          const tags = {
            ...input.tags,
            [TagKey.Name]: `trainctl-${input.runName}`,
            [TagKey.Managed]: 'true',
            [PROJECT_TAG]: input.project,
            [RUN_TAG]: input.runName,
            [TagKey.WorkflowId]: input.workflowId,
            [TagKey.RunId]: input.runId,
          };
          const res = await deps.ec2(input.region).send(
            new RunInstancesCommand({
              ImageId: input.ami,
              InstanceType: input.instanceType as never,
              MinCount: 1,
              MaxCount: 1,
              Placement: { AvailabilityZone: input.availabilityZone },
              UserData: encodeUserData(userData),
              ...(input.instanceProfile
                ? { IamInstanceProfile: input.instanceProfile.startsWith('arn:') ? { Arn: input.instanceProfile } : { Name: input.instanceProfile } }
                : {}),
              ClientToken: launchTokenFor(input.workflowId, input.runId),
              ...(input.market === 'spot'
                ? {
                    InstanceMarketOptions: {
                      MarketType: 'spot',
                      SpotOptions: {
                        SpotInstanceType: 'one-time',
                        InstanceInterruptionBehavior: 'terminate',
                        ...(input.maxPriceUsdPerHour !== undefined ? { MaxPrice: String(input.maxPriceUsdPerHour) } : {}),
                      },
                    },
                  }
                : {}),
              TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }],
            }),
            opts(),
          );
          const launched = res.Instances?.[0];
          if (!launched?.InstanceId) throw new TrainctlError(ErrorKind.Unknown, 'RunInstances returned no instance');
          log.info('instance launched', { instanceId: launched.InstanceId, type: input.instanceType, market: input.market });
          return toInfo(launched);
        },
        backoff,
      );
    },

    /** The instance as EC2 sees it now; NotFound when EC2 does not know it. */
    async describeInstance(args: { region: string; instanceId: string }): Promise<InstanceInfo> {
      return step(`describe ${args.instanceId}`, () => describeOne(args.region, args.instanceId), backoff);
    },

    /**
     * Polls until the instance reaches `state`, heartbeating what it saw (one activity in the
     * history however long EC2 takes). A terminated instance while waiting for running fails NotFound.
     */
    async waitForInstanceState(args: { region: string; instanceId: string; state: 'running' | 'stopped' | 'terminated' }): Promise<InstanceInfo> {
      return step(
        `wait for ${args.instanceId} to be ${args.state}`,
        () =>
          pollUntil(async () => {
            const i = await describeOne(args.region, args.instanceId);
            if (i.state === args.state) return { done: true, value: i };
            if (args.state !== 'terminated' && (i.state === 'terminated' || i.state === 'shutting-down')) {
              throw new TrainctlError(ErrorKind.NotFound, `instance ${args.instanceId} is ${i.state}`);
            }
            return { done: false, seen: { state: i.state } };
          }, deps.pollIntervalMs ?? 2_000),
        backoff,
      );
    },

    /** The instances a workflow run launched (found by its run-id tag), whatever their state. */
    async findRunInstances(args: { region: string; runId: string }): Promise<InstanceInfo[]> {
      return step(`find instances of run ${args.runId}`, () => describe(args.region, [{ Name: `tag:${TagKey.RunId}`, Values: [args.runId] }]), backoff);
    },
  };
}

export type InstanceActivities = ReturnType<typeof createInstanceActivities>;
