/**
 * The transfer families: a local folder to S3 (a multipart file of several parts and a small one),
 * and an S3 prefix to a local folder. Each run has its own source, destination and workflow id, and
 * is checked against the emulator and the files: every byte as sent, nothing extra (temp files,
 * stray objects, open multipart uploads), the source untouched.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import * as transferApi from '../src/api/transfer.js';
import type { TransferRequest } from '../src/contracts/transfer.js';
import { addCounts, compareTrees, filesUnder, noCounts, objectBytes, objectsUnder, openUploads, type Counts } from './checks.js';
import { settleResult, type Family, type FamilyRun, type RunContext } from './campaign.js';

const MiB = 1024 * 1024;

/** The data of one run: a file of several 5 MiB parts and a small file (smaller in the smoke version). */
function payload(ctx: RunContext): Map<string, Buffer> {
  return new Map([
    ['model.bin', randomBytes(ctx.smoke ? 6 * MiB + 1234 : 11 * MiB + 1234)],
    ['meta/config.json', randomBytes(3_000)],
  ]);
}

function request(ctx: RunContext, source: TransferRequest['source'], destination: TransferRequest['destination']): TransferRequest {
  return { source, destination, partSizeMiB: 5, concurrency: 2, heartbeatTimeoutSeconds: ctx.heartbeatSeconds };
}

/** Objects under `prefix` as relative path → bytes, for comparing with a local tree. */
async function objectTree(ctx: RunContext, prefix: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const key of (await objectsUnder(ctx.s3, ctx.bucket, prefix)).keys()) {
    const bytes = await objectBytes(ctx.s3, ctx.bucket, key);
    if (bytes) out.set(key.slice(prefix.length), bytes);
  }
  return out;
}

function transferRun(ctx: RunContext, workflowId: string, req: TransferRequest, check: () => Promise<Counts>): FamilyRun {
  return {
    workflowId,
    start: async () => void (await transferApi.start(ctx.client, req, { taskQueue: ctx.taskQueue, workflowId })),
    settle: () =>
      settleResult(
        ctx,
        () => transferApi.handle(ctx.client, workflowId).result(),
        (report) => ({ ended: 'completed', detail: `${report.files} files, ${report.bytes} bytes sent, ${report.verified} verified` }),
      ),
    check,
  };
}

/** Local folder → S3 prefix. */
export const transferUpload: Family = {
  name: 'transfer (local → S3)',
  what: 'a local folder (an 11 MiB file in 5 MiB parts and a 3 KB one; 6 MiB in the smoke version) to an S3 prefix. Checked: every object byte-identical to its file, no other object under the prefix, no multipart upload left open, the source files unchanged.',
  async prepare(ctx, run) {
    const data = payload(ctx);
    const src = join(ctx.workDir, `up-${run}`);
    for (const [rel, bytes] of data) {
      mkdirSync(join(src, rel, '..'), { recursive: true });
      writeFileSync(join(src, rel), bytes);
    }
    const prefix = `${ctx.tag}/up-${run}/`;
    const workflowId = `${ctx.tag}/transfer-up-${run}`;
    return transferRun(ctx, workflowId, request(ctx, { kind: 'local', path: src }, { kind: 's3', uri: `s3://${ctx.bucket}/${prefix}` }), async () => {
      const arrived = compareTrees(data, await objectTree(ctx, prefix), `s3://${ctx.bucket}/${prefix}`);
      const uploads = await openUploads(ctx.s3, ctx.bucket, prefix);
      const leakedUploads: Counts = {
        ...noCounts(),
        leaked: uploads.length,
        findings: uploads.map((u) => `multipart upload ${u.uploadId} of ${u.key} left open`),
      };
      return addCounts(addCounts(arrived, leakedUploads), untouched(data, filesUnder(src), src));
    });
  },
};

/** S3 prefix → local folder. */
export const transferDownload: Family = {
  name: 'transfer (S3 → local)',
  what: 'the same data from an S3 prefix to a local folder. Checked: every file byte-identical, no other file (temp or partial files count as leaks), the source objects unchanged.',
  async prepare(ctx, run) {
    const data = payload(ctx);
    const prefix = `${ctx.tag}/down-${run}/`;
    for (const [rel, bytes] of data) await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: `${prefix}${rel}`, Body: bytes }));
    const dst = join(ctx.workDir, `down-${run}`);
    const workflowId = `${ctx.tag}/transfer-down-${run}`;
    return transferRun(ctx, workflowId, request(ctx, { kind: 's3', uri: `s3://${ctx.bucket}/${prefix}` }, { kind: 'local', path: dst }), async () =>
      addCounts(compareTrees(data, filesUnder(dst), dst), untouched(data, await objectTree(ctx, prefix), `s3://${ctx.bucket}/${prefix}`)),
    );
  },
};

/** S3 prefix → a folder on the host worker's root (a training instance pulling its dataset). */
export const transferToHost: Family = {
  name: 'transfer (S3 → host)',
  what: 'the same data from an S3 prefix to a folder on the host worker’s root (a training instance pulling its dataset; the activities run in the host worker process). Checked as S3 → local, on the host root.',
  async prepare(ctx, run) {
    const data = payload(ctx);
    const prefix = `${ctx.tag}/host-${run}/`;
    for (const [rel, bytes] of data) await ctx.s3.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: `${prefix}${rel}`, Body: bytes }));
    const dst = `pull-${run}/`;
    const workflowId = `${ctx.tag}/transfer-host-${run}`;
    const req = request(ctx, { kind: 's3', uri: `s3://${ctx.bucket}/${prefix}` }, { kind: 'host', hostId: ctx.host.id, path: dst });
    return transferRun(ctx, workflowId, req, async () =>
      addCounts(
        compareTrees(data, filesUnder(join(ctx.host.root, dst)), `host:${dst}`),
        untouched(data, await objectTree(ctx, prefix), `s3://${ctx.bucket}/${prefix}`),
      ),
    );
  },
};

/** The source after the run: a file gone is a wrong deletion, a changed one corrupt bytes. */
function untouched(want: Map<string, Buffer>, now: Map<string, Buffer>, where: string): Counts {
  const c = compareTrees(want, now, `source ${where}`);
  const missing = [...want.keys()].filter((k) => !now.has(k));
  const missingBytes = missing.reduce((n, k) => n + want.get(k)!.length, 0);
  return { ...c, corruptBytes: c.corruptBytes - missingBytes, wrongDeletions: missing.length };
}
