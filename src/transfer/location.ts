/**
 * Transfer locations as people write them (`./data`, `s3://bucket/prefix`, `host:ID:/path`) and
 * as trainctl names them back in summaries and search attributes.
 *
 * @module
 */
import { resolve } from 'node:path';
import type { DataLocation } from '../contracts/transfer.js';

/** `s3://…`, `host:ID:/path` or a local path (made absolute against `cwd`, keeping a trailing /). */
export function parseLocation(arg: string, cwd = process.cwd()): DataLocation {
  if (arg.startsWith('s3://')) return { kind: 's3', uri: arg };
  const host = /^host:([^:]+):(.+)$/.exec(arg);
  if (host) return { kind: 'host', hostId: host[1] ?? '', path: host[2] ?? '' };
  const abs = resolve(cwd, arg);
  return { kind: 'local', path: arg.endsWith('/') && !abs.endsWith('/') ? `${abs}/` : abs };
}

/** A location written the way {@link parseLocation} reads it. */
export function formatLocation(l: DataLocation): string {
  return l.kind === 's3' ? l.uri : l.kind === 'host' ? `host:${l.hostId}:${l.path}` : l.path;
}
