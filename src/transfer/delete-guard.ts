/**
 * The guard in front of a sync's deletions (`deleteExtraneous`): pure, so the transfer workflow
 * decides before any activity deletes anything. No Node built-ins.
 *
 * @module
 */

/** Deletions allowed without `maxDelete`: at most this many entries… */
export const DEFAULT_MAX_DELETE = 1_000;
/** …and at most this share of the destination's entries. */
export const DEFAULT_MAX_DELETE_SHARE = 0.5;

/**
 * Why the deletions must not happen, or undefined when they may. Refused: an empty (filtered)
 * source — a wrong path or a filter that matches nothing would otherwise empty the destination —
 * and, unless `maxDelete` allows the number, more than {@link DEFAULT_MAX_DELETE} deletions or more
 * than half of the `considered` destination entries.
 */
export function deleteRefusal(o: { sourceFiles: number; deletions: number; considered: number; maxDelete?: number | undefined }): string | undefined {
  if (o.sourceFiles === 0)
    return `the (filtered) source is empty: refusing to delete ${o.deletions} of the destination's ${o.considered} entries (check the source path and --include/--exclude)`;
  if (o.maxDelete !== undefined) {
    return o.deletions > o.maxDelete
      ? `${o.deletions} deletions (of ${o.considered} destination entries considered) exceed --max-delete ${o.maxDelete}`
      : undefined;
  }
  if (o.deletions > DEFAULT_MAX_DELETE)
    return `${o.deletions} deletions (of ${o.considered} destination entries considered) exceed the default limit of ${DEFAULT_MAX_DELETE}; pass --max-delete ${o.deletions} to allow them`;
  if (o.deletions > o.considered * DEFAULT_MAX_DELETE_SHARE)
    return `${o.deletions} deletions are more than half of the ${o.considered} destination entries considered; pass --max-delete ${o.deletions} to allow them`;
  return undefined;
}
