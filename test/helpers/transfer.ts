import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { onCleanup, startWorker, testClient, testServices, uniqueName, type RunningWorker, type TestServices } from './harness.js';
import { createS3Client } from '../../src/aws/clients.js';
import type { TransferRequest } from '../../src/contracts/transfer.js';
import type { TransferReport } from '../../src/contracts/transfer.js';
import * as transferApi from '../../src/api/transfer.js';

/** A bucket for one test file, emptied (objects and multipart uploads) and deleted when it ends. */
export async function testBucket(s3: S3Client, prefix = 'tx'): Promise<string> {
  const bucket = uniqueName(prefix).toLowerCase();
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  onCleanup(async () => {
    for (;;) {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      const objects = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (objects.length === 0) break;
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }));
    }
    const ups = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    for (const u of ups.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }));
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  });
  return bucket;
}

/** A temp folder removed when the test file ends. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `trainctl-${prefix}-`));
  onCleanup(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export function writeTree(root: string, files: Record<string, Buffer | string>): void {
  for (const [rel, data] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), data);
  }
}

/** Relative path → SHA-256 of every file under `root` (temp files included, so a test sees them). */
export function treeDigests(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(root, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  if (statSync(root, { throwIfNoEntry: false })) walk(root);
  return out;
}

export function randomData(bytes: number): Buffer {
  return randomBytes(bytes);
}

export const MiB = 1024 * 1024;

/** What every transfer test file starts from: the suite's servers, a worker, S3 and its own bucket. */
export interface TransferSuite {
  services: TestServices;
  client: Client;
  worker: RunningWorker;
  s3: S3Client;
  bucket: string;
  /** Runs a transfer to its end (on `taskQueue`, default the suite's worker) and returns its report. */
  run(request: TransferRequest, taskQueue?: string): Promise<TransferReport>;
}

export async function transferSuite(bucketPrefix: string): Promise<TransferSuite> {
  const services = await testServices();
  const client = await testClient(services.env);
  const worker = await startWorker(services);
  const s3 = createS3Client(services.env);
  const bucket = await testBucket(s3, bucketPrefix);
  const run = (request: TransferRequest, taskQueue = worker.taskQueue) =>
    transferApi.execute(client, request, { taskQueue, workflowId: uniqueName('transfer') });
  return { services, client, worker, s3, bucket, run };
}

/** The ApplicationFailure a transfer run failed with; fails the test if it succeeded. */
export async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `expected the workflow to fail, got ${String(err)}`);
  assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
  return err.cause;
}
