/**
 * The cost tracker's resources packed for continue-as-new. Kept whole, a running resource costs
 * about 200 bytes of JSON (400 with two tags), so 10,000 of them are over Temporal's 2 MB payload
 * limit and a continue-as-new carrying them would fail its workflow task forever. Packed, each is
 * one row of numbers and its id: kinds, types, regions, rate sources, tag keys and values are
 * interned once, and times are relative to one base.
 *
 * {@link CarriedSize} bounds what a run can carry: it counts the bytes as resources and usage
 * arrive and refuses a new resource (or a first usage sample) that would take them over
 * {@link CARRIED_BYTES_LIMIT}: the message is rejected, with that reason.
 *
 * Pure and Temporal-free.
 *
 * @module
 */
import type { RateSource, ResourceKind, UsageStats } from '../contracts/cost.js';
import type { Segment, TrackedResource } from '../cost-model.js';
import { utf8Bytes } from '../utf8.js';

/** Optional fields of a row, with one-letter keys. */
interface PackedExtra {
  /** sizeGiB, iops, throughputMiBps */
  s?: number;
  i?: number;
  p?: number;
  /** stoppedAt (relative) */
  x?: number;
  /** unpricedReason (interned) */
  u?: number;
  /** orphan */
  o?: 1;
  /** tags: key, value, key, value … (interned) */
  g?: number[];
  /** usage, as it is */
  m?: UsageStats;
}

/** id, kind, type, region, startedAt, rateSource, segments (from, rate, to … with -1 for no rate / no end), extra. */
type PackedRow = [string, number, number, number, number, number, number[], PackedExtra?];

export interface PackedResources {
  v: 1;
  /** Every time in the rows is milliseconds after this. */
  base: number;
  strings: string[];
  rows: PackedRow[];
}

class Interner {
  readonly strings: string[] = [];
  private readonly index = new Map<string, number>();
  of(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.index.set(s, i);
    }
    return i;
  }
}

function packSegments(segments: Segment[], base: number): number[] {
  const out: number[] = [];
  for (const s of segments) out.push(s.from - base, s.rate ?? -1, s.to === undefined ? -1 : s.to - base);
  return out;
}

/** The resources as rows (in their order), with interned strings and times relative to the earliest. */
export function packResources(resources: Record<string, TrackedResource>): PackedResources {
  const all = Object.values(resources);
  let base = Infinity;
  for (const r of all) for (const t of [r.startedAt, ...r.segments.map((s) => s.from)]) base = Math.min(base, t);
  if (!Number.isFinite(base)) base = 0;
  const strings = new Interner();
  const rows = all.map((r): PackedRow => {
    const extra: PackedExtra = {};
    if (r.sizeGiB !== undefined) extra.s = r.sizeGiB;
    if (r.iops !== undefined) extra.i = r.iops;
    if (r.throughputMiBps !== undefined) extra.p = r.throughputMiBps;
    if (r.stoppedAt !== undefined) extra.x = r.stoppedAt - base;
    if (r.unpricedReason !== undefined) extra.u = strings.of(r.unpricedReason);
    if (r.orphan) extra.o = 1;
    const tags = Object.entries(r.tags);
    if (tags.length) extra.g = tags.flatMap(([k, v]) => [strings.of(k), strings.of(v)]);
    if (r.usage) extra.m = r.usage;
    const row: PackedRow = [
      r.id,
      strings.of(r.kind),
      strings.of(r.type),
      strings.of(r.region),
      r.startedAt - base,
      strings.of(r.rateSource),
      packSegments(r.segments, base),
    ];
    if (Object.keys(extra).length) row.push(extra);
    return row;
  });
  return { v: 1, base, strings: strings.strings, rows };
}

/** The resources {@link packResources} packed, exactly as they were. */
export function unpackResources(p: PackedResources): Record<string, TrackedResource> {
  const str = (i: number) => p.strings[i] as string;
  return Object.fromEntries(
    p.rows.map(([id, kind, type, region, startedAt, rateSource, flat, x = {}]) => {
      const segments: Segment[] = [];
      for (let i = 0; i + 2 < flat.length; i += 3) {
        const [from, rate, to] = [flat[i] as number, flat[i + 1] as number, flat[i + 2] as number];
        segments.push({ from: from + p.base, ...(to !== -1 ? { to: to + p.base } : {}), rate: rate === -1 ? null : rate });
      }
      const tags: [string, string][] = [];
      for (let i = 0; i + 1 < (x.g?.length ?? 0); i += 2) tags.push([str(x.g![i]!), str(x.g![i + 1]!)]);
      const r: TrackedResource = {
        id,
        kind: str(kind) as ResourceKind,
        type: str(type),
        region: str(region),
        ...(x.s !== undefined ? { sizeGiB: x.s } : {}),
        ...(x.i !== undefined ? { iops: x.i } : {}),
        ...(x.p !== undefined ? { throughputMiBps: x.p } : {}),
        tags: Object.fromEntries(tags),
        startedAt: startedAt + p.base,
        ...(x.x !== undefined ? { stoppedAt: x.x + p.base } : {}),
        rateSource: str(rateSource) as RateSource,
        ...(x.u !== undefined ? { unpricedReason: str(x.u) } : {}),
        segments,
        ...(x.o ? { orphan: true } : {}),
        ...(x.m ? { usage: x.m } : {}),
      };
      return [id, r];
    }),
  );
}

/** The payload a continue-as-new may carry, below Temporal's 2 MiB limit (the input's other fields are small). */
export const CARRIED_BYTES_LIMIT = 1_900_000;
/** A rejected message's record at most (a 256-character id, a 500-character reason, the message and time), in bytes. */
const REJECTED_RECORD_BYTES = 2_400;
/** The list of rejected messages is cut to this many bytes (the oldest dropped) whatever `keepRejected` says. */
export const MAX_REJECTED_BYTES = 400_000;
/** What a running resource's stop adds to its row: the end of its segment and `stoppedAt`. */
const STOP_BYTES = 32;
/** One segment of a row (from, rate, to), generously. */
export const SEGMENT_BYTES = 44;
/** A resource's usage (ten numbers and their keys) once it has any, generously. */
export const USAGE_BYTES = 320;

/** What a resource adds to the carried state, for {@link CarriedSize.admit}. */
export interface CarriedResource {
  id: string;
  kind: string;
  type: string;
  region: string;
  tags: Record<string, string>;
  sizeGiB?: number;
  iops?: number;
  throughputMiBps?: number;
}

/**
 * The bytes a run will carry into the next, counted as they grow: exact for the state the run
 * started with (plus room for its running resources to stop and for a full list of rejected
 * messages), then each new resource, segment and first usage sample adds a generous estimate of
 * its packed size. Resources leave only at a continue-as-new, so the count never runs behind.
 */
export class CarriedSize {
  private readonly interned: Set<string>;
  private bytes: number;

  constructor(
    state: { resources: Record<string, TrackedResource> },
    keepRejected: number,
    private readonly limit: number = CARRIED_BYTES_LIMIT,
  ) {
    const packed = packResources(state.resources);
    this.interned = new Set(packed.strings);
    const running = Object.values(state.resources).filter((r) => r.stoppedAt === undefined).length;
    this.bytes =
      utf8Bytes(JSON.stringify(packed)) +
      utf8Bytes(JSON.stringify({ ...state, resources: {} })) +
      running * STOP_BYTES +
      Math.min(keepRejected * REJECTED_RECORD_BYTES, MAX_REJECTED_BYTES);
  }

  get used(): number {
    return this.bytes;
  }

  /** Why a new resource cannot be carried (nothing is counted then), or undefined once it is counted. */
  admit(r: CarriedResource): string | undefined {
    const fresh = new Set<string>();
    for (const s of [r.kind, r.type, r.region, 'table', 'set-rate', 'override', 'unpriced', ...Object.entries(r.tags).flat()]) {
      if (!this.interned.has(s)) fresh.add(s);
    }
    const index = String(this.interned.size + fresh.size).length + 1;
    const tags = Object.keys(r.tags).length;
    let add = utf8Bytes(JSON.stringify(r.id)) + 4 * index + 15 + SEGMENT_BYTES + STOP_BYTES + 8 + (tags ? 8 + 2 * tags * index : 0);
    if (r.sizeGiB !== undefined || r.iops !== undefined || r.throughputMiBps !== undefined) add += 48;
    for (const s of fresh) add += utf8Bytes(JSON.stringify(s)) + 1;
    const refusal = this.take(add);
    if (refusal === undefined) for (const s of fresh) this.interned.add(s);
    return refusal;
  }

  /** Why `bytes` more cannot be carried, or undefined once they are counted. */
  take(bytes: number): string | undefined {
    if (this.bytes + bytes > this.limit) {
      return `the tracker is full: what it carries into its next run would be over ${this.limit} bytes (${this.bytes} now); stop resources or track them in another project`;
    }
    this.bytes += bytes;
    return undefined;
  }

  /** Counts `bytes` that must be carried whatever the limit (a segment a rate change or a restart adds, tags an adoption merges). */
  add(bytes: number): void {
    this.bytes += bytes;
  }
}
