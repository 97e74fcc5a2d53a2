/**
 * The fuzzer's raw material: one valid request per workflow family (so mutations land near the
 * edge of what the contract accepts), junk values, and the fast-check arbitraries that mutate a
 * request: replace a field, drop it, add an unknown one, or replace the whole input.
 */
import fc from 'fast-check';
import type { z } from 'zod';
import { ProvisionVolumeInputSchema, ProvisionVolumeWorkflowType } from '../src/contracts/volume.js';
import { CleanupInputSchema, CleanupWorkflowType } from '../src/contracts/cleanup.js';
import { CostTrackerInputSchema, CostTrackerWorkflowType, ReconcileCostWorkflowType, ReconcileInputSchema } from '../src/contracts/cost.js';
import { CheckHostWorkflowType, HostIdSchema } from '../src/contracts/host.js';
import { TransferInputSchema, TransferWorkflowType } from '../src/contracts/transfer.js';
import { PrewarmInputSchema, PrewarmWorkflowType } from '../src/contracts/prewarm.js';
import { RunInputSchema, TrainingRunWorkflowType } from '../src/contracts/run.js';

/** A workflow family as the fuzzer sees it: its type name, the contract that judges an input, a valid input. */
export interface FuzzTarget {
  workflowType: string;
  schema: z.ZodType;
  seed: unknown;
  /** The workflow's arguments for an input (checkHost takes the host id and a wait). */
  args(input: unknown): unknown[];
}

const one = (input: unknown) => [input];

export const RUN_SEED = {
  name: 'fz-run',
  project: 'fz',
  region: 'us-east-1',
  availabilityZone: 'us-east-1a',
  instance: { type: 'g5.xlarge', ami: 'ami-0123456789abcdef0', market: 'on-demand' },
  volume: { sizeGiB: 16, volumeType: 'gp3', device: '/dev/sdf' },
  dataset: { source: { kind: 's3', uri: 's3://fz-bucket/data/' }, path: 'data', strategy: 'auto' },
  training: {
    command: ['python3', 'train.py'],
    checkpointDir: 'checkpoints',
    checkpointUri: 's3://fz-bucket/ckpt/',
    outputsDir: 'outputs',
    outputsUri: 's3://fz-bucket/out/',
  },
  teardown: { instance: 'terminate', volume: 'delete' },
};

export const TARGETS: FuzzTarget[] = [
  {
    workflowType: ProvisionVolumeWorkflowType,
    schema: ProvisionVolumeInputSchema,
    seed: { name: 'fz-vol', region: 'us-east-1', sizeGiB: 8, availabilityZone: 'us-east-1a', volumeType: 'gp3', tags: { team: 'fz' } },
    args: one,
  },
  {
    workflowType: CleanupWorkflowType,
    schema: CleanupInputSchema,
    seed: { region: 'us-east-1', selector: { tags: { team: 'fz' }, ids: [], kinds: ['volume'], olderThan: '7d' }, dryRun: true, concurrency: 2 },
    args: one,
  },
  { workflowType: CostTrackerWorkflowType, schema: CostTrackerInputSchema, seed: { project: 'fz', keepRejected: 10, searchAttributes: true }, args: one },
  { workflowType: ReconcileCostWorkflowType, schema: ReconcileInputSchema, seed: { project: 'fz', regions: ['us-east-1'] }, args: one },
  { workflowType: CheckHostWorkflowType, schema: HostIdSchema, seed: 'fz-host', args: (input) => [input, 1] },
  {
    workflowType: TransferWorkflowType,
    schema: TransferInputSchema,
    seed: { source: { kind: 's3', uri: 's3://fz-bucket/data/' }, destination: { kind: 'local', path: '/tmp/fz-dst/' }, region: 'us-east-1', concurrency: 2 },
    args: one,
  },
  {
    workflowType: PrewarmWorkflowType,
    schema: PrewarmInputSchema,
    seed: { hostId: 'fz-host', strategy: 'LocalCache', s3: { bucket: 'fz-bucket', prefix: 'data/' }, cacheDir: 'cache', concurrency: 2 },
    args: one,
  },
  { workflowType: TrainingRunWorkflowType, schema: RunInputSchema, seed: RUN_SEED, args: one },
];

/** Values a careless or hostile caller sends: wrong types, edges of numbers, paths that escape, odd text. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
  fc.constantFrom(
    '',
    ' ',
    '../../etc/passwd',
    '/etc/passwd',
    's3://',
    's3://Bad_Bucket/x',
    'host::/x',
    '-1',
    '0',
    '1e309',
    'NaN',
    '0x10',
    '\u0000',
    'x'.repeat(300),
    '😀',
    '--json',
    -1,
    0,
    1e21,
    Number.MAX_SAFE_INTEGER + 2,
    0.5,
    [],
    {},
  ),
);

/** Every path into a JSON value (objects and arrays), the root included as []. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function applyAt(root: unknown, path: (string | number)[], op: 'replace' | 'delete' | 'extra', value: unknown): unknown {
  if (path.length === 0) return op === 'replace' ? value : op === 'extra' && root && typeof root === 'object' ? { ...root, bogusField: value } : value;
  const copy: unknown = structuredClone(root);
  let parent = copy as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (op === 'replace') parent[last] = value;
  else if (op === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (target && typeof target === 'object' && !Array.isArray(target)) (target as Record<string, unknown>).bogusField = value;
    else parent[last] = value;
  }
  return copy;
}

/** What the workflow receives after the JSON payload converter (undefined fields dropped, NaN → null). */
export function throughJson(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** Mutations (1-3) of `seed`, or now and then a junk value instead of the whole input. */
export function mutated(seed: unknown): fc.Arbitrary<unknown> {
  const all = paths(seed);
  const step = fc.record({ at: fc.nat({ max: all.length - 1 }), op: fc.constantFrom('replace' as const, 'delete' as const, 'extra' as const), value: junk });
  const edits = fc.array(step, { minLength: 1, maxLength: 3 }).map((steps) => {
    let v: unknown = seed;
    for (const s of steps) {
      const live = paths(v);
      v = applyAt(v, live[s.at % live.length]!, s.op, s.value);
    }
    return throughJson(v);
  });
  return fc.oneof({ arbitrary: edits, weight: 9 }, { arbitrary: junk.map(throughJson), weight: 1 });
}

/** `count` inputs for `target` that its contract refuses, deterministic for `seed`. */
export function invalidInputs(target: FuzzTarget, seed: number, count: number): unknown[] {
  const arb = mutated(target.seed).filter((v) => !target.schema.safeParse(v).success);
  return fc.sample(arb, { seed, numRuns: count });
}

/** The names a clear message about `v` may use: each refused field's key (or `(input)` for the whole). */
export function refusedFields(schema: z.ZodType, v: unknown): string[] {
  const r = schema.safeParse(v);
  if (r.success) return [];
  return r.error.issues.flatMap((i) => {
    const keys = i.path.filter((p): p is string => typeof p === 'string');
    const named = i.code === 'unrecognized_keys' ? i.keys : [];
    return [...named, ...(keys.length ? [keys[keys.length - 1]!] : ['(input)'])];
  });
}
