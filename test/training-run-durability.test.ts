import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import * as run from '../src/api/run.js';
import { RunOutcome, RunStep, runStatusQuery, type RunStatus } from '../src/contracts/run.js';
import type { trainingRun } from '../src/workflows/training-run.js';
import { uniqueName } from './helpers/harness.js';
import { leftovers, runName, runSuite, type RunSuite } from './helpers/run.js';
import {
  assertTrainedOnce,
  runResources,
  slowTraining,
  stepsLogged,
  trainingEvidence,
  trainingProcesses,
  waitUntil,
  type TrainingEvidence,
} from './helpers/run-evidence.js';
import { startWorkerProcess } from './helpers/worker-process.js';

let suite: RunSuite;

before(async () => {
  suite = await runSuite('rundur');
});

const hostRoot = (instanceId: string) => join(suite.hostsDir, instanceId, 'root');

/** Waits until the run trains on its instance and the program has logged at least `minSteps` steps. */
async function waitForTraining(
  handle: WorkflowHandle<typeof trainingRun>,
  name: string,
  minSteps: number,
): Promise<{ instanceId: string; evidence: TrainingEvidence }> {
  const status = await waitUntil(
    async () => {
      const s: RunStatus = await handle.query(runStatusQuery);
      assert.equal(s.outcome, undefined, `the run ended before training: ${JSON.stringify(s)}`);
      return s.step === RunStep.Train && s.resources.instanceId ? s : undefined;
    },
    150_000,
    'the run to reach its train step',
  );
  const instanceId = status.resources.instanceId!;
  const evidence = await waitUntil(
    () => {
      const e = trainingEvidence(hostRoot(instanceId), name);
      return e.state && stepsLogged(e.log) >= minSteps ? e : undefined;
    },
    180_000,
    `the program to log ${minSteps} steps`,
  );
  return { instanceId, evidence };
}

/** After the run: one state folder, the same process (pid and start time) as during training, and a log of one whole run. */
function assertSameProgramRanOnce(instanceId: string, name: string, during: TrainingEvidence, steps: number): void {
  const after = trainingEvidence(hostRoot(instanceId), name);
  assert.equal(after.stateDirs.length, 1, `one training state on the host: ${after.stateDirs.join(', ')}`);
  assert.deepEqual(after.state, during.state, 'the state file names the process that was running before the kill');
  assertTrainedOnce(after.log, steps);
}

test(
  'an orchestration worker SIGKILLed during training and restarted: the run completes, the program ran once in one process, and no instance or volume was duplicated',
  { timeout: 300_000 },
  async (t) => {
    const taskQueue = uniqueName('rundur-orch');
    const orchestrator = await startWorkerProcess(suite.services.env, { name: 'orchestration worker', extraEnv: { TRAINCTL_TASK_QUEUE: taskQueue } });
    const name = runName('orch-kill');
    // Long enough that the restarted worker (which bundles the workflow code first) takes over while it still trains.
    const steps = 90;
    const handle = await run.start(suite.client, suite.request(name, { command: slowTraining(steps, 0.5) }), { taskQueue });
    const { instanceId, evidence: during } = await waitForTraining(handle, name, 3);
    assert.equal(trainingProcesses(hostRoot(instanceId)).length, 1, 'one training process before the kill');

    await orchestrator.kill('SIGKILL');
    // The program trains on while no orchestration worker is up: it belongs to the host.
    const atKill = stepsLogged(trainingEvidence(hostRoot(instanceId), name).log);
    await waitUntil(
      () => (stepsLogged(trainingEvidence(hostRoot(instanceId), name).log) >= atKill + 2 ? true : undefined),
      30_000,
      'the program to go on training while the orchestration worker is down',
    );

    await orchestrator.restart();
    // The new worker replays the run and answers for it; the program is still the same one.
    const resumed = await waitUntil(async () => handle.query(runStatusQuery), 180_000, 'the restarted worker to answer the status query');
    if (resumed.step === RunStep.Train) {
      assert.equal(trainingProcesses(hostRoot(instanceId)).length, 1, 'one training process after the restart');
    }
    t.diagnostic(
      `the restarted worker took over at step ${resumed.step}, program at step ${stepsLogged(trainingEvidence(hostRoot(instanceId), name).log)}/${steps}`,
    );
    const mid = await runResources(suite.ec2, name);
    assert.deepEqual(
      mid.instances.map((i) => i.id),
      [instanceId],
      'one instance with the run tag after the restart',
    );
    assert.ok(mid.volumes.length <= 1, `at most one volume named ${name}-data: ${JSON.stringify(mid.volumes)}`);

    const report = await handle.result();
    assert.equal(report.outcome, RunOutcome.Completed);
    assert.equal(report.exitCode, 0);
    assert.equal(report.resources.instanceId, instanceId);
    assertSameProgramRanOnce(instanceId, name, during, steps);

    const end = await runResources(suite.ec2, name);
    assert.deepEqual(end.instances, [{ id: instanceId, state: 'terminated' }], 'exactly one instance was ever launched for the run, and it is terminated');
    assert.ok(end.volumes.length <= 1, `at most one volume named ${name}-data: ${JSON.stringify(end.volumes)}`);
    assert.deepEqual(await leftovers(suite.ec2, name), { instances: [], volumes: [] }, 'nothing of the run is left after teardown');
    assert.ok(
      report.undone.some((u) => u.startsWith('deleted volume ')),
      report.undone.join('; '),
    );
  },
);

test(
  'a host worker SIGKILLed during training is restarted on its instance and re-attaches to the running program instead of starting it again; the run completes',
  { timeout: 300_000 },
  async () => {
    const name = runName('host-kill');
    const steps = 60;
    const handle = await run.start(suite.client, suite.request(name, { command: slowTraining(steps, 0.5), heartbeatTimeoutSeconds: 5 }), {
      taskQueue: suite.worker.taskQueue,
    });
    const { instanceId, evidence: during } = await waitForTraining(handle, name, 3);
    const killed = suite.sim.hosts().get(instanceId);
    assert.ok(killed, `the simulator runs a host worker for ${instanceId}`);
    assert.equal(trainingProcesses(hostRoot(instanceId)).length, 1, 'one training process before the kill');

    await suite.sim.kill(instanceId, 'SIGKILL');
    // Like systemd's Restart=always, the simulator starts a new worker for the still-running instance.
    const restarted = await suite.sim.waitForHost(instanceId, 180_000);
    assert.notEqual(restarted.pid, killed.pid, 'a new host worker process');

    const report = await handle.result();
    assert.equal(report.outcome, RunOutcome.Completed);
    assert.equal(report.exitCode, 0);
    assertSameProgramRanOnce(instanceId, name, during, steps);

    // The training activity was retried (the first attempt's worker died) and that attempt re-attached.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runTraining');
    assert.ok(scheduled, 'the run scheduled runTraining');
    const started = events.find(
      (e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled.eventId),
    );
    assert.ok((started?.activityTaskStartedEventAttributes?.attempt ?? 0) >= 2, `runTraining completed on a later attempt: ${JSON.stringify(started)}`);
    // The instance's worker log (both processes, appended): one start, then a re-attach by the new worker.
    const workerLog = readFileSync(restarted.logFile, 'utf8');
    assert.equal(workerLog.split('training started').length - 1, 1, `the program was started once:\n${workerLog.slice(-3000)}`);
    assert.ok(workerLog.includes('re-attached to the training process'), `the new worker re-attached:\n${workerLog.slice(-3000)}`);
    assert.deepEqual(await leftovers(suite.ec2, name), { instances: [], volumes: [] }, 'nothing of the run is left after teardown');
  },
);
