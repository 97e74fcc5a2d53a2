import { z } from 'zod';

/** Where trainctl talks to Temporal and AWS, read from the environment once at each edge. */
const EnvFieldsSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port, e.g. localhost:7233')
    .default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TRAINCTL_TASK_QUEUE: z.string().min(1).default('trainctl'),
  /** Temporal Cloud API key. A secret: read here, handed to the connection, never logged or recorded. */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  /** Base URL of the Web UI for printed links; defaults to the dev server's. */
  TEMPORAL_UI_URL: z.url().optional(),
  AWS_REGION: z
    .string()
    .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d+$/, 'must be an AWS region such as us-east-1')
    .default('us-east-1'),
  AWS_ENDPOINT_URL: z.url().optional(),
  AWS_PROFILE: z.string().min(1).optional(),
  /** Where `s3://PROFILE@…` locations find their profiles (absent: the SDK's `~/.aws/config` and `~/.aws/credentials`). */
  AWS_CONFIG_FILE: z.string().min(1).optional(),
  AWS_SHARED_CREDENTIALS_FILE: z.string().min(1).optional(),
  /** `real` is the only way to reach a real AWS account; anything else needs an emulator endpoint. */
  TRAINCTL_AWS: z.enum(['emulator', 'real']).default('emulator'),
});

function checkTls(env: z.infer<typeof EnvFieldsSchema>, ctx: z.RefinementCtx): void {
  if ((env.TEMPORAL_TLS_CERT_PATH === undefined) !== (env.TEMPORAL_TLS_KEY_PATH === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['TEMPORAL_TLS_KEY_PATH'], message: 'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH go together' });
  }
}

/** What a worker needs: Temporal, and an AWS it is allowed to reach. */
export const EnvSchema = EnvFieldsSchema.superRefine((env, ctx) => {
  if (env.TRAINCTL_AWS !== 'real' && !env.AWS_ENDPOINT_URL) {
    ctx.addIssue({
      code: 'custom',
      path: ['AWS_ENDPOINT_URL'],
      message: 'is not set: point it at an AWS emulator (npm run demo starts one), or set TRAINCTL_AWS=real to use your real AWS account',
    });
  }
  checkTls(env, ctx);
});
export type Env = z.infer<typeof EnvSchema>;

/**
 * What the CLI and the client API need: only the Temporal settings (and the region and task queue
 * that name workflows). They never call AWS themselves — workers do — so the AWS settings are not
 * checked here.
 */
export const ClientEnvSchema = EnvFieldsSchema.superRefine(checkTls);

function pick(source: Record<string, string | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(EnvFieldsSchema.shape)) {
    const v = source[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  return picked;
}

/** Parses a worker's environment; throws a ZodError naming each bad variable. */
export function loadEnv(source: Record<string, string | undefined>): Env {
  return EnvSchema.parse(pick(source));
}

/** Parses the CLI's / a client script's environment (no AWS settings required). */
export function loadClientEnv(source: Record<string, string | undefined>): Env {
  return ClientEnvSchema.parse(pick(source));
}

// Moved to src/contracts/; re-exported here until every importer points there.
export { TagKey, VolumeType, VOLUME_LIMITS, RegionSchema, AvailabilityZoneSchema, TagsSchema, ResourceNameSchema } from './contracts/common.js';
export { HostIdSchema, hostTaskQueue } from './contracts/host.js';

// Moved to src/contracts/transfer.ts; re-exported for the families that still import them from here.
export { DataLocationSchema, type DataLocation } from './contracts/transfer.js';
