import { statfs } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { HostInfo } from '../contracts/host.js';
import type { HostDeps } from './host-fs.js';
import { createPrewarmActivities } from './prewarm.js';
import { createHostTransferActivities } from './transfer.js';
import { createTrainingActivities } from './training.js';

/**
 * Activities that run on a training instance, registered by `worker --host ID` on the task queue
 * `trainctl-host-ID`. Workflows route them there with `taskQueue: hostTaskQueue(id)`.
 */
export function createHostActivities(deps: HostDeps) {
  return {
    ...createPrewarmActivities(deps),
    ...createHostTransferActivities(deps),
    ...createTrainingActivities(deps),
    /** Who this host is and how much room its roots have. Read-only. */
    async hostInfo(): Promise<HostInfo> {
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
