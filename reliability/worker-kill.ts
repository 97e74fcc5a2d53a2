/**
 * Scenario (a): the orchestration worker and the host worker (in turn, from a random first one) are
 * SIGKILLed at random points while every family's runs are in flight, and restarted after a random delay, as
 * systemd would restart it. A killed
 * activity is retried after its heartbeat timeout (transfers resume from their heartbeated
 * checkpoint); a killed workflow task moves to the restarted worker.
 */
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, type Fault } from './campaign.js';
import { needsHost, selectFamilies } from './families.js';
import { stage } from './stage.js';
import { campaignWorker } from './workers.js';

export async function runWorkerKill(sc: ScenarioContext): Promise<RunOutcome[]> {
  const st = await stage(sc, 'worker-kill', sc.temporalAddress);
  const worker = campaignWorker({
    name: 'worker-kill-orchestration',
    temporalAddress: sc.temporalAddress,
    awsEndpoint: sc.awsEndpoint,
    taskQueue: st.ctx.taskQueue,
    roots: [st.ctx.workDir],
  });
  const families = selectFamilies(sc.families);
  const host = needsHost(families) ? st.hostWorker(sc.awsEndpoint) : undefined;
  const victims = host ? [worker, host] : [worker];
  try {
    await Promise.all(victims.map((w) => w.start()));
    const random = seededRandom(sc.seed ^ 0xa11);
    const spreadMs = sc.smoke ? 6_000 : 40_000;
    const kills = sc.smoke ? 2 : 4;
    const first = Math.floor(random() * victims.length);
    return await runBatch({
      scenario: 'worker-kill',
      families,
      runs: sc.runs,
      ctx: st.ctx,
      random,
      spreadMs,
      deadlineMs: sc.smoke ? 150_000 : 900_000,
      log: sc.log,
      async drive(runs) {
        const struck: Fault[] = [];
        while (struck.length < kills && runs.pending()) {
          // Each kill lands somewhere in its share of the start window (later ones after the restart).
          await sleep(1_000 + random() * (spreadMs / kills));
          if (!(await runs.running())) break;
          // Each worker in turn, from a random first one: every kind is killed whatever the seed.
          const victim = victims[(first + struck.length) % victims.length]!;
          const at = Date.now();
          await victim.kill();
          const down = 500 + random() * 2_500;
          sc.log(`worker-kill: SIGKILLed ${victim.spec.name}; restarting it in ${(down / 1000).toFixed(1)} s`);
          await sleep(down);
          await victim.start();
          struck.push({ at, until: Date.now() });
        }
        return struck;
      },
    });
  } finally {
    await Promise.all(victims.map((w) => w.stop()));
    await st.close();
  }
}
