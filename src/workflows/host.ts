import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { HostActivities } from '../activities/host.js';
import { HostIdSchema, type HostInfo } from '../contracts/host.js';
import { ErrorKind } from '../errors/kinds.js';
import { hostProbe, onHost } from './options.js';

/**
 * Asks the host worker of `hostId` who it is and how much room its roots have: the way to check
 * that a training instance's worker is up before routing work to it. Fails with a timeout after
 * `waitSeconds` if no host worker picks the task up.
 */
export async function checkHost(hostId: string, waitSeconds = 30): Promise<HostInfo> {
  const parsed = HostIdSchema.safeParse(hostId);
  if (!parsed.success)
    throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: `hostId: ${parsed.error.issues[0]?.message}` });
  const host = proxyActivities<HostActivities>(onHost(hostProbe, parsed.data, { scheduleToCloseTimeout: `${waitSeconds} seconds` }));
  return host.hostInfo.executeWithOptions({ summary: `host ${parsed.data}: info` }, []);
}
