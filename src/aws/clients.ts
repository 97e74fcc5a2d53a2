import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import type { Env } from '../config.js';

/** Dummy credentials for the emulator: moto accepts any, and real AWS rejects these. */
const EMULATOR_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

export interface AwsClientOptions {
  /**
   * SDK-level attempts. Defaults to the SDK's own (3); fault-injection tests set 1 so that
   * Temporal's retry policy is what retries and the history shows it.
   */
  maxAttempts?: number;
}

type AwsEnv = Pick<Env, 'AWS_REGION' | 'AWS_ENDPOINT_URL' | 'AWS_PROFILE' | 'TRAINCTL_AWS'>;

function common(env: AwsEnv, opts: AwsClientOptions) {
  const base = { region: env.AWS_REGION, ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}) };
  if (env.TRAINCTL_AWS === 'real') {
    // The SDK's default chain (profile, SSO, instance role); nothing is read or stored by trainctl.
    return { ...base, ...(env.AWS_ENDPOINT_URL ? { endpoint: env.AWS_ENDPOINT_URL } : {}), ...(env.AWS_PROFILE ? { profile: env.AWS_PROFILE } : {}) };
  }
  if (!env.AWS_ENDPOINT_URL) {
    // loadEnv already refuses this; the check is repeated here because a real account must
    // never be reached by a client built from a hand-made Env.
    throw new Error('AWS_ENDPOINT_URL is not set and TRAINCTL_AWS is not "real": refusing to reach real AWS');
  }
  return { ...base, endpoint: env.AWS_ENDPOINT_URL, credentials: EMULATOR_CREDENTIALS };
}

export function createEc2Client(env: AwsEnv, opts: AwsClientOptions = {}): EC2Client {
  const config: EC2ClientConfig = common(env, opts);
  return new EC2Client(config);
}

export function createS3Client(env: AwsEnv, opts: AwsClientOptions = {}): S3Client {
  const emulator = env.TRAINCTL_AWS !== 'real';
  const config: S3ClientConfig = {
    ...common(env, opts),
    // moto serves buckets by path; it stores checksums without validating them, and ranged GETs drop
    // them, so the SDK's automatic CRCs are asked for only where an API requires one and trainctl
    // verifies integrity itself.
    ...(emulator ? { forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' } : {}),
  };
  return new S3Client(config);
}
