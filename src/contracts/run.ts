/**
 * Contract of the training run (`trainingRun`, id `run/NAME`): the run file's schema, the status
 * and report views, and the messages a run answers — `stop` (update), `checkpointNow` (signal),
 * `status` (query).
 *
 * @module
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { AvailabilityZoneSchema, RegionSchema, ResourceNameSchema, TagsSchema, VolumeType, s3UriSchema } from './common.js';
import { ProjectSchema } from './cost.js';
import { DataStrategy } from './prewarm.js';
import { DataLocationSchema } from './transfer.js';

export const TrainingRunWorkflowType = 'trainingRun';

/** `run/NAME`: one run per name, so a second start of the same name joins the first. */
export function runWorkflowId(name: string): string {
  return `run/${name}`;
}

const InstanceTypeSchema = z.string().regex(/^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type such as g5.xlarge');
const InstanceIdSchema = z.string().regex(/^i-[0-9a-f]{8,17}$/, 'must be an instance id such as i-0123456789abcdef0');
const DeviceSchema = z.string().regex(/^\/dev\/(sd[f-p]|xvd[f-p])$/, 'must be a device name from /dev/sdf to /dev/sdp (or /dev/xvdf to /dev/xvdp)');

/** A path inside the instance's trainctl root: relative, no `..`, no NUL. */
const HostRelativePathSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(1024, 'must be at most 1024 characters')
  .refine((p) => !p.startsWith('/'), 'must be relative to the instance root (no leading /)')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..')
  .refine((p) => !p.includes('\0'), 'must not contain NUL');

/** Launch a new instance (on-demand or spot) or adopt one that exists. */
export const RunInstanceSchema = z.union([
  z.strictObject({
    type: InstanceTypeSchema,
    ami: z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'must be an AMI id such as ami-0123456789abcdef0'),
    market: z.enum(['on-demand', 'spot']).default('on-demand'),
    maxPriceUsdPerHour: z.number().positive('must be a positive price').optional(),
    /**
     * The instance profile (name or ARN) whose role gives the instance's host worker its AWS
     * credentials (S3 for the data and checkpoints, SSM for a Temporal API key). Needed on real AWS.
     */
    instanceProfile: z
      .string()
      .regex(/^(arn:aws[a-z-]*:iam::\d{12}:instance-profile\/)?[\w+=,.@/-]{1,128}$/, 'must be an instance profile name or ARN')
      .optional(),
    /** The folder on the instance where its host worker keeps everything (data, code, checkpoints). */
    root: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute path of letters, digits and . _ - /')
      .default('/var/lib/trainctl'),
  }),
  z.strictObject({ existingInstanceId: InstanceIdSchema }),
]);

export const RunVolumeSchema = z.union([
  z.strictObject({
    sizeGiB: z.number().int('must be a whole number of GiB').positive('must be at least 1 GiB'),
    volumeType: z.enum(VolumeType).default('gp3'),
    iops: z.number().int().positive('must be positive').optional(),
    throughputMiBps: z.number().int().positive('must be positive').optional(),
    device: DeviceSchema.default('/dev/sdf'),
  }),
  z.strictObject({ existingName: ResourceNameSchema, device: DeviceSchema.default('/dev/sdf') }),
]);

export const RunDatasetSchema = z.strictObject({
  source: DataLocationSchema,
  /** Where the data lands on the instance, relative to its root (the attached volume's folder by default). */
  path: HostRelativePathSchema.default('data'),
  strategy: z.enum(['auto', ...Object.values(DataStrategy)]).default('auto'),
});

/** Variable names and values that look like credentials: they would live forever in the run's history. */
const SECRET_NAME = /(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|SESSION)/i;
const SECRET_VALUE = [
  /(^|[^A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}($|[^A-Z0-9])/,
  /gh[pousr]_[A-Za-z0-9]{20,}/,
  /(^|[^A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}/,
  /(^|[^A-Za-z0-9])hf_[A-Za-z0-9]{30,}/,
  /xox[abpr]-/,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./,
  /:\/\/[^/\s:@]+:[^@\s/]+@/,
];
const SECRET_MESSAGE =
  'looks like a secret: run inputs are kept in the workflow history, readable by anyone with UI access; give the training program its credentials through the instance role or a secrets manager';

/** Whether a value looks like a credential (an access key id, a token, a private key, a URL with a password). */
export function looksSecret(value: string): boolean {
  return SECRET_VALUE.some((re) => re.test(value));
}

const EnvVarsSchema = z
  .record(
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'variable names are letters, digits and _'),
    z.string().max(4096, 'must be at most 4096 characters'),
  )
  .default({})
  .superRefine((env, ctx) => {
    for (const [k, v] of Object.entries(env)) {
      if (k.startsWith('TRAINCTL_')) ctx.addIssue({ code: 'custom', path: [k], message: 'TRAINCTL_* variables are set by trainctl' });
      else if (SECRET_NAME.test(k) || looksSecret(v)) ctx.addIssue({ code: 'custom', path: [k], message: SECRET_MESSAGE });
    }
  });

export const RunTrainingSchema = z.strictObject({
  /** The command as an argv array, run without a shell. */
  command: z
    .array(
      z
        .string()
        .min(1, 'an argument must not be empty')
        .refine((a) => !a.includes('\0'), 'must not contain NUL')
        .refine((a) => !looksSecret(a), SECRET_MESSAGE),
      {
        error: (issue) =>
          issue.input !== undefined && typeof issue.input === 'string'
            ? 'must be an argv array such as ["python3", "train.py", "--epochs", "3"], not one shell string'
            : undefined,
      },
    )
    .min(1, 'must name a program'),
  /** Working folder on the instance, relative to its root; the DataLoader module is written here. */
  workdir: HostRelativePathSchema.default('code'),
  /** Local folder whose files are copied into `workdir` before training (the training code). */
  codeFrom: DataLocationSchema.optional(),
  env: EnvVarsSchema,
  checkpointDir: HostRelativePathSchema.default('checkpoints'),
  checkpointEverySeconds: z.number().int().min(10, 'must be at least 10 s').max(86_400, 'must be at most a day').default(300),
  /** S3 prefix the checkpoints are synced to (`s3://BUCKET/PREFIX/`). */
  checkpointUri: s3UriSchema({ folder: true }),
  outputsDir: HostRelativePathSchema.default('outputs'),
  outputsUri: s3UriSchema({ folder: true }),
  epochs: z.number().int().positive().default(1),
  /** How long the program has to write its checkpoint after SIGTERM before it is killed. */
  stopGraceSeconds: z.number().int().min(1).max(3_600).default(60),
  /** How soon a dead host worker is noticed while training runs (its restart re-attaches to the program). */
  heartbeatTimeoutSeconds: z.number().int().min(5).max(3_600).default(60),
});

export const RunBudgetSchema = z.strictObject({
  limitUsd: z.number().positive('must be a positive amount'),
  action: z.enum(['alert', 'stop-instances', 'cleanup']).default('alert'),
});

export const RunTeardownSchema = z
  .strictObject({
    instance: z.enum(['terminate', 'stop', 'keep']).default('terminate'),
    volume: z.enum(['delete', 'keep', 'snapshot-then-delete']).default('delete'),
  })
  .default({ instance: 'terminate', volume: 'delete' });

export const RunInputSchema = z
  .strictObject({
    name: ResourceNameSchema,
    project: ProjectSchema.default('default'),
    region: RegionSchema,
    availabilityZone: AvailabilityZoneSchema,
    instance: RunInstanceSchema,
    volume: RunVolumeSchema,
    dataset: RunDatasetSchema,
    training: RunTrainingSchema,
    budget: RunBudgetSchema.optional(),
    teardown: RunTeardownSchema,
    tags: TagsSchema,
  })
  .superRefine((r, ctx) => {
    for (const [k, v] of Object.entries(r.tags)) if (looksSecret(v)) ctx.addIssue({ code: 'custom', path: ['tags', k], message: SECRET_MESSAGE });
    if (!r.availabilityZone.startsWith(r.region)) {
      ctx.addIssue({ code: 'custom', path: ['availabilityZone'], message: `${r.availabilityZone} is not in region ${r.region}` });
    }
  });
export type RunRequest = z.input<typeof RunInputSchema>;
export type RunInput = z.output<typeof RunInputSchema>;

/** The steps of a run, in order. */
export const RunStep = {
  Launch: 'launch',
  Volume: 'volume',
  Data: 'data',
  Train: 'train',
  Checkpoint: 'checkpoint',
  Outputs: 'outputs',
  Teardown: 'teardown',
  Done: 'done',
} as const;
export type RunStep = (typeof RunStep)[keyof typeof RunStep];

/** The failure type of a run whose training command exited non-zero. */
export const TRAINING_FAILED = 'TrainingFailed';

export const RunOutcome = { Completed: 'completed', Stopped: 'stopped', Failed: 'failed', Cancelled: 'cancelled' } as const;
export type RunOutcome = (typeof RunOutcome)[keyof typeof RunOutcome];

export interface StepRecord {
  step: RunStep;
  startedAt: string;
  endedAt?: string;
  /** What the step did, in a few words (the UI's summary). */
  summary?: string;
  error?: { kind: string; message: string };
}

export interface RunResources {
  instanceId?: string;
  /** Whether this run launched the instance (then teardown may end it) or adopted it. */
  instanceCreated?: boolean;
  volumeId?: string;
  volumeCreated?: boolean;
}

export interface RunStatus {
  name: string;
  step: RunStep;
  outcome?: RunOutcome;
  steps: StepRecord[];
  resources: RunResources;
  /** Workflow id of the transfer or prewarm child in flight, for its progress. */
  currentChild?: { workflowId: string; kind: 'transfer' | 'prewarm' | 'volume' | 'cleanup' | 'host' };
  strategy?: string;
  checkpointsSynced: number;
  lastCheckpointAt?: string;
  bytesMoved: number;
  exitCode?: number;
  lastLogLines: string[];
  stopRequested?: { reason: string; at: string };
}

export interface RunReport extends RunStatus {
  outcome: RunOutcome;
  /** What teardown or compensation undid (or left, and why). */
  undone: string[];
  costUsd?: number;
}

/** Stop gracefully: SIGTERM to the training program, final checkpoint sync, outputs, teardown; ends `stopped`. */
export const stopRunUpdate = defineUpdate<{ accepted: true; step: RunStep }, [{ reason?: string }]>('stop');
/** Sync the checkpoint folder to S3 now (in addition to the interval). */
export const checkpointNowSignal = defineSignal('checkpointNow');
export const runStatusQuery = defineQuery<RunStatus>('status');

export const StopRunSchema = z.strictObject({ reason: z.string().max(500, 'must be at most 500 characters').optional() });
