/**
 * The steps of a training run other than training itself: launch or adopt the instance, the
 * volume, the data, checkpoint and output syncs. Each is a child workflow or named activities
 * with a summary, so the Web UI shows the run as its steps. Called only by `training-run.ts`.
 */
import { ApplicationFailure, executeChild, isCancellation, proxyActivities, setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { SearchAttributePair } from '@temporalio/common';
import type { Activities } from '../activities/index.js';
import type { HostActivities } from '../activities/host.js';
import { CheckHostWorkflowType } from '../contracts/host.js';
import { TagKey, parseS3Location, s3LocationUri, type S3Location } from '../contracts/common.js';
import type { DataStrategy } from '../contracts/prewarm.js';
import { runWorkflowId, type RunInput, type RunStatus } from '../contracts/run.js';
import { TransferWorkflowType, type DataLocation, type TransferReport, type TransferRequest } from '../contracts/transfer.js';
import { ProvisionVolumeWorkflowType, volumeWorkflowId, type ProvisionVolumeResult } from '../contracts/volume.js';
import { SA } from '../search-attributes.js';
import { ErrorKind } from '../errors/kinds.js';
import { recommend } from '../recommender.js';
import { loaderScript } from '../loader-script.js';
import type { checkHost } from './host.js';
import type { provisionVolume } from './provision-volume.js';
import type { transfer } from './transfer.js';
import { awsCall, awsCallAwaitingCancel, awsWait, bestEffort, hostBound, onHost } from './options.js';

const aws = proxyActivities<Activities>(awsCall);
const launches = proxyActivities<Activities>(awsCallAwaitingCancel);
const waits = proxyActivities<Activities>(awsWait);
const costs = proxyActivities<Activities>(bestEffort);

/** What a step needs besides the input: the run's status object (updated in place) and its search attributes. */
export interface RunContext {
  input: RunInput;
  status: RunStatus;
  /** TrainctlRun=NAME (and the project) for every child, so one query lists the whole run. */
  searchAttributes: SearchAttributePair[];
  /** The host worker's id: the instance id. */
  hostId?: string;
  /** The `provisionVolume` child that a cancel stopped in flight: it undid what it created itself. */
  volumeChildCancelled?: string;
}

/** A child's id: under the run's id as the run's name gives it (`run/NAME/what`), so it does not depend on how the run was started. */
function childId(ctx: RunContext, what: string): string {
  return `${runWorkflowId(ctx.input.name)}/${what}`;
}

/** Runs a child transfer and counts its bytes. */
export async function transferChild(ctx: RunContext, what: string, request: TransferRequest): Promise<TransferReport> {
  const workflowId = childId(ctx, what);
  ctx.status.currentChild = { workflowId, kind: 'transfer' };
  try {
    const report = await executeChild<typeof transfer>(TransferWorkflowType, {
      workflowId,
      args: [request],
      typedSearchAttributes: [...ctx.searchAttributes, { key: SA.kind, value: 'transfer' }],
      staticSummary: `Run ${ctx.input.name}: ${what}`,
    });
    ctx.status.bytesMoved += report.bytes;
    return report;
  } finally {
    delete ctx.status.currentChild;
  }
}

/** Launches the run's instance (or adopts an existing one), waits until it runs and its host worker answers, and registers its cost. */
export async function launchInstance(ctx: RunContext): Promise<string> {
  const { input, status } = ctx;
  const { workflowId, firstExecutionRunId: runId } = workflowInfo();
  let instanceId: string;
  let instanceType: string;
  if ('existingInstanceId' in input.instance) {
    setCurrentDetails(`Adopting instance ${input.instance.existingInstanceId}`);
    const found = await aws.describeInstance.executeWithOptions({ summary: `adopt ${input.instance.existingInstanceId}` }, [
      { region: input.region, instanceId: input.instance.existingInstanceId },
    ]);
    instanceId = found.instanceId;
    instanceType = found.instanceType;
    status.resources.instanceCreated = false;
  } else {
    const spec = input.instance;
    setCurrentDetails(`Launching a ${spec.market} ${spec.type} in ${input.availabilityZone}`);
    const launched = await launches.launchInstance.executeWithOptions({ summary: `launch ${spec.market} ${spec.type}` }, [
      {
        runName: input.name,
        project: input.project,
        region: input.region,
        availabilityZone: input.availabilityZone,
        instanceType: spec.type,
        ami: spec.ami,
        market: spec.market,
        ...(spec.maxPriceUsdPerHour !== undefined ? { maxPriceUsdPerHour: spec.maxPriceUsdPerHour } : {}),
        ...(spec.instanceProfile ? { instanceProfile: spec.instanceProfile } : {}),
        root: spec.root,
        tags: input.tags,
        workflowId,
        runId,
      },
    ]);
    instanceId = launched.instanceId;
    instanceType = launched.instanceType;
    status.resources.instanceCreated = true;
  }
  status.resources.instanceId = instanceId;
  ctx.hostId = instanceId;
  await waits.waitForInstanceState.executeWithOptions({ summary: `wait for ${instanceId} running` }, [{ region: input.region, instanceId, state: 'running' }]);
  setCurrentDetails(`Waiting for the host worker on ${instanceId}`);
  await executeChild<typeof checkHost>(CheckHostWorkflowType, {
    workflowId: childId(ctx, 'host-check'),
    args: [instanceId, 600],
    typedSearchAttributes: [...ctx.searchAttributes, { key: SA.kind, value: 'host-check' }],
    staticSummary: `Run ${input.name}: is the host worker on ${instanceId} up?`,
  });
  if (status.resources.instanceCreated) {
    await costs.recordResourceStarted
      .executeWithOptions({ summary: `record ${instanceId} with cost-tracker/${input.project}` }, [
        {
          project: input.project,
          resource: {
            id: instanceId,
            kind: 'instance',
            type: instanceType,
            region: input.region,
            tags: { ...input.tags, [TagKey.Name]: `trainctl-${input.name}`, [RUN_COST_TAG]: input.name },
          },
        },
      ])
      .catch(() => undefined);
  }
  return instanceId;
}

/**
 * The tag that ties a resource's cost to its run in the tracker (whose views drop trainctl's own
 * `trainctl:` keys): the run's budget filters on it.
 */
export const RUN_COST_TAG = 'run';

/** Sets the run's budget on the project's tracker: the resources tagged with this run, by the input's limit and action. Best-effort. */
export async function setRunBudget(ctx: RunContext): Promise<void> {
  const { input } = ctx;
  if (!input.budget) return;
  await costs.setProjectBudget
    .executeWithOptions({ summary: `budget $${input.budget.limitUsd} (${input.budget.action}) for run ${input.name}` }, [
      {
        project: input.project,
        budget: {
          name: `run-${input.name}`,
          limitUsd: input.budget.limitUsd,
          action: input.budget.action,
          tagFilter: { key: RUN_COST_TAG, value: input.name },
        },
      },
    ])
    .catch(() => undefined);
}

/** What the resources this run created have cost, from the project's tracker; undefined when it cannot say. */
export async function runCost(ctx: RunContext): Promise<number | undefined> {
  const { instanceId, instanceCreated, volumeId, volumeCreated } = ctx.status.resources;
  const ids = [...(instanceId && instanceCreated ? [instanceId] : []), ...(volumeId && volumeCreated ? [volumeId] : [])];
  if (!ids.length) return 0;
  const r = await costs.costOfResources
    .executeWithOptions({ summary: `cost of run ${ctx.input.name}` }, [{ project: ctx.input.project, ids }])
    .catch(() => undefined);
  return r?.usd;
}

/** Provisions (or reuses by name) the run's volume and attaches it, as a `provisionVolume` child. */
export async function provisionRunVolume(ctx: RunContext): Promise<ProvisionVolumeResult> {
  const { input, status } = ctx;
  const name = 'existingName' in input.volume ? input.volume.existingName : `${input.name}-data`;
  const workflowId = volumeWorkflowId(input.region, name);
  status.currentChild = { workflowId, kind: 'volume' };
  const spec =
    'existingName' in input.volume
      ? undefined
      : {
          sizeGiB: input.volume.sizeGiB,
          volumeType: input.volume.volumeType,
          ...(input.volume.iops !== undefined ? { iops: input.volume.iops } : {}),
          ...(input.volume.throughputMiBps !== undefined ? { throughputMiBps: input.volume.throughputMiBps } : {}),
        };
  setCurrentDetails(`Provisioning volume ${name} and attaching it to ${ctx.hostId}`);
  try {
    const result = spec
      ? await executeChild<typeof provisionVolume>(ProvisionVolumeWorkflowType, {
          workflowId,
          args: [
            {
              name,
              region: input.region,
              availabilityZone: input.availabilityZone,
              ...spec,
              tags: { ...input.tags, [RUN_COST_TAG]: input.name },
              project: input.project,
              attachTo: { instanceId: ctx.hostId!, device: input.volume.device },
            },
          ],
          typedSearchAttributes: [...ctx.searchAttributes, { key: SA.kind, value: 'volume' }, { key: SA.resource, value: name }],
          staticSummary: `Run ${input.name}: volume ${name}`,
        })
      : await attachExisting(ctx, name);
    status.resources.volumeId = result.volumeId;
    status.resources.volumeCreated = result.created;
    return result;
  } catch (err) {
    if (spec && isCancellation(err)) ctx.volumeChildCancelled = workflowId;
    throw err;
  } finally {
    delete status.currentChild;
  }
}

/** A volume the user named: found by name, attached if it is not yet; never created, never deleted. */
async function attachExisting(ctx: RunContext, name: string): Promise<ProvisionVolumeResult> {
  const { input } = ctx;
  const [found] = await aws.findVolumesByName.executeWithOptions({ summary: `find volume ${name}` }, [{ region: input.region, name }]);
  if (!found)
    throw ApplicationFailure.create({
      type: ErrorKind.NotFound,
      nonRetryable: true,
      message: `volume.existingName: no managed volume named ${name} in ${input.region}`,
    });
  if (!found.attachments.some((a) => a.instanceId === ctx.hostId)) {
    await aws.attachVolume.executeWithOptions({ summary: `attach ${found.volumeId} to ${ctx.hostId}` }, [
      { region: input.region, volumeId: found.volumeId, instanceId: ctx.hostId!, device: input.volume.device },
    ]);
    await waits.waitForVolumeState.executeWithOptions({ summary: `wait for ${found.volumeId} in-use` }, [
      { region: input.region, volumeId: found.volumeId, state: 'in-use' },
    ]);
  }
  return {
    volumeId: found.volumeId,
    created: false,
    name,
    region: input.region,
    availabilityZone: found.availabilityZone,
    sizeGiB: found.sizeGiB,
    volumeType: found.volumeType,
    state: 'in-use',
    attachedTo: { instanceId: ctx.hostId!, device: input.volume.device },
  };
}

/** Where the run keeps things on the host: paths relative to its root; the dataset lives on the attached volume. */
export function hostPaths(ctx: RunContext): { data: string; workdir: string; checkpoints: string; outputs: string } {
  const { input, status } = ctx;
  return {
    data: `volumes/${status.resources.volumeId}/${input.dataset.path}`,
    workdir: input.training.workdir,
    checkpoints: input.training.checkpointDir,
    outputs: input.training.outputsDir,
  };
}

function s3Parts(uri: string): S3Location {
  const loc = parseS3Location(uri);
  if (!loc) throw ApplicationFailure.create({ type: ErrorKind.InvalidInput, nonRetryable: true, message: `${uri} is not an s3://[PROFILE@]BUCKET/PREFIX uri` });
  return loc;
}

/** The staging prefix for local ↔ host copies: beside the outputs (same store and profile), private to this run. */
export function stagingUri(ctx: RunContext): string {
  const { profile, bucket } = s3Parts(ctx.input.training.outputsUri);
  return s3LocationUri({ profile, bucket, prefix: `trainctl-staging/run-${ctx.input.name}/` });
}

/** Picks the strategy (`auto`: the recommender, from the dataset's size and count, the instance and the epochs). */
async function chooseStrategy(ctx: RunContext): Promise<DataStrategy> {
  const { input } = ctx;
  if (input.dataset.strategy !== 'auto') return input.dataset.strategy;
  let listing = { objects: 1, bytes: 1 };
  if (input.dataset.source.kind === 's3') {
    const { profile, bucket, prefix } = s3Parts(input.dataset.source.uri);
    const host = proxyActivities<HostActivities>(onHost(hostBound, ctx.hostId!, { scheduleToCloseTimeout: '10 minutes' }));
    listing = await host.listDatasetPrefix.executeWithOptions({ summary: `measure ${input.dataset.source.uri}` }, [
      { region: input.region, ...(profile ? { profile } : {}), bucket, prefix },
    ]);
  }
  const instanceType = 'type' in input.instance ? input.instance.type : 'g5.xlarge';
  const rec = recommend({
    datasetGiB: Math.max(listing.bytes / 2 ** 30, 1 / 1024),
    fileCount: Math.max(listing.objects, 1),
    runs: 1,
    epochsPerRun: input.training.epochs,
    instanceType,
    volumeType: 'sizeGiB' in input.volume ? input.volume.volumeType : 'gp3',
    snapshotExists: false,
    onVolume: false,
    s3Prefixes: 1,
    region: input.region,
  });
  return rec.strategy;
}

/** Stages the dataset (per strategy), copies the training code, and writes the DataLoader module next to it. */
export async function stageData(ctx: RunContext): Promise<void> {
  const { input, status } = ctx;
  const paths = hostPaths(ctx);
  const hostId = ctx.hostId!;
  const strategy = await chooseStrategy(ctx);
  status.strategy = strategy;
  setCurrentDetails(`Staging the data (${strategy})`);
  const source: DataLocation = input.dataset.source;
  if (strategy !== 'DirectS3') {
    await transferChild(ctx, 'stage-data', {
      source,
      destination: { kind: 'host', hostId, path: paths.data },
      sync: true,
      ...(source.kind === 'local' ? { stagingUri: stagingUri(ctx) } : {}),
    });
  }
  if (input.training.codeFrom) {
    await transferChild(ctx, 'stage-code', {
      source: input.training.codeFrom,
      destination: { kind: 'host', hostId, path: paths.workdir },
      sync: true,
      ...(input.training.codeFrom.kind === 'local' ? { stagingUri: stagingUri(ctx) } : {}),
    });
  }
  const host = proxyActivities<HostActivities>(onHost(hostBound, hostId, { scheduleToCloseTimeout: '10 minutes' }));
  const s3 = source.kind === 's3' ? s3Parts(source.uri) : undefined;
  // A store named by profile: the host worker resolves its endpoint and addressing style for the script (credentials stay on the host).
  const store =
    strategy === 'DirectS3' && s3?.profile
      ? await host.listDatasetPrefix.executeWithOptions({ summary: `resolve the store of ${s3LocationUri(s3)}` }, [
          { region: input.region, profile: s3.profile, bucket: s3.bucket, prefix: s3.prefix },
        ])
      : undefined;
  const script = loaderScript({
    strategy,
    ...(strategy === 'DirectS3' && s3
      ? {
          s3: {
            bucket: s3.bucket,
            prefix: s3.prefix,
            region: store?.region ?? input.region,
            endpoint: store?.endpoint,
            addressingStyle: store?.addressingStyle,
          },
        }
      : { path: paths.data }),
    provenance: `trainctl run ${input.name}`,
  });
  await host.writeHostFile.executeWithOptions({ summary: `write ${paths.workdir}/train_data.py (${strategy})` }, [
    { path: `${paths.workdir}/train_data.py`, content: script },
  ]);
}

/** Syncs the checkpoint folder to S3 (only new or changed files move); returns the files that did. */
export async function syncCheckpoints(ctx: RunContext, label: string): Promise<number> {
  const { input, status } = ctx;
  const report = await transferChild(ctx, label, {
    source: { kind: 'host', hostId: ctx.hostId!, path: hostPaths(ctx).checkpoints },
    destination: { kind: 's3', uri: input.training.checkpointUri },
    sync: true,
  });
  status.checkpointsSynced++;
  status.lastCheckpointAt = new Date().toISOString();
  return report.files - report.skipped;
}

/** Syncs the outputs folder to its S3 prefix. */
export async function syncOutputs(ctx: RunContext): Promise<void> {
  setCurrentDetails('Syncing the outputs to S3');
  await transferChild(ctx, 'outputs', {
    source: { kind: 'host', hostId: ctx.hostId!, path: hostPaths(ctx).outputs },
    destination: { kind: 's3', uri: ctx.input.training.outputsUri },
    sync: true,
  });
}

/** The run's search attributes, set on the run and every child. */
export function runSearchAttributes(input: RunInput): SearchAttributePair[] {
  return [
    { key: SA.run, value: input.name },
    { key: SA.project, value: input.project },
  ];
}
