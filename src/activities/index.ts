import type { EC2Client } from '@aws-sdk/client-ec2';
import type { ThrottleBackoff } from './aws-call.js';
import { createVolumeActivities } from './volumes.js';
import { createCleanupActivities } from './cleanup.js';
import { createCostActivities } from './cost.js';
import { createTransferActivities } from './transfer.js';
import { createS5cmdActivities } from './transfer-s5cmd.js';
import { lazyWorkerFs } from './host-fs.js';
import { createInstanceActivities, type InstanceDeps } from './instances.js';
import type { S3For } from '../aws/profiles.js';

export interface ActivityDeps {
  /** EC2 client for a region (cached by the caller). */
  ec2(region: string): EC2Client;
  s3: S3For;
  pollIntervalMs?: number;
  throttleBackoff?: ThrottleBackoff;
  /**
   * The folders this worker's transfers may read and write (`--root` / `TRAINCTL_LOCAL_ROOTS`);
   * every local path is resolved through symlinks and refused outside them. Default: the folder
   * the worker was started in.
   */
  localRoots?: readonly string[];
  /** The PATH searched for `s5cmd` (the transfer engine option); this process's PATH when absent. */
  s5cmdSearchPath?: string;
  /**
   * What a launched training instance's bootstrap installs and connects to (never a secret);
   * `createWorker` fills in this worker's namespace, task queue and package version.
   */
  bootstrap?: Partial<InstanceDeps['bootstrap']>;
}

/** The one object a worker registers: every activity, closed over its clients. */
export function createActivities(deps: ActivityDeps) {
  const resolvePath = lazyWorkerFs(deps.localRoots);
  return {
    ...createVolumeActivities(deps),
    ...createCleanupActivities(deps),
    ...createCostActivities(deps),
    ...createTransferActivities({ ...deps, resolvePath }),
    ...createS5cmdActivities({ ...deps, resolvePath }),
    ...createInstanceActivities({
      ...deps,
      bootstrap: {
        version: '0.0.0',
        temporalAddress: 'localhost:7233',
        temporalNamespace: 'default',
        taskQueue: 'trainctl',
        region: 'us-east-1',
        ...deps.bootstrap,
      },
    }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
