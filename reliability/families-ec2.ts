/**
 * The EC2 families. provisionVolume: two callers ask for the same volume name at once (the way a
 * retried script does), and exactly one volume may carry that name afterwards. cleanup: the run
 * makes its own fixture — two managed volumes to delete, and a protected, an unmanaged and a
 * sibling volume that must survive — and approves the plan it is shown.
 */
import { CreateVolumeCommand, type Tag } from '@aws-sdk/client-ec2';
import * as volumeApi from '../src/api/volume.js';
import { approve, cleanupHandle, startCleanup, status } from '../src/api/cleanup.js';
import type { ProvisionVolumeRequest, ProvisionVolumeResult } from '../src/contracts/volume.js';
import type { CleanupRequest } from '../src/contracts/cleanup.js';
import { volumeWorkflowId } from '../src/contracts/volume.js';
import { PROJECT_TAG } from '../src/contracts/cost.js';
import { noCounts, volumeExists, volumesTagged } from './checks.js';
import { CAMPAIGN_TAG, describe, persist, settleResult, sleep, type Ending, type Family, type RunContext } from './campaign.js';

const REGION = 'us-east-1';
const AZ = 'us-east-1a';

export const provisionVolume: Family = {
  name: 'provisionVolume',
  what: 'two callers provision the same volume name at once. Checked: exactly one volume carries the Name tag (more are duplicates), both callers were told of that one, nothing left behind by a run that did not complete.',
  async prepare(ctx, run) {
    const name = `${ctx.tag}-vol-${run}`;
    const req: ProvisionVolumeRequest = { name, region: REGION, availabilityZone: AZ, sizeGiB: 1, project: ctx.project, tags: { [CAMPAIGN_TAG]: ctx.tag } };
    const results: ProvisionVolumeResult[] = [];
    // Two callers of one name: USE_EXISTING makes them one run; each gets its result.
    const caller = () =>
      persist(ctx, async () => {
        const h = await volumeApi.provision(ctx.client, req, { taskQueue: ctx.taskQueue });
        results.push(await h.result());
      });
    let callers: Promise<unknown> | undefined;
    return {
      workflowId: volumeWorkflowId(REGION, name),
      async start() {
        await volumeApi.provision(ctx.client, req, { taskQueue: ctx.taskQueue });
        callers = Promise.all([caller(), caller()]);
      },
      settle: () =>
        settleResult(
          ctx,
          () => callers!,
          (): Ending => {
            const ids = new Set(results.map((r) => r.volumeId));
            return ids.size === 1
              ? { ended: 'completed', detail: `${[...ids][0]} (${results.filter((r) => r.created).length} of 2 callers saw it created)` }
              : { ended: 'unexpected', detail: `the two callers were told of different volumes: ${[...ids].join(', ')}` };
          },
        ),
      async check(ending) {
        const c = noCounts();
        const named = (await volumesTagged(ctx.ec2, 'Name', name)).map((v) => v.VolumeId!);
        if (named.length > 1) {
          c.duplicates = named.length - 1;
          c.findings.push(`${named.length} volumes named ${name}: ${named.join(', ')}`);
        }
        if (ending.ended !== 'completed' && named.length > 0) {
          c.leaked = named.length;
          c.findings.push(`the run did not complete but left ${named.join(', ')}`);
        }
        if (ending.ended === 'completed' && named.length === 0) {
          c.unmet = 1;
          c.findings.push('no volume carries the name after the run completed');
        }
        return c;
      },
    };
  },
};

/** Makes a 1 GiB volume tagged as given (a cleanup fixture) straight in the emulator. */
async function fixtureVolume(ctx: RunContext, tags: Record<string, string>): Promise<string> {
  const Tags: Tag[] = Object.entries({ [CAMPAIGN_TAG]: ctx.tag, ...tags }).map(([Key, Value]) => ({ Key, Value }));
  const v = await ctx.ec2.send(new CreateVolumeCommand({ AvailabilityZone: AZ, Size: 1, TagSpecifications: [{ ResourceType: 'volume', Tags }] }));
  return v.VolumeId!;
}

export const cleanup: Family = {
  name: 'cleanup',
  what: 'the run makes its own fixture — two managed volumes to delete; a protected (listed in protectedIds), an unmanaged and a sibling-tagged volume to keep — starts an apply with approval threshold 0, and approves the plan once it names exactly the two targets. Checked: both targets gone (else leaked), the three others still there (else wrong deletions).',
  async prepare(ctx, run) {
    const runTag = 'trainctl-reliability-run';
    const id = `${ctx.tag}-cleanup-${run}`;
    // In the batch's own cost project, so no reconciliation of another project (or `default`) sees them.
    const managed = { 'trainctl:managed': 'true', [PROJECT_TAG]: ctx.project, [runTag]: id };
    const targets = [await fixtureVolume(ctx, managed), await fixtureVolume(ctx, managed)];
    const protectedVol = await fixtureVolume(ctx, managed);
    const keep = [protectedVol, await fixtureVolume(ctx, { [runTag]: id }), await fixtureVolume(ctx, { ...managed, [runTag]: `${id}-sibling` })];
    const req: CleanupRequest = { region: REGION, selector: { tags: { [runTag]: id } }, dryRun: false, approvalThreshold: 0, protectedIds: [protectedVol] };
    const workflowId = `${ctx.tag}/cleanup-${run}`;
    let approved = 'not approved';
    let done = false;
    /** The operator: reads the plan, approves it once it names exactly the run's two targets, retrying through faults. */
    const operator = async () => {
      const handle = cleanupHandle(ctx.client, workflowId);
      while (!done && !ctx.expired()) {
        try {
          const s = await status(handle);
          if (s.phase === 'running' || s.phase === 'done') return;
          if (s.phase === 'awaiting-approval' && s.plan) {
            const planned = s.plan.resources.map((r) => r.id).sort();
            if (planned.join() !== [...targets].sort().join()) {
              approved = `plan named ${planned.join(', ')}: not approved`;
              return;
            }
            await approve(handle, s.plan.hash);
            approved = 'approved';
          }
        } catch (err) {
          approved = `approval retried after ${describe(err)}`;
        }
        await sleep(500);
      }
    };
    return {
      workflowId,
      async start() {
        await startCleanup(ctx.client, req, { taskQueue: ctx.taskQueue, workflowId });
        void operator();
      },
      settle: async () => {
        const ending = await settleResult(
          ctx,
          () => cleanupHandle(ctx.client, workflowId).result(),
          (r): Ending =>
            r.outcome === 'completed' && r.report.failed.length === 0
              ? {
                  ended: 'completed',
                  detail: `deleted ${r.report.deleted.length}, already gone ${r.report.alreadyGone.length}, skipped ${r.report.skipped.length}`,
                }
              : { ended: 'unexpected', detail: `${r.outcome}: ${r.message ?? ''} failed ${JSON.stringify(r.report.failed)} (${approved})` },
        );
        done = true;
        return ending;
      },
      async check() {
        const c = noCounts();
        for (const v of targets) {
          if (!(await volumeExists(ctx.ec2, v))) continue;
          c.leaked++;
          c.findings.push(`target ${v} still exists`);
        }
        for (const v of keep) {
          if (await volumeExists(ctx.ec2, v)) continue;
          c.wrongDeletions++;
          c.findings.push(`${v} was deleted but was not to be`);
        }
        return c;
      },
    };
  },
};
