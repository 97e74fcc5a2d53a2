/**
 * Contract of the host family: a training instance's host worker (`worker --host ID`) and the
 * `checkHost` probe workflow.
 *
 * @module
 */
import { z } from 'zod';

/** Workflow type of the probe that asks a host worker who it is. */
export const CheckHostWorkflowType = 'checkHost';

/** A training instance's id as its host worker announces it (`worker --host ID`). */
export const HostIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, . _ - (e.g. an instance id or a short name)');

/** The task queue a host worker polls: activities routed here run on that instance. */
export function hostTaskQueue(hostId: string): string {
  return `trainctl-host-${hostId}`;
}

/** What a host worker says of itself: the result of the `hostInfo` activity and of `checkHost`. */
export interface HostInfo {
  hostId: string;
  hostname: string;
  /** Each root folder the host worker may touch, with the room left on its file system. */
  roots: { path: string; freeBytes: number }[];
}
