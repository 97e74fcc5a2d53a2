import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import type { Env } from './config.js';
import { ErrorKind, TrainctlError } from './errors/kinds.js';
import { describeError } from './errors/classify.js';

type TemporalEnv = Pick<
  Env,
  'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE' | 'TEMPORAL_API_KEY' | 'TEMPORAL_TLS' | 'TEMPORAL_TLS_CERT_PATH' | 'TEMPORAL_TLS_KEY_PATH' | 'TEMPORAL_TLS_CA_PATH'
>;

function tlsOptions(env: TemporalEnv) {
  const mtls = env.TEMPORAL_TLS_CERT_PATH && env.TEMPORAL_TLS_KEY_PATH;
  if (!mtls && !env.TEMPORAL_API_KEY && env.TEMPORAL_TLS !== 'true' && !env.TEMPORAL_TLS_CA_PATH) return undefined;
  return {
    ...(mtls ? { clientCertPair: { crt: readFileSync(env.TEMPORAL_TLS_CERT_PATH!), key: readFileSync(env.TEMPORAL_TLS_KEY_PATH!) } } : {}),
    ...(env.TEMPORAL_TLS_CA_PATH ? { serverRootCACertificate: readFileSync(env.TEMPORAL_TLS_CA_PATH) } : {}),
  };
}

/** Connection options from the environment: plain for a dev server, TLS (+ API key) for a cluster or Temporal Cloud. */
export function connectionOptions(env: TemporalEnv): ConnectionOptions & NativeConnectionOptions {
  const tls = tlsOptions(env);
  return {
    address: env.TEMPORAL_ADDRESS,
    ...(tls ? { tls } : {}),
    ...(env.TEMPORAL_API_KEY ? { apiKey: env.TEMPORAL_API_KEY } : {}),
  };
}

/** A failed connection says where it tried and what to do, not only the transport's words. */
function unreachable(env: TemporalEnv, err: unknown): TrainctlError {
  return new TrainctlError(
    ErrorKind.Transient,
    `cannot reach Temporal at ${env.TEMPORAL_ADDRESS} (${describeError(err)}); start a local one with \`npm run demo -- --keep\`, or set TEMPORAL_ADDRESS`,
    { cause: err },
  );
}

export async function connectClient(env: TemporalEnv): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(env)).catch((err: unknown) => {
    throw unreachable(env, err);
  });
  return new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
}

export async function connectWorker(env: TemporalEnv): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(env)).catch((err: unknown) => {
    throw unreachable(env, err);
  });
}

/** The Web UI page of one run. */
export function workflowUiUrl(env: Pick<Env, 'TEMPORAL_UI_URL' | 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE'>, workflowId: string, runId?: string): string {
  const base = env.TEMPORAL_UI_URL ?? defaultUiUrl(env.TEMPORAL_ADDRESS);
  const path = `/namespaces/${encodeURIComponent(env.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}`;
  return `${base.replace(/\/$/, '')}${path}${runId ? `/${runId}` : ''}/history`;
}

function defaultUiUrl(address: string): string {
  // The dev server's UI listens on the gRPC port + 1000 unless told otherwise.
  const [host, port] = address.split(':');
  if (host === 'localhost' || host === '127.0.0.1') return `http://localhost:${Number(port) + 1000}`;
  if (host?.endsWith('.tmprl.cloud')) return 'https://cloud.temporal.io';
  return `http://${host}:8080`;
}
