import type { EC2Client } from '@aws-sdk/client-ec2';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ThrottleBackoff } from './aws-call.js';
import { createVolumeActivities } from './volumes.js';
import { createCleanupActivities } from './cleanup.js';
import { createCostActivities } from './cost.js';
import { createTransferActivities, type TransferHooks } from './transfer.js';
import { createS5cmdActivities } from './transfer-s5cmd.js';

export interface ActivityDeps {
  /** EC2 client for a region (cached by the caller). */
  ec2(region: string): EC2Client;
  s3(region: string): S3Client;
  pollIntervalMs?: number;
  throttleBackoff?: ThrottleBackoff;
  /** Test-only fault hooks around every transfer part. */
  transferHooks?: TransferHooks;
  /** The PATH searched for `s5cmd` (the transfer engine option); this process's PATH when absent. */
  s5cmdSearchPath?: string;
}

/** The one object a worker registers: every activity, closed over its clients. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createVolumeActivities(deps),
    ...createCleanupActivities(deps),
    ...createCostActivities(deps),
    ...createTransferActivities(deps),
    ...createS5cmdActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
