import type { Client } from '@temporalio/client';
import { explainStartFailure } from '../temporal.js';

/**
 * Runs a workflow start and, when the server refuses it because the namespace lacks trainctl's
 * search attributes, throws an error naming every missing attribute and the command that creates
 * them instead of the server's opaque "Failed to start Workflow". Other errors pass unchanged.
 */
export async function explained<T>(client: Client, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    throw await explainStartFailure(err, client);
  }
}
