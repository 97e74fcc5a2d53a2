/**
 * The bounds of one cleanup (issue 12): how large a plan may be, and how an approved plan is cut
 * into chunks that each run (one workflow run, then continue-as-new) executes.
 *
 * Pure and deterministic: imported by workflow code and by activities, so no Node built-ins.
 *
 * @module
 */
import type { CleanupKind, CleanupPlan, PlannedResource } from './contracts/cleanup.js';
import { utf8Bytes } from './utf8.js';

/** Resources one plan may delete. More is refused (InvalidInput) before anything is deleted. */
export const CLEANUP_MAX_PLAN_RESOURCES = 2_000;
/** Bytes of one plan as JSON (Temporal warns from 512 KB a payload). More is refused the same way. */
export const CLEANUP_MAX_PLAN_BYTES = 512 * 1024;
/** Bytes of one discovery result as JSON: the discovery activity refuses more (InvalidInput). */
export const CLEANUP_MAX_DISCOVERY_BYTES = 1_500_000;

/** How to make a cleanup smaller: said by every refusal of a too-large one. */
export const NARROW_THE_SELECTOR =
  'narrow the selector — another tag (e.g. trainctl:project=NAME), fewer kinds, olderThan, a deeper S3 prefix or fewer ids — and run several cleanups; nothing was deleted';

function countsByKind(kinds: CleanupKind[]): string {
  const counts = new Map<string, number>();
  for (const k of kinds) counts.set(k, (counts.get(k) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}

/**
 * Why a plan is too large to be one cleanup (over {@link CLEANUP_MAX_PLAN_RESOURCES} resources or
 * {@link CLEANUP_MAX_PLAN_BYTES} bytes), naming what it holds and how to narrow it; undefined if it fits.
 */
export function planTooLarge(plan: CleanupPlan): string | undefined {
  const bytes = utf8Bytes(JSON.stringify(plan));
  if (plan.resources.length <= CLEANUP_MAX_PLAN_RESOURCES && bytes <= CLEANUP_MAX_PLAN_BYTES) return undefined;
  return (
    `this cleanup's plan is too large: it deletes ${plan.resources.length} resources (${countsByKind(plan.resources.map((r) => r.kind)) || 'none'}) ` +
    `and skips ${plan.skipped.length}, ${bytes} bytes; one cleanup plans at most ${CLEANUP_MAX_PLAN_RESOURCES} resources and ` +
    `${CLEANUP_MAX_PLAN_BYTES} bytes, so that the plan you approve stays one payload: ${NARROW_THE_SELECTOR}`
  );
}

/**
 * Cuts a plan's resources into chunks of about `size`, as lists of indices into `resources` in plan
 * order, such that every dependency holds across chunks: lines that wait on each other at a step
 * (an instance and its volumes) share a chunk, and a line that waits for another to be settled (a
 * snapshot after every volume) is in the same chunk as that line or a later one — earlier chunks have
 * ended before a later one starts. A chunk can exceed `size` by one dependency group less one.
 */
export function chunkPlan(resources: readonly PlannedResource[], size: number): number[][] {
  const at = new Map(resources.map((r, i) => [r.id, i]));
  const parent = resources.map((_, i) => i);
  const root = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  const union = (a: number, b: number) => {
    const [ra, rb] = [root(a), root(b)];
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  // A step dependency always shares a chunk; a settled one may cross to an earlier chunk.
  resources.forEach((r, i) => {
    for (const d of r.dependsOn) {
      const j = at.get(d.resourceId);
      if (j !== undefined && d.after !== 'settled') union(i, j);
    }
  });
  for (;;) {
    const chunks = pack(resources.length, root, Math.max(1, size));
    const chunkOf = new Array<number>(resources.length);
    chunks.forEach((c, n) => c.forEach((i) => (chunkOf[i] = n)));
    let merged = false;
    resources.forEach((r, i) => {
      for (const d of r.dependsOn) {
        const j = at.get(d.resourceId);
        if (j !== undefined && chunkOf[j]! > chunkOf[i]!) {
          union(i, j);
          merged = true;
        }
      }
    });
    if (!merged) return chunks;
  }
}

/** Groups (by root, in order of their first member) packed into chunks of at least `size` each but the last. */
function pack(n: number, root: (i: number) => number, size: number): number[][] {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = root(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  }
  const chunks: number[][] = [];
  let current: number[] = [];
  for (const g of groups.values()) {
    current.push(...g);
    if (current.length >= size) {
      chunks.push(current.sort((a, b) => a - b));
      current = [];
    }
  }
  if (current.length) chunks.push(current.sort((a, b) => a - b));
  return chunks;
}
