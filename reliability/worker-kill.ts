/**
 * Scenario (a): the orchestration worker, the host worker and a simulated instance's host worker (in
 * turn, from a random first one) are SIGKILLed while every family's runs are in flight, and restarted
 * after a random delay, as systemd would: a kill whenever a run is open that no kill has struck yet
 * (reliability/campaign.ts strikeEveryRun), so every run lives through at least one. The workers'
 * AWS is slowed (reliability/slow-aws.ts), so their activities are mid-request when it lands. A
 * killed activity is retried after its heartbeat timeout (transfers resume from their heartbeated
 * checkpoint); a killed workflow task moves to the restarted worker.
 */
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, strikeEveryRun } from './campaign.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
import { campaignWorker } from './workers.js';
import { slowAws } from './slow-aws.js';

export async function runWorkerKill(sc: ScenarioContext): Promise<RunOutcome[]> {
  const st = await stage(sc, 'worker-kill', sc.temporalAddress);
  const aws = await slowAws(sc.awsEndpoint);
  const worker = campaignWorker({
    name: 'worker-kill-orchestration',
    temporalAddress: sc.temporalAddress,
    awsEndpoint: aws.endpoint,
    taskQueue: st.ctx.taskQueue,
    roots: [st.ctx.workDir],
  });
  const families = selectFamilies(sc.families);
  let hosts: Hosts | undefined;
  try {
    await worker.start();
    hosts = await st.startHosts(families, aws.endpoint);
    const victims = [worker, ...hosts.killable];
    const random = seededRandom(sc.seed ^ 0xa11);
    const first = Math.floor(random() * victims.length);
    return await runBatch({
      scenario: 'worker-kill',
      families,
      runs: sc.runs,
      ctx: st.ctx,
      random,
      spreadMs: sc.smoke ? 3_000 : 30_000,
      deadlineMs: sc.smoke ? 150_000 : 900_000,
      log: sc.log,
      drive: (runs) =>
        strikeEveryRun(runs, random, { planned: victims.length, max: sc.smoke ? 8 : 16 }, async (round, fault, targets) => {
          // In turn, skipping one whose crash reaches none of the runs still to strike.
          const turn = victims.map((_, k) => victims[(first + round + k) % victims.length]!);
          const victim = turn.find((v) => targets.length === 0 || !v.reaches || v.reaches.some((f) => targets.includes(f))) ?? turn[0]!;
          if (victim.reaches) fault.reaches = victim.reaches;
          if (!(await victim.kill())) return false;
          const down = 500 + random() * 2_500;
          sc.log(`worker-kill: SIGKILLed ${victim.name}; restarting it in ${(down / 1000).toFixed(1)} s`);
          await sleep(down);
          await victim.start();
          return true;
        }),
    });
  } finally {
    await Promise.all([worker.stop(), hosts?.stop()]);
    await aws.stop();
    await st.close();
  }
}
