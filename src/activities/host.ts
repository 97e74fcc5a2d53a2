import { statfs } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { S3Client } from '@aws-sdk/client-s3';
import type { HostFs } from './host-fs.js';
import { createPrewarmActivities } from './prewarm.js';
import { createHostTransferActivities } from './transfer.js';

export interface HostDeps {
  hostId: string;
  fs: HostFs;
  /** S3 client for a region, for data the host pulls or pushes itself. */
  s3(region: string): S3Client;
}

/**
 * Activities that run on a training instance, registered by `worker --host ID` on the task queue
 * `trainctl-host-ID`. Workflows route them there with `taskQueue: hostTaskQueue(id)`.
 */
export function createHostActivities(deps: HostDeps) {
  return {
    ...createPrewarmActivities(deps),
    ...createHostTransferActivities(deps),
    /** Who this host is and how much room its roots have. Read-only. */
    async hostInfo(): Promise<{ hostId: string; hostname: string; roots: { path: string; freeBytes: number }[] }> {
      const roots = await Promise.all(
        deps.fs.roots.map(async (path) => {
          const s = await statfs(path);
          return { path, freeBytes: Number(s.bavail) * Number(s.bsize) };
        }),
      );
      return { hostId: deps.hostId, hostname: hostname(), roots };
    },
  };
}

export type HostActivities = ReturnType<typeof createHostActivities>;
