import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionLike, type ConnectionOptions } from '@temporalio/client';
import type { NativeConnection, NativeConnectionOptions } from '@temporalio/worker';
import { SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { Env } from './config.js';
import { ErrorKind, TrainctlError } from './errors/kinds.js';
import { describeError } from './errors/classify.js';
import { ALL_SEARCH_ATTRIBUTES, CLI_TYPE_NAMES, type TrainctlSearchAttribute } from './search-attributes.js';

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
  // Loaded here, not at the top: a client script importing the API never loads the worker's native bridge.
  const { NativeConnection } = await import('@temporalio/worker');
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

/** Temporal Cloud manages search attributes itself (its UI, `tcld`), not through the operator API. */
export function isTemporalCloud(address: string): boolean {
  return (address.split(':')[0] ?? '').endsWith('.tmprl.cloud');
}

/** The one service registration needs: a client `Connection` and a worker `NativeConnection` both have it. */
type OperatorConnection = Pick<ConnectionLike, 'operatorService'>;

const { IndexedValueType } = proto.temporal.api.enums.v1;
const INDEXED_VALUE_TYPES: Record<SearchAttributeType, proto.temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.TEXT]: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.INT]: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  [SearchAttributeType.DOUBLE]: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  [SearchAttributeType.BOOL]: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  [SearchAttributeType.DATETIME]: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** trainctl's search attributes the namespace does not have yet. */
export async function missingSearchAttributes(connection: OperatorConnection, namespace: string): Promise<TrainctlSearchAttribute[]> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(customAttributes ?? {}));
  return ALL_SEARCH_ATTRIBUTES.filter((key) => !have.has(key.name));
}

const GRPC_ALREADY_EXISTS = 6;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNIMPLEMENTED = 12;
const GRPC_UNAUTHENTICATED = 16;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Adds the trainctl search attributes the namespace lacks (a dev server or a self-hosted cluster
 * allows it; Temporal Cloud does not) and returns the names it added. Idempotent: another worker
 * adding them at the same moment is not an error.
 */
export async function registerSearchAttributes(connection: OperatorConnection, namespace: string): Promise<string[]> {
  const missing = await missingSearchAttributes(connection, namespace);
  if (missing.length === 0) return [];
  const searchAttributes = Object.fromEntries(missing.map((key) => [key.name, INDEXED_VALUE_TYPES[key.type]]));
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  } catch (err) {
    if (grpcCode(err) !== GRPC_ALREADY_EXISTS) throw err;
  }
  return missing.map((key) => key.name);
}

export interface EnsureSearchAttributesOptions {
  address: string;
  namespace: string;
  /** False when the user turned registration off (`--no-register-search-attributes`). */
  enabled: boolean;
  info(message: string): void;
  warn(message: string): void;
}

/**
 * The worker's start-up step: registers missing search attributes where that is allowed. Never
 * throws; a server that refuses (no permission, Temporal Cloud) gets a warning with the command
 * that creates them by hand, because every workflow start fails until they exist.
 */
export async function ensureSearchAttributes(connection: OperatorConnection, opts: EnsureSearchAttributesOptions): Promise<void> {
  if (!opts.enabled || isTemporalCloud(opts.address)) return;
  try {
    const added = await registerSearchAttributes(connection, opts.namespace);
    if (added.length) opts.info(`registered trainctl's search attributes ${added.join(', ')} in namespace ${opts.namespace}`);
  } catch (err) {
    const code = grpcCode(err);
    const refused = code === GRPC_PERMISSION_DENIED || code === GRPC_UNAUTHENTICATED || code === GRPC_UNIMPLEMENTED;
    const names = ALL_SEARCH_ATTRIBUTES.map((key) => key.name);
    opts.warn(
      `could not register trainctl's search attributes (${refused ? 'the server refused' : describeError(err)}); ` +
        `if they are missing, every start fails until they exist: ${createSearchAttributesCommand(names, opts)}`,
    );
  }
}

/** The command that creates these search attributes: the Temporal CLI's, or `tcld` for Temporal Cloud. */
export function createSearchAttributesCommand(names: readonly string[], where: { namespace: string; address?: string }): string {
  const keys = ALL_SEARCH_ATTRIBUTES.filter((key) => names.includes(key.name));
  if (where.address && isTemporalCloud(where.address)) {
    const pairs = keys.map((key) => `--search-attribute ${key.name}=${CLI_TYPE_NAMES[key.type]}`).join(' ');
    return `tcld namespace search-attributes add --namespace ${where.namespace} ${pairs}`;
  }
  const target = `${where.address ? `--address ${where.address} ` : ''}--namespace ${where.namespace}`;
  // One --type per --name, paired in order (a single --type applies to the first name only).
  const pairs = keys.map((key) => `--name ${key.name} --type ${CLI_TYPE_NAMES[key.type]}`).join(' ');
  return `temporal operator search-attribute create ${target} ${pairs}`;
}

const NO_MAPPING = /Namespace (\S+) has no mapping defined for search attribute (\S+)/;

/** The namespace and attribute of the server's "no mapping defined for search attribute" refusal, if `err` is one. */
export function missingSearchAttributeIn(err: unknown): { namespace: string; name: string } | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const m = NO_MAPPING.exec(e.message);
    if (m) return { namespace: m[1]!, name: m[2]! };
  }
  return undefined;
}

/**
 * The error a start gets when the namespace lacks search attributes: names them and the command
 * that adds `toCreate` (by default the missing ones; creating one that exists is harmless).
 */
export function searchAttributesMissingError(
  names: readonly string[],
  where: { namespace: string; address?: string },
  cause?: unknown,
  toCreate: readonly string[] = names,
): TrainctlError {
  const trainctl = toCreate.filter((name) => ALL_SEARCH_ATTRIBUTES.some((key) => key.name === name));
  const how = trainctl.length
    ? `start a trainctl worker against it (it registers them where the server allows), or create them: ${createSearchAttributesCommand(trainctl, where)}`
    : 'create them with `temporal operator search-attribute create`';
  return new TrainctlError(
    ErrorKind.InvalidInput,
    `namespace ${where.namespace}${where.address ? ` at ${where.address}` : ''} is missing the search attribute${names.length === 1 ? '' : 's'} ${names.join(', ')}; ${how}`,
    { cause, details: { missingSearchAttributes: [...names] } },
  );
}

/**
 * Turns a failed workflow start (`workflow.start`, `signalWithStart`, `execute`) into an error a
 * person can act on when the namespace lacks trainctl's search attributes: a `TrainctlError`
 * (kind InvalidInput) naming every missing attribute (asked of the server) and the exact command
 * that creates them. Any other error is returned unchanged. Use as
 * `catch (err) { throw await explainStartFailure(err, client); }`.
 */
export async function explainStartFailure(err: unknown, client: Pick<Client, 'connection' | 'options'>): Promise<unknown> {
  const refused = err instanceof TrainctlError ? undefined : missingSearchAttributeIn(err);
  if (!refused) return err;
  const namespace = client.options.namespace ?? refused.namespace;
  const address = client.connection instanceof Connection ? client.connection.options.address : undefined;
  let names: string[] = [];
  try {
    names = (await missingSearchAttributes(client.connection, namespace)).map((key) => key.name);
  } catch {
    // The server will not list them (permissions): name the one it refused.
  }
  if (!names.includes(refused.name)) names.push(refused.name);
  return searchAttributesMissingError(names, { namespace, ...(address ? { address } : {}) }, err);
}

/**
 * The same without asking the server: names the attribute the server's refusal named (it names
 * only the first it met), and gives the command that creates all of trainctl's.
 */
export function explainStartFailureOffline(err: unknown): unknown {
  const refused = err instanceof TrainctlError ? undefined : missingSearchAttributeIn(err);
  if (!refused) return err;
  const all = ALL_SEARCH_ATTRIBUTES.map((key) => key.name);
  return searchAttributesMissingError([refused.name], { namespace: refused.namespace }, err, all);
}
