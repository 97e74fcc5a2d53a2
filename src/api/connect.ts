import type { Client } from '@temporalio/client';
import { loadClientEnv } from '../config.js';
import { connectClient } from '../temporal.js';

/**
 * A `@temporalio/client` {@link Client} built from the same environment the CLI reads
 * (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS_*`).
 * Close it with `client.connection.close()` when done.
 *
 * @param environment - where to read the settings from; `process.env` by default.
 * @throws TrainctlError (kind `Transient`) naming the address when the server cannot be reached;
 *   a ZodError naming the variable when a setting is malformed.
 */
export async function connect(environment: Record<string, string | undefined> = process.env): Promise<Client> {
  return connectClient(loadClientEnv(environment));
}
