#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { loadClientEnv } from '../config.js';
import { connectClient } from '../temporal.js';
import { volumeCommand } from './volume.js';
import { cleanupCommand } from './cleanup.js';
import { costCommand } from './cost.js';
import { transferCommand } from './transfer.js';
import { dataCommand } from './data.js';
import { runCommand } from './run.js';
import { ExitCode, reportError } from './output.js';

const HELP = `trainctl — durable orchestration for the cloud side of ML training

usage: trainctl <command> [options]

commands:
  run start|status|watch|stop|cancel|logs|list   a training run from launch to teardown (trainctl run --help)
  volume create|cancel    provision an EBS volume idempotently (trainctl volume --help)
  cleanup plan|apply      delete resources safely: plan, approve, dependency order, report (trainctl cleanup --help)
  cost show|budget|rate|reconcile   what a project costs, budgets that act, reconciliation (trainctl cost --help)
  transfer SRC DST        resumable, verified copies between local, s3:// and host:ID:/path (trainctl transfer --help)
  data recommend|loader|prewarm   pick a data loading strategy, write its DataLoader, pre-warm a host's data (trainctl data --help)

environment:
  TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TRAINCTL_TASK_QUEUE, TEMPORAL_API_KEY, TEMPORAL_TLS_*
  AWS_REGION, AWS_ENDPOINT_URL (the emulator), TRAINCTL_AWS=real (your real account)`;

/** Runs one CLI invocation and returns its exit code; never throws. */
export async function run(argv: string[], environment: Record<string, string | undefined> = process.env): Promise<number> {
  const [family, ...args] = argv;
  // `--help` anywhere after the family asks for that family's help, whatever else is on the line.
  const rest = args.includes('--help') || args.includes('-h') ? ['--help'] : args;
  if (family === undefined || family === '--help' || family === '-h' || family === 'help') {
    console.log(HELP);
    return family === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const json = rest.includes('--json');
  let env;
  try {
    env = loadClientEnv(environment);
  } catch (err) {
    return reportError(err, { json, what: 'environment' });
  }
  let client: Client | undefined;
  const connect = async () => (client ??= await connectClient(env));
  try {
    switch (family) {
      case 'volume':
        return await volumeCommand(rest, env, connect);
      case 'cleanup':
        return await cleanupCommand(rest, env, connect, environment);
      case 'cost':
        return await costCommand(rest, env, connect);
      case 'transfer':
        return await transferCommand(rest, env, connect, environment);
      case 'data':
        return await dataCommand(rest, env, connect);
      case 'run':
        return await runCommand(rest, env, connect);
      default:
        console.error(`trainctl: unknown command ${JSON.stringify(family)}\n\n${HELP}`);
        return ExitCode.Usage;
    }
  } catch (err) {
    return reportError(err, { json, what: family });
  } finally {
    await client?.connection.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error('trainctl: unexpected error', err);
      process.exit(1);
    },
  );
}
