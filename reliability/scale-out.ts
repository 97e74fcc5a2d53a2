/**
 * Scenario (f): three orchestration workers poll one task queue (how users scale out on their own
 * cluster) and one of them, picked at random, is SIGKILLed while runs are in flight: its work moves
 * to the other two, with no side effect made twice. The killed one comes back after a random delay.
 */
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, type Fault } from './campaign.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
import { campaignWorker } from './workers.js';

export async function runScaleOut(sc: ScenarioContext): Promise<RunOutcome[]> {
  const st = await stage(sc, 'scale-out', sc.temporalAddress);
  const workers = [1, 2, 3].map((n) =>
    campaignWorker({
      name: `scale-out-${n}`,
      temporalAddress: sc.temporalAddress,
      awsEndpoint: sc.awsEndpoint,
      taskQueue: st.ctx.taskQueue,
      roots: [st.ctx.workDir],
    }),
  );
  const families = selectFamilies(sc.families);
  let hosts: Hosts | undefined;
  try {
    await Promise.all(workers.map((w) => w.start()));
    hosts = await st.startHosts(families, sc.awsEndpoint);
    const random = seededRandom(sc.seed ^ 0x5ca1e);
    const spreadMs = sc.smoke ? 6_000 : 40_000;
    const kills = sc.smoke ? 1 : 2;
    return await runBatch({
      scenario: 'scale-out',
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
          await sleep(1_000 + random() * (spreadMs / kills));
          if (!(await runs.running())) break;
          const victim = workers[Math.floor(random() * workers.length)]!;
          const at = Date.now();
          await victim.kill();
          const down = 2_000 + random() * 8_000;
          sc.log(`scale-out: SIGKILLed ${victim.name}; the other two carry on; it returns in ${(down / 1000).toFixed(1)} s`);
          await sleep(down);
          await victim.start();
          struck.push({ at, until: Date.now() });
        }
        return struck;
      },
    });
  } finally {
    await Promise.all([...workers.map((w) => w.stop()), hosts?.stop()]);
    await st.close();
  }
}
