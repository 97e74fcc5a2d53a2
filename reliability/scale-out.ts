/**
 * Scenario (f): three orchestration workers poll one task queue (how users scale out on their own
 * cluster) and one of them, picked at random, is SIGKILLed whenever a run is open that no kill has
 * struck yet (reliability/campaign.ts strikeEveryRun), their AWS slowed (reliability/slow-aws.ts):
 * its work moves to the other two, with no side effect made twice. It comes back after a random delay.
 */
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, strikeEveryRun } from './campaign.js';
import { slowAws } from './slow-aws.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
import { campaignWorker } from './workers.js';

export async function runScaleOut(sc: ScenarioContext): Promise<RunOutcome[]> {
  const st = await stage(sc, 'scale-out', sc.temporalAddress);
  const aws = await slowAws(sc.awsEndpoint);
  const workers = [1, 2, 3].map((n) =>
    campaignWorker({
      name: `scale-out-${n}`,
      temporalAddress: sc.temporalAddress,
      awsEndpoint: aws.endpoint,
      taskQueue: st.ctx.taskQueue,
      roots: [st.ctx.workDir],
    }),
  );
  const families = selectFamilies(sc.families);
  let hosts: Hosts | undefined;
  try {
    await Promise.all(workers.map((w) => w.start()));
    hosts = await st.startHosts(families, aws.endpoint);
    const random = seededRandom(sc.seed ^ 0x5ca1e);
    return await runBatch({
      scenario: 'scale-out',
      families,
      runs: sc.runs,
      ctx: st.ctx,
      random,
      spreadMs: sc.smoke ? 3_000 : 30_000,
      deadlineMs: sc.smoke ? 150_000 : 900_000,
      log: sc.log,
      drive: (runs) =>
        strikeEveryRun(runs, random, { planned: sc.smoke ? 1 : 2, max: sc.smoke ? 6 : 12 }, async () => {
          const victim = workers[Math.floor(random() * workers.length)]!;
          await victim.kill();
          const down = 2_000 + random() * 8_000;
          sc.log(`scale-out: SIGKILLed ${victim.name}; the other two carry on; it returns in ${(down / 1000).toFixed(1)} s`);
          await sleep(down);
          await victim.start();
          return true;
        }),
    });
  } finally {
    await Promise.all([...workers.map((w) => w.stop()), hosts?.stop()]);
    await aws.stop();
    await st.close();
  }
}
