/**
 * The cost tracker family: each run is a project of its own whose tracker is told, one signal at a
 * time over a few seconds (so faults land between them), that six resources started and stopped at
 * known times with known hourly rates. Its total must then be exactly what those lifetimes cost: a
 * signal counted twice shows as a higher total (a duplicate), one lost as a lower one.
 */
import * as costApi from '../src/api/cost.js';
import { costTrackerWorkflowId } from '../src/contracts/cost.js';
import { noCounts } from './checks.js';
import { persist, sleep, type Ending, type Family } from './campaign.js';

const HOUR = 3_600_000;
const RESOURCES = 6;

export const costTracker: Family = {
  name: 'costTracker',
  awsFree: true,
  what: 'a project of its own whose tracker is told by signal-with-start, one signal every 0.3 s, that six resources started and stopped at known times and rates. Checked: the total reaches exactly the $22.75 those lifetimes cost (more means a lifetime counted twice, a duplicate; less by the deadline, unexpected).',
  async prepare(ctx, run) {
    const project = `${ctx.tag}-cost-${run}`;
    const target = { project, taskQueue: ctx.taskQueue };
    const t0 = Math.floor(Date.now() / HOUR) * HOUR - 48 * HOUR;
    // Resource k runs k+1 hours at $0.25·(k+1)/h: whole micro-dollars, and each lifetime distinct.
    const lifetimes = Array.from({ length: RESOURCES }, (_, k) => ({
      id: `${project}-r${k}`,
      rate: 0.25 * (k + 1),
      start: t0 + k * HOUR,
      stop: t0 + k * HOUR + (k + 1) * HOUR,
    }));
    const expectedMicroUsd = lifetimes.reduce((n, l) => n + Math.round(l.rate * ((l.stop - l.start) / HOUR) * 1e6), 0);
    let last = 'no total read';
    let seenMicroUsd: number | undefined;
    let sender: Promise<void> | undefined;
    return {
      workflowId: costTrackerWorkflowId(project),
      async start() {
        const first = lifetimes[0]!;
        await costApi.recordResourceStarted(ctx.client, target, {
          id: first.id,
          kind: 'volume',
          type: 'gp3',
          region: 'us-east-1',
          at: first.start,
          hourlyRate: first.rate,
        });
        sender = (async () => {
          for (const [k, l] of lifetimes.entries()) {
            if (k > 0)
              await persist(ctx, () =>
                costApi.recordResourceStarted(ctx.client, target, {
                  id: l.id,
                  kind: 'volume',
                  type: 'gp3',
                  region: 'us-east-1',
                  at: l.start,
                  hourlyRate: l.rate,
                }),
              );
            await sleep(300);
            await persist(ctx, () => costApi.recordResourceStopped(ctx.client, target, { id: l.id, at: l.stop }));
            await sleep(300);
          }
        })();
      },
      async settle(): Promise<Ending> {
        await sender;
        // The tracker has the signals once the server has them; wait until its total (a query, so a worker must be up) says it applied them all.
        while (!ctx.expired()) {
          try {
            const t = await costApi.total(ctx.client, project);
            seenMicroUsd = t.totalMicroUsd;
            last = `total ${t.totalMicroUsd} µ$ with ${t.running} running`;
            if (t.running === 0 && t.totalMicroUsd >= expectedMicroUsd) {
              return { ended: 'completed', detail: `${RESOURCES} lifetimes, ${last} (expected ${expectedMicroUsd} µ$)` };
            }
          } catch (err) {
            last = `query failed: ${err instanceof Error ? err.message : String(err)}`;
          }
          await sleep(500);
        }
        return { ended: 'unexpected', detail: `the tracker never reached the expected total ${expectedMicroUsd} µ$: ${last}` };
      },
      async check() {
        const c = noCounts();
        if (seenMicroUsd !== undefined && seenMicroUsd > expectedMicroUsd) {
          c.duplicates = 1;
          c.findings.push(`total ${seenMicroUsd} µ$ exceeds the ${expectedMicroUsd} µ$ the lifetimes cost: a lifetime was counted twice`);
        }
        await ctx.client.workflow
          .getHandle(costTrackerWorkflowId(project))
          .terminate('reliability run checked')
          .catch(() => undefined);
        return c;
      },
    };
  },
};
