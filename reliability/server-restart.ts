/**
 * Scenario (b): the batch runs on a dev server of its own that persists to a database file; at a
 * random point the server is stopped and started again on the same port with the same file. The
 * workers and the client reconnect by themselves; every run must carry on from its history.
 */
import { join } from 'node:path';
import { startTemporalDevServer, type TemporalDevServer } from '../src/dev/services.js';
import type { RunOutcome, ScenarioContext } from './types.js';
import { runBatch, seededRandom, sleep, type Fault } from './campaign.js';
import { selectFamilies } from './families.js';
import { stage, type Hosts } from './stage.js';
import { campaignWorker } from './workers.js';

export async function runServerRestart(sc: ScenarioContext): Promise<RunOutcome[]> {
  const dbFile = join(sc.workDir, 'server-restart', 'temporal.db');
  let server: TemporalDevServer = await startTemporalDevServer({ dbFile, headless: true });
  const port = Number(server.address.split(':').pop());
  try {
    const st = await stage(sc, 'server-restart', server.address);
    const worker = campaignWorker({
      name: 'server-restart-orchestration',
      temporalAddress: server.address,
      awsEndpoint: sc.awsEndpoint,
      taskQueue: st.ctx.taskQueue,
      roots: [st.ctx.workDir],
    });
    const families = selectFamilies(sc.families);
    let hosts: Hosts | undefined;
    try {
      await worker.start();
      hosts = await st.startHosts(families, sc.awsEndpoint);
      const random = seededRandom(sc.seed ^ 0x5e4);
      const spreadMs = sc.smoke ? 6_000 : 40_000;
      const restarts = sc.smoke ? 1 : 2;
      return await runBatch({
        scenario: 'server-restart',
        families,
        runs: sc.runs,
        ctx: st.ctx,
        random,
        spreadMs,
        deadlineMs: sc.smoke ? 150_000 : 900_000,
        log: sc.log,
        async drive(runs) {
          const struck: Fault[] = [];
          while (struck.length < restarts && runs.pending()) {
            await sleep(1_000 + random() * (spreadMs / restarts));
            if (!(await runs.running())) break;
            const at = Date.now();
            await server.stop();
            const down = 500 + random() * 2_500;
            sc.log(`server-restart: stopped the dev server; starting it again on port ${port} with ${dbFile} in ${(down / 1000).toFixed(1)} s`);
            await sleep(down);
            server = await startTemporalDevServer({ dbFile, port, headless: true });
            if (server.address !== `127.0.0.1:${port}`) throw new Error(`the dev server came back on ${server.address}, not port ${port}`);
            struck.push({ at, until: Date.now() });
          }
          return struck;
        },
      });
    } finally {
      await Promise.all([worker.stop(), hosts?.stop()]);
      await st.close();
    }
  } finally {
    await server.stop();
  }
}
