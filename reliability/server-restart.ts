/**
 * Scenario (b): the batch runs on a dev server of its own that persists to a database file; whenever
 * a run is open that no restart has struck yet (reliability/campaign.ts strikeEveryRun) the server is
 * stopped and started again on the same port with the same file, while the workers' activities wait
 * on their slowed AWS requests (reliability/slow-aws.ts). The workers and the client reconnect by
 * themselves; every run must carry on from its history.
 */
import { join } from 'node:path';
import { startTemporalDevServer, type TemporalDevServer } from '../src/dev/services.js';
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, strikeEveryRun } from './campaign.js';
import { slowAws } from './slow-aws.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
import { campaignWorker } from './workers.js';

export async function runServerRestart(sc: ScenarioContext): Promise<RunOutcome[]> {
  const dbFile = join(sc.workDir, 'server-restart', 'temporal.db');
  let server: TemporalDevServer = await startTemporalDevServer({ dbFile, headless: true });
  const port = Number(server.address.split(':').pop());
  try {
    const st = await stage(sc, 'server-restart', server.address);
    const aws = await slowAws(sc.awsEndpoint);
    const worker = campaignWorker({
      name: 'server-restart-orchestration',
      temporalAddress: server.address,
      awsEndpoint: aws.endpoint,
      taskQueue: st.ctx.taskQueue,
      roots: [st.ctx.workDir],
    });
    const families = selectFamilies(sc.families);
    let hosts: Hosts | undefined;
    try {
      await worker.start();
      hosts = await st.startHosts(families, aws.endpoint);
      const random = seededRandom(sc.seed ^ 0x5e4);
      return await runBatch({
        scenario: 'server-restart',
        families,
        runs: sc.runs,
        ctx: st.ctx,
        random,
        spreadMs: sc.smoke ? 3_000 : 30_000,
        deadlineMs: sc.smoke ? 150_000 : 900_000,
        log: sc.log,
        drive: (runs) =>
          strikeEveryRun(runs, random, { planned: sc.smoke ? 1 : 2, max: sc.smoke ? 6 : 12 }, async () => {
            await server.stop();
            const down = 500 + random() * 2_500;
            sc.log(`server-restart: stopped the dev server; starting it again on port ${port} with ${dbFile} in ${(down / 1000).toFixed(1)} s`);
            await sleep(down);
            server = await startTemporalDevServer({ dbFile, port, headless: true });
            if (server.address !== `127.0.0.1:${port}`) throw new Error(`the dev server came back on ${server.address}, not port ${port}`);
            return true;
          }),
      });
    } finally {
      await Promise.all([worker.stop(), hosts?.stop()]);
      await aws.stop();
      await st.close();
    }
  } finally {
    await server.stop();
  }
}
