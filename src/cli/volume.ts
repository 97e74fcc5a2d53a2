import { parseArgs } from 'node:util';
import { z } from 'zod';
import type { Client } from '@temporalio/client';
import { provision, cancel } from '../api/volume.js';
import type { Env } from '../config.js';
import { ProvisionVolumeInputSchema, type ProvisionVolumeResult } from '../contracts/volume.js';
import { RegionSchema, ResourceNameSchema } from '../contracts/common.js';
import { workflowUiUrl } from '../temporal.js';
import { ExitCode, UsageError, reportError, type FlagNames } from './output.js';
import { asUsageError, parseNumber, parseTags } from './args.js';

export const VOLUME_FLAGS: FlagNames = {
  name: '--name',
  region: '--region (or AWS_REGION)',
  sizeGiB: '--size-gib',
  volumeType: '--type',
  iops: '--iops',
  throughputMiBps: '--throughput',
  availabilityZone: '--az',
  snapshotId: '--snapshot-id',
  tags: '--tag',
  attachTo: '--attach-instance/--attach-device',
  'attachTo.instanceId': '--attach-instance',
  'attachTo.device': '--attach-device',
  ifExists: '--if-exists',
};

const VOLUME_OPTIONS = {
  name: { type: 'string' },
  region: { type: 'string' },
  'size-gib': { type: 'string' },
  type: { type: 'string' },
  iops: { type: 'string' },
  throughput: { type: 'string' },
  az: { type: 'string' },
  'snapshot-id': { type: 'string' },
  tag: { type: 'string', multiple: true },
  'attach-instance': { type: 'string' },
  'attach-device': { type: 'string' },
  'if-exists': { type: 'string' },
  encrypted: { type: 'boolean' },
  json: { type: 'boolean', default: false },
} as const;

const HELP = `usage: trainctl volume create --name NAME --size-gib N --az ZONE [options]
       trainctl volume cancel --name NAME [--region REGION]

create options:
  --type gp3|gp2|io1|io2|st1|sc1   volume type (default gp3)
  --iops N --throughput MIBPS      provisioned performance (gp3; io1/io2 need --iops)
  --snapshot-id snap-…             restore from a snapshot
  --tag KEY=VALUE                  a tag (repeatable)
  --attach-instance i-… --attach-device /dev/sdf
  --if-exists reuse|fail           what to do when the name exists (default reuse)
  --encrypted                      encrypt with the account's default EBS key
  --region REGION                  default: AWS_REGION
  --json                           machine-readable output on stdout`;

export async function volumeCommand(argv: string[], env: Env, connect: () => Promise<Client>): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(HELP);
    return sub === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  let values;
  try {
    ({ values } = parseArgs({ args: rest, strict: true, options: VOLUME_OPTIONS }));
  } catch (err) {
    return reportError(asUsageError(err), { json: rest.includes('--json'), what: `volume ${sub}` });
  }
  const json = values.json ?? false;
  const region = values.region ?? env.AWS_REGION;

  if (sub === 'cancel') {
    if (!values.name) return reportError(new UsageError('volume cancel needs --name'), { json, what: 'volume cancel' });
    try {
      // Checked before connecting, field by field, so the message names the flag.
      z.object({ name: ResourceNameSchema, region: RegionSchema }).parse({ name: values.name, region });
      const client = await connect();
      const workflowId = await cancel(client, region, values.name);
      if (json) console.log(JSON.stringify({ ok: true, workflowId, cancelRequested: true }));
      else console.log(`cancellation requested for ${workflowId}; it deletes what it created, then stops\n  run: ${workflowUiUrl(env, workflowId)}`);
      return ExitCode.Ok;
    } catch (err) {
      return reportError(err, { json, what: 'volume cancel', flags: VOLUME_FLAGS });
    }
  }
  if (sub !== 'create') return reportError(new UsageError(`unknown volume command ${JSON.stringify(sub)}\n${HELP}`), { json, what: 'volume' });

  let uiUrl: string | undefined;
  try {
    if (values['attach-instance'] === undefined && values['attach-device'] !== undefined) {
      throw new UsageError('--attach-device needs --attach-instance');
    }
    const request = {
      name: values.name,
      region,
      sizeGiB: parseNumber('--size-gib', values['size-gib']),
      volumeType: values.type,
      iops: parseNumber('--iops', values.iops),
      throughputMiBps: parseNumber('--throughput', values.throughput),
      availabilityZone: values.az,
      snapshotId: values['snapshot-id'],
      encrypted: values.encrypted,
      tags: parseTags(values.tag ?? []),
      attachTo: values['attach-instance'] !== undefined ? { instanceId: values['attach-instance'], device: values['attach-device'] ?? '/dev/sdf' } : undefined,
      ifExists: values['if-exists'],
    };
    // Validate before connecting: a bad request never reaches Temporal or AWS.
    const input = ProvisionVolumeInputSchema.parse(request);
    const client = await connect();
    const handle = await provision(client, input, { taskQueue: env.TRAINCTL_TASK_QUEUE });
    uiUrl = workflowUiUrl(env, handle.workflowId, handle.firstExecutionRunId);
    if (!json) console.error(`provisioning ${input.name}: ${uiUrl}`);
    const result: ProvisionVolumeResult = await handle.result();
    if (json) console.log(JSON.stringify({ ok: true, ...result, workflowId: handle.workflowId, runId: handle.firstExecutionRunId, ui: uiUrl }));
    else {
      console.log(`${result.volumeId}  ${result.created ? 'created' : 'reused (created: false)'}  ${result.name}`);
      console.log(
        `  ${result.sizeGiB} GiB ${result.volumeType} in ${result.availabilityZone}, ${result.state}${result.attachedTo ? `, attached to ${result.attachedTo.instanceId} at ${result.attachedTo.device}` : ''}`,
      );
      console.log(`  run: ${uiUrl}`);
    }
    return ExitCode.Ok;
  } catch (err) {
    return reportError(err, { json, what: 'volume create', flags: VOLUME_FLAGS, ...(uiUrl ? { uiUrl } : {}) });
  }
}
