import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from '../activities/host.js';
import { HostIdSchema, hostTaskQueue } from '../config.js';
import { ErrorKind } from '../errors/kinds.js';
import { nonRetryableErrorTypes } from './options.js';

/**
 * Asks the host worker of `hostId` who it is and how much room its roots have: the way to check
 * that a training instance's worker is up before routing work to it. Fails with a timeout after
 * `waitSeconds` if no host worker picks the task up.
 */
export async function checkHost(hostId: string, waitSeconds = 30): Promise<Awaited<ReturnType<HostActivities['hostInfo']>>> {
  const parsed = HostIdSchema.safeParse(hostId);
  if (!parsed.success) throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: `hostId: ${parsed.error.issues[0]?.message}` });
  const host = proxyActivities<HostActivities>({
    taskQueue: hostTaskQueue(parsed.data),
    scheduleToCloseTimeout: `${waitSeconds} seconds`,
    retry: { maximumInterval: '5 seconds', nonRetryableErrorTypes },
  });
  return host.hostInfo.executeWithOptions({ summary: `host ${parsed.data}: info` }, []);
}
