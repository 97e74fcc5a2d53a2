/**
 * S3 clients for locations that name an AWS shared-config profile (`s3://PROFILE@BUCKET/KEY`):
 * another S3-compatible store (MinIO, Ceph RGW, R2, versitygw) or another AWS account next to the
 * worker's default. The profile is read with the SDK's own loaders, as the AWS CLI reads it:
 * `region`, `endpoint_url` (or the `services` section's `s3 = endpoint_url = …`), the `s3`
 * section's `addressing_style`, `request_checksum_calculation` / `response_checksum_validation`,
 * and credentials through `fromIni` (credentials file, `source_profile`, `credential_process`,
 * SSO). Only the profile's name travels in workflow inputs; credentials stay in this process.
 *
 * trainctl's own keys in the same profile say what a store can do:
 * - `trainctl_checksums = sha256 | none` — whether the store takes S3's SHA-256 part checksums
 *   (default `sha256`; without them trainctl still verifies every object by its own checksum).
 *
 * @module
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { loadSharedConfigFiles } from '@smithy/core/config';
import { ErrorKind, TrainctlError } from '../errors/kinds.js';
import { S3_PROFILE_NAME } from '../contracts/common.js';

/** Where an S3 location's client comes from: the worker's default (no profile) or a named profile, in a region. */
export interface S3Target {
  region: string;
  profile?: string | undefined;
}

/** The worker's S3 client for a location: its default (no profile) or the named profile's, made on first use. */
export type S3For = (target: S3Target) => Promise<S3Client>;

const partChecksums = new WeakMap<S3Client, 'sha256' | 'none'>();

/** Whether parts sent through this client carry S3's SHA-256 checksum (every client but a profile's with `trainctl_checksums = none`). */
export function sendsPartChecksums(client: S3Client): boolean {
  return partChecksums.get(client) !== 'none';
}

/** The files the profiles come from (absent: the SDK's defaults, `~/.aws/config` and `~/.aws/credentials`). */
export interface SharedConfigFiles {
  configFile?: string | undefined;
  credentialsFile?: string | undefined;
}

/** A profile as trainctl uses it (never its credentials). */
export interface ProfileSettings {
  name: string;
  region: string | undefined;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** Whether parts carry S3's SHA-256 checksum (the store validates it). */
  checksums: 'sha256' | 'none';
  requestChecksumCalculation: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED' | undefined;
  responseChecksumValidation: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED' | undefined;
}

function where(files: SharedConfigFiles): string {
  return `${files.configFile ?? '~/.aws/config (or AWS_CONFIG_FILE)'} / ${files.credentialsFile ?? '~/.aws/credentials (or AWS_SHARED_CREDENTIALS_FILE)'}`;
}

function checksumSetting(value: string | undefined, name: string, key: string): 'WHEN_SUPPORTED' | 'WHEN_REQUIRED' | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toUpperCase();
  if (v === 'WHEN_SUPPORTED' || v === 'WHEN_REQUIRED') return v;
  throw new TrainctlError(ErrorKind.InvalidInput, `AWS profile "${name}": ${key} = ${value} is not when_supported or when_required`);
}

/** Reads profile `name` from the shared config and credentials files; InvalidInput naming it when it is in neither. */
export async function loadProfile(name: string, files: SharedConfigFiles = {}): Promise<ProfileSettings> {
  if (!S3_PROFILE_NAME.test(name)) throw new TrainctlError(ErrorKind.InvalidInput, `${JSON.stringify(name)} is not an AWS profile name`);
  const loaded = await loadSharedConfigFiles({
    ...(files.configFile ? { configFilepath: files.configFile } : {}),
    ...(files.credentialsFile ? { filepath: files.credentialsFile } : {}),
    ignoreCache: true,
  });
  const config = loaded.configFile[name];
  const credentials = loaded.credentialsFile[name];
  if (!config && !credentials) {
    throw new TrainctlError(
      ErrorKind.InvalidInput,
      `AWS profile "${name}" is not in this worker's shared config (${where(files)}): add a [profile ${name}] section with its region, endpoint_url and credentials, or drop "${name}@" from the location`,
    );
  }
  const c: Record<string, string | undefined> = config ?? {};
  // The services section (`services = NAME`, then `[services NAME]` with `s3 = endpoint_url = …`) wins over endpoint_url, as in the SDK.
  const services = c.services ? loaded.configFile[`services.${c.services}`] : undefined;
  if (c.services && !services) throw new TrainctlError(ErrorKind.InvalidInput, `AWS profile "${name}" names services "${c.services}", which has no section`);
  const endpoint = services?.['s3.endpoint_url'] ?? c.endpoint_url;
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new TrainctlError(ErrorKind.InvalidInput, `AWS profile "${name}": endpoint_url ${JSON.stringify(endpoint)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TrainctlError(ErrorKind.InvalidInput, `AWS profile "${name}": endpoint_url must be http(s)://`);
  }
  const style = c['s3.addressing_style']?.trim().toLowerCase();
  if (style !== undefined && !['path', 'virtual', 'auto'].includes(style))
    throw new TrainctlError(ErrorKind.InvalidInput, `AWS profile "${name}": s3 addressing_style = ${style} is not path, virtual or auto`);
  const sums = c.trainctl_checksums?.trim().toLowerCase() ?? 'sha256';
  if (sums !== 'sha256' && sums !== 'none')
    throw new TrainctlError(ErrorKind.InvalidInput, `AWS profile "${name}": trainctl_checksums = ${sums} is not sha256 or none`);
  return {
    name,
    region: c.region,
    endpoint,
    forcePathStyle: style === 'path',
    checksums: sums,
    requestChecksumCalculation: checksumSetting(c.request_checksum_calculation, name, 'request_checksum_calculation'),
    responseChecksumValidation: checksumSetting(c.response_checksum_validation, name, 'response_checksum_validation'),
  };
}

/** Whether a client with this endpoint (none: the SDK's default) would reach AWS itself. */
export function reachesAws(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return true;
  const host = new URL(endpoint).hostname.toLowerCase();
  return host === 'amazonaws.com' || host.endsWith('.amazonaws.com') || host.endsWith('.amazonaws.com.cn') || host.endsWith('.api.aws');
}

/**
 * The safety rule: a client that would reach AWS itself needs `TRAINCTL_AWS=real`; any other
 * endpoint is allowed with its profile's credentials.
 */
export function checkProfileReach(p: ProfileSettings, trainctlAws: 'emulator' | 'real'): void {
  if (trainctlAws === 'real' || !reachesAws(p.endpoint)) return;
  throw new TrainctlError(
    ErrorKind.InvalidInput,
    `AWS profile "${p.name}" would reach AWS itself (${p.endpoint ?? 'it has no endpoint_url'}), and this worker runs with TRAINCTL_AWS=emulator: set TRAINCTL_AWS=real on the worker to use a real account, or give the profile the endpoint_url of its store`,
  );
}

/**
 * Adds the profile's name to every error of this client (so "SignatureDoesNotMatch" says whose
 * credentials were refused); the error's name and code stay, so the taxonomy still classifies it.
 */
function nameProfileInErrors(client: S3Client, profile: string): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        if (err instanceof Error && !err.message.includes(`AWS profile "${profile}"`)) err.message = `${err.message} (AWS profile "${profile}")`;
        throw err;
      }
    },
    { step: 'initialize', name: 'trainctlNameProfile', priority: 'high' },
  );
}

/** An S3 client for profile `p`, its region defaulting to `region`; `maxAttempts` as the worker's other clients. */
export function profileS3Client(p: ProfileSettings, region: string, files: SharedConfigFiles, opts: { maxAttempts?: number | undefined } = {}): S3Client {
  const config: S3ClientConfig = {
    // The named profile's own settings (FIPS, dual-stack …), never the default profile's; and without an
    // endpoint_url of its own, never AWS_ENDPOINT_URL or another profile's: it reaches AWS itself.
    profile: p.name,
    ignoreConfiguredEndpointUrls: true,
    region: p.region ?? region,
    ...(p.endpoint ? { endpoint: p.endpoint } : {}),
    forcePathStyle: p.forcePathStyle,
    credentials: fromIni({
      profile: p.name,
      ...(files.configFile ? { configFilepath: files.configFile } : {}),
      ...(files.credentialsFile ? { filepath: files.credentialsFile } : {}),
      ignoreCache: true,
    }),
    ...(p.requestChecksumCalculation ? { requestChecksumCalculation: p.requestChecksumCalculation } : {}),
    ...(p.responseChecksumValidation ? { responseChecksumValidation: p.responseChecksumValidation } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
  };
  const client = new S3Client(config);
  nameProfileInErrors(client, p.name);
  partChecksums.set(client, p.checksums);
  return client;
}
