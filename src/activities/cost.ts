import { Context, getClient, log } from '@temporalio/activity';
import {
  StopInstancesCommand,
  paginateDescribeInstances,
  paginateDescribeVolumes,
  type EC2Client,
  type Filter,
  type Instance,
  type Volume,
} from '@aws-sdk/client-ec2';
import * as tracker from '../api/cost-signals.js';
import { tagsOf } from '../aws/tags.js';
import { tagExplicitlyTrue } from '../cleanup-tags.js';
import { TagKey } from '../contracts/common.js';
import { earliestStart } from '../cost/ledger.js';
import {
  PROJECT_TAG,
  type BudgetView,
  type SetBudgetRequest,
  type ReconcileOutcome,
  type ReconcileReport,
  type ResourceStarted,
  type ResourceStopped,
} from '../contracts/cost.js';
import { abortSignal, step, type ThrottleBackoff } from './aws-call.js';

export interface CostDeps {
  ec2(region: string): EC2Client;
  throttleBackoff?: ThrottleBackoff;
}

/** The tags a tracker keeps: the user's and Name, not trainctl's bookkeeping or AWS's. */
function userTags(tags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(tags).filter(([k]) => !k.trim().toLowerCase().startsWith('trainctl:') && !k.toLowerCase().startsWith('aws:')));
}

/** Whether a managed resource belongs to `project`: its project tag, or none for `default`. */
function inProject(tags: Record<string, string>, project: string): boolean {
  const p = tags[PROJECT_TAG];
  return p === project || (p === undefined && project === 'default');
}

const GONE_INSTANCE_STATES = new Set(['stopping', 'stopped', 'shutting-down', 'terminated']);
const GONE_VOLUME_STATES = new Set(['deleting', 'deleted', 'error']);

/** An untracked volume as the tracker records it: from its creation time (never in the future). */
function volumeOrphan(v: Volume, id: string, region: string, tags: Record<string, string>, now: number): ResourceStarted {
  return {
    id,
    kind: 'volume',
    type: v.VolumeType ?? 'unknown',
    ...(v.Size !== undefined ? { sizeGiB: v.Size } : {}),
    ...(v.Iops !== undefined ? { iops: v.Iops } : {}),
    ...(v.Throughput !== undefined ? { throughputMiBps: v.Throughput } : {}),
    region,
    tags: userTags(tags),
    at: Math.max(Math.min(v.CreateTime?.getTime() ?? now, now), earliestStart(now)),
  };
}

/** An untracked instance as the tracker records it: from its launch time (never in the future). */
function instanceOrphan(i: Instance, id: string, region: string, tags: Record<string, string>, now: number): ResourceStarted {
  return {
    id,
    kind: 'instance',
    type: i.InstanceType ?? 'unknown',
    region,
    tags: userTags(tags),
    at: Math.max(Math.min(i.LaunchTime?.getTime() ?? now, now), earliestStart(now)),
  };
}

/** The tracker of `project`, started (if it must be) on this activity's own task queue, where a worker runs the tracker too. */
function trackerOf(project: string) {
  return { project, taskQueue: Context.current().info.taskQueue };
}

export function createCostActivities(deps: CostDeps) {
  const backoff = deps.throttleBackoff;

  async function describeVolumes(region: string, filters: Filter[]): Promise<Volume[]> {
    const out: Volume[] = [];
    const pages = paginateDescribeVolumes({ client: deps.ec2(region), pageSize: 500 }, { Filters: filters }, { abortSignal: abortSignal() });
    for await (const page of pages) out.push(...(page.Volumes ?? []));
    return out;
  }

  async function describeInstances(region: string, filters: Filter[]): Promise<Instance[]> {
    const out: Instance[] = [];
    const pages = paginateDescribeInstances({ client: deps.ec2(region), pageSize: 500 }, { Filters: filters }, { abortSignal: abortSignal() });
    for await (const page of pages) for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
    return out;
  }

  /** The project's managed resources in the region that still cost money, and those the tracker does not know. */
  async function findOrphans(project: string, region: string, trackedIds: Set<string>, now: number): Promise<{ checked: number; orphans: ResourceStarted[] }> {
    const managed = [{ Name: `tag:${TagKey.Managed}`, Values: ['true'] }];
    const projectFilter = project === 'default' ? [] : [{ Name: `tag:${PROJECT_TAG}`, Values: [project] }];
    const [volumes, instances] = await step(
      `list managed resources in ${region}`,
      () => Promise.all([describeVolumes(region, [...managed, ...projectFilter]), describeInstances(region, [...managed, ...projectFilter])]),
      backoff,
    );
    let checked = 0;
    const orphans: ResourceStarted[] = [];
    for (const v of volumes) {
      const tags = tagsOf(v.Tags);
      if (!v.VolumeId || !inProject(tags, project) || GONE_VOLUME_STATES.has(v.State ?? '')) continue;
      checked++;
      if (!trackedIds.has(v.VolumeId)) orphans.push(volumeOrphan(v, v.VolumeId, region, tags, now));
    }
    for (const i of instances) {
      const tags = tagsOf(i.Tags);
      if (!i.InstanceId || !inProject(tags, project) || GONE_INSTANCE_STATES.has(i.State?.Name ?? '')) continue;
      checked++;
      if (!trackedIds.has(i.InstanceId)) orphans.push(instanceOrphan(i, i.InstanceId, region, tags, now));
    }
    return { checked, orphans };
  }

  /**
   * The tracked resources of the region EC2 no longer has (or has stopped). They are looked up by
   * id, whatever their tags say, so an untagged or re-tagged one is not mistaken for gone.
   */
  async function findVanished(region: string, tracked: { id: string; kind: string; region: string }[]): Promise<{ id: string; state: string }[]> {
    const mine = tracked.filter((r) => r.region === region);
    const volIds = mine.filter((r) => r.kind === 'volume').map((r) => r.id);
    const instIds = mine.filter((r) => r.kind === 'instance').map((r) => r.id);
    const [liveVols, liveInsts] = await step(
      `look up tracked resources in ${region}`,
      () =>
        Promise.all([
          volIds.length ? describeVolumes(region, [{ Name: 'volume-id', Values: volIds }]) : Promise.resolve([]),
          instIds.length ? describeInstances(region, [{ Name: 'instance-id', Values: instIds }]) : Promise.resolve([]),
        ]),
      backoff,
    );
    const volState = new Map(liveVols.map((v) => [v.VolumeId, v.State ?? 'unknown']));
    const instState = new Map(liveInsts.map((i) => [i.InstanceId, i.State?.Name ?? 'unknown']));
    const vanished: { id: string; state: string }[] = [];
    for (const id of volIds) {
      const s = volState.get(id);
      if (s === undefined || GONE_VOLUME_STATES.has(s)) vanished.push({ id, state: s ?? 'not found' });
    }
    for (const id of instIds) {
      const s = instState.get(id);
      if (s === undefined || GONE_INSTANCE_STATES.has(s)) vanished.push({ id, state: s ?? 'not found' });
    }
    return vanished;
  }

  return {
    /**
     * Tells the project's cost tracker that a resource started (signal-with-start). Idempotent: the
     * tracker counts a repeated start of the same id as a duplicate. Safe to retry; nothing to cancel.
     */
    async recordResourceStarted(args: { project: string; resource: ResourceStarted }): Promise<{ workflowId: string }> {
      const { workflowId } = await tracker.recordResourceStarted(getClient(), trackerOf(args.project), args.resource);
      log.info('cost tracker told of a start', { project: args.project, id: args.resource.id });
      return { workflowId };
    },

    /** Tells the project's cost tracker that a resource stopped. Idempotent like `recordResourceStarted`. */
    async recordResourceStopped(args: { project: string; stop: ResourceStopped }): Promise<{ workflowId: string }> {
      const { workflowId } = await tracker.recordResourceStopped(getClient(), trackerOf(args.project), args.stop);
      log.info('cost tracker told of a stop', { project: args.project, id: args.stop.id });
      return { workflowId };
    },

    /** Sets (or replaces by name) a budget on the project's tracker, starting it if need be (a training run's budget). */
    async setProjectBudget(args: { project: string; budget: SetBudgetRequest }): Promise<BudgetView> {
      return tracker.setTrackerBudget(getClient(), trackerOf(args.project), args.budget);
    },

    /** What these resources have cost so far, from the project's tracker (a run's report). Read-only. */
    async costOfResources(args: { project: string; ids: string[] }): Promise<{ usd: number; unpriced: string[] } | null> {
      // A report's figure, not worth a retry: a tracker too busy to answer (its query buffer full
      // under a signal storm) gives null, and the report says the cost is unknown.
      return tracker.resourcesCost(getClient(), args.project, args.ids).catch((err: unknown) => {
        log.warn('cost tracker did not answer; the cost is left out', { project: args.project, error: err instanceof Error ? err.message : String(err) });
        return null;
      });
    },

    /**
     * A budget's stop-instances action: stops the instances that are still pending or running — only
     * those EC2 says are managed by trainctl (an explicit `trainctl:managed=true`) and belong to
     * `project`: the tracker's list comes from signals anyone who can reach the tracker can send, so
     * an id in it is no proof the instance is the project's. The others are `refused`, untouched.
     * Idempotent: already stopped or vanished instances count as stopped. Cancellable between calls.
     */
    async stopInstances(args: {
      region: string;
      instanceIds: string[];
      project?: string;
    }): Promise<{ stopped: string[]; refused: { id: string; reason: string }[] }> {
      return step(
        `stop ${args.instanceIds.length} instances in ${args.region}`,
        async () => {
          if (!args.instanceIds.length) return { stopped: [], refused: [] };
          const found = await describeInstances(args.region, [{ Name: 'instance-id', Values: args.instanceIds }]);
          const refused: { id: string; reason: string }[] = [];
          const mine = found.filter((i) => {
            const tags = tagsOf(i.Tags);
            const reason = !tagExplicitlyTrue(tags, TagKey.Managed)
              ? `not managed by trainctl (no explicit ${TagKey.Managed}=true)`
              : args.project !== undefined && !inProject(tags, args.project)
                ? `not in project ${args.project} (${PROJECT_TAG}=${tags[PROJECT_TAG] ?? 'none'})`
                : undefined;
            if (reason) refused.push({ id: i.InstanceId ?? '', reason });
            return reason === undefined;
          });
          const live = mine.filter((i) => i.State?.Name === 'pending' || i.State?.Name === 'running').map((i) => i.InstanceId ?? '');
          if (live.length) {
            await deps.ec2(args.region).send(new StopInstancesCommand({ InstanceIds: live }), { abortSignal: abortSignal() });
            log.warn('instances stopped by a budget', { region: args.region, instanceIds: live });
          }
          const refusedIds = new Set(refused.map((r) => r.id));
          if (refused.length) log.warn('budget refused to stop instances it does not manage', { region: args.region, refused });
          return { stopped: args.instanceIds.filter((id) => !refusedIds.has(id)), refused };
        },
        backoff,
      );
    },

    /**
     * Compares the trainctl-managed volumes and instances of `project` in EC2 with what its cost
     * tracker believes is running, and sends the tracker the difference: resources EC2 has but the
     * tracker does not (orphans, registered from their creation time) and tracked ones EC2 no longer
     * has or has stopped (vanished, stopped now). The tracker re-checks each against its own state,
     * so a start or stop that races with this report is neither lost nor counted twice. Read-only in
     * EC2; safe to retry.
     */
    async reconcileProject(args: { project: string; regions: string[] }): Promise<ReconcileOutcome> {
      const { project, regions } = args;
      const tracked = await tracker.trackedRunning(getClient(), project);
      const trackedIds = new Set(tracked.map((r) => r.id));
      const now = Date.now();
      const orphans: ResourceStarted[] = [];
      const vanished: { id: string; state: string }[] = [];
      let checked = 0;
      for (const region of regions) {
        const found = await findOrphans(project, region, trackedIds, now);
        checked += found.checked;
        orphans.push(...found.orphans);
        vanished.push(...(await findVanished(region, tracked)));
      }
      const report: ReconcileReport = { at: now, regions, orphans, vanished, checked };
      await tracker.reportReconciliation(getClient(), trackerOf(project), report);
      if (orphans.length || vanished.length) log.warn('reconciliation found differences', { project, orphans: orphans.map((o) => o.id), vanished });
      return {
        project,
        at: new Date(now).toISOString(),
        regions,
        checked,
        orphans: orphans.map((o) => ({ id: o.id, kind: o.kind, type: o.type, region: o.region })),
        vanished,
      };
    },
  };
}
