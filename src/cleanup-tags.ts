/**
 * How cleanup reads trainctl's tags on a resource — fail closed (issue 10, guard 1). A key
 * matches when, trimmed and case-folded, it equals the wanted key, because AWS keys are
 * case-sensitive and a console user can write ` Trainctl:Protected` as easily as the canonical
 * spelling. Pure: imported by the planner (workflow code) and the activities' re-checks.
 *
 * @module
 */
import { TagKey } from './contracts/common.js';

/** Tag key trainctl puts on a snapshot taken before a volume's deletion: a backup, never tag-selected. */
export const SOURCE_VOLUME_TAG = 'trainctl:source-volume';

const TRUTHY = /^(true|yes|1)$/i;
const EXPLICIT_FALSE = /^(false|no|0|off)$/i;

const fold = (k: string) => k.trim().toLowerCase();

/** Every `[key, value]` whose key, trimmed and case-folded, is `key` (duplicate spellings included). */
export function tagEntries(tags: Record<string, string>, key: string): [string, string][] {
  const wanted = fold(key);
  return Object.entries(tags).filter(([k]) => fold(k) === wanted);
}

/** The value of a tag, its key compared case-insensitively (the first spelling found). */
export function tagValue(tags: Record<string, string>, key: string): string | undefined {
  const wanted = key.toLowerCase();
  for (const [k, v] of Object.entries(tags)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}

/** Whether the tag is set to true/yes/1 (any case), its key compared case-insensitively. The pre-guard reading, kept for old runs. */
export function tagIsTrue(tags: Record<string, string>, key: string): boolean {
  const v = tagValue(tags, key);
  return v !== undefined && TRUTHY.test(v.trim());
}

/**
 * Whether a protection tag protects: it is present under any spelling and at least one of its
 * values is not an explicit false (`false`, `no`, `0`, `off`, any case, trimmed). An empty value
 * (a key-only tag from the console), `maybe`, or conflicting duplicates all protect.
 */
export function tagProtects(tags: Record<string, string>, key: string): boolean {
  return tagEntries(tags, key).some(([, v]) => !EXPLICIT_FALSE.test(v.trim()));
}

/** Whether the tag is an explicit true under every spelling present (and present at all): candidacy fails closed. */
export function tagExplicitlyTrue(tags: Record<string, string>, key: string): boolean {
  const found = tagEntries(tags, key);
  return found.length > 0 && found.every(([, v]) => TRUTHY.test(v.trim()));
}

/** The tag as written on the resource (`Trainctl:Protected=TRUE`, every spelling), for skip reasons. */
export function tagAsWritten(tags: Record<string, string>, key: string): string {
  const found = tagEntries(tags, key);
  return found.length ? found.map(([k, v]) => `${k}=${v}`).join(', ') : key;
}

export type ProtectionLevel = 'none' | 'important' | 'protected';
export const PROTECTION_RANK: Record<ProtectionLevel, number> = { none: 0, important: 1, protected: 2 };

/** The protection the resource's tags give it, read fail-closed. */
export function tagProtection(tags: Record<string, string>): ProtectionLevel {
  if (tagProtects(tags, TagKey.Protected)) return 'protected';
  if (tagProtects(tags, TagKey.Important)) return 'important';
  return 'none';
}

/** Whether a snapshot is a backup taken by snapshot-before-delete (any spelling of its source tag). */
export function isBackupSnapshot(tags: Record<string, string>): boolean {
  return tagEntries(tags, SOURCE_VOLUME_TAG).length > 0;
}

/** `s3://BUCKET/PREFIX` names the folder `PREFIX/`: the id with exactly one trailing slash added. Other ids unchanged. */
export function folderOfS3Id(id: string): string {
  if (!id.startsWith('s3://') || id.includes('#')) return id;
  return id.endsWith('/') ? id : `${id}/`;
}

/** A prefix target means a folder: `data` → `data/` (never `data*`); `''` stays the whole bucket. */
export function folderPrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}
