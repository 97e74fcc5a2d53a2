/**
 * Scenario (a): the orchestration worker, the host worker and a simulated instance's host worker (in
 * turn, from a random first one) are SIGKILLed at random points while every family's runs are in
 * flight, and restarted after a random delay, as systemd would. A killed activity is retried after
 * its heartbeat timeout (transfers resume from their heartbeated checkpoint); a killed workflow task
 * moves to the restarted worker.
 */
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, type Fault } from './campaign.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
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
  let hosts: Hosts | undefined;
  try {
    await worker.start();
    hosts = await st.startHosts(families, sc.awsEndpoint);
    const victims = [worker, ...hosts.killable];
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
        for (let round = 0; struck.length < kills && runs.pending(); round++) {
          // Each kill lands somewhere in its share of the start window (later ones after the restart).
          await sleep(1_000 + random() * (spreadMs / kills));
          if (!(await runs.running())) break;
          // Each worker in turn, from a random first one: every kind is killed whatever the seed.
          const victim = victims[(first + round) % victims.length]!;
          const at = Date.now();
          if (!(await victim.kill())) continue;
          const down = 500 + random() * 2_500;
          sc.log(`worker-kill: SIGKILLed ${victim.name}; restarting it in ${(down / 1000).toFixed(1)} s`);
          await sleep(down);
          await victim.start();
          struck.push({ at, until: Date.now() });
        }
        return struck;
      },
    });
  } finally {
    await Promise.all([worker.stop(), hosts?.stop()]);
    await st.close();
  }
}
