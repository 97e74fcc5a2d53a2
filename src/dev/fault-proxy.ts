/**
 * A fault-injecting HTTP proxy in front of the AWS emulator (or any S3 server). Every client that
 * is pointed at it — the AWS SDK in a worker, s5cmd, a host worker process — goes through a real
 * socket, so the faults are the ones a network and a throttling service really produce: AWS error
 * responses (503 SlowDown, RequestLimitExceeded, 500 InternalError), connection resets before a
 * request is forwarded or in the middle of a response body, latency, and "lost response after
 * success" (the request is forwarded and executed, then the reply is dropped).
 *
 * Rules are set and the request log is read over a small control API on the same port, under
 * `/__proxy/`, which is never forwarded. The log (operation, part number, bytes in and out, the
 * fault applied) is how tests measure resume and retry behaviour from outside the code under test.
 *
 * Run as a process: `node --import tsx src/dev/fault-proxy.ts --upstream http://127.0.0.1:PORT`;
 * it prints `fault-proxy listening PORT` and exits when its parent does. Test tooling only.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export const FaultKind = {
  /** Answer with an AWS error without forwarding (status + code). */
  Error: 'error',
  /** Drop the connection before forwarding anything. */
  Reset: 'reset',
  /** Forward, send the response headers and half the body, then drop the connection. */
  ResetMidResponse: 'resetMidResponse',
  /** Wait `latencyMs`, then forward normally. */
  Latency: 'latency',
  /** Forward and let the server act, then drop the connection instead of replying. */
  LostResponse: 'lostResponse',
  /** Forward, and reply without the store's `x-amz-checksum-*` headers: a store that keeps no S3 checksums. */
  DropChecksums: 'dropChecksums',
} as const;
export type FaultKind = (typeof FaultKind)[keyof typeof FaultKind];

export const FaultRuleSchema = z.object({
  /** Operation name (`CreateVolume`, `UploadPart`, `GetObject` …) or `*`. */
  op: z.string().min(1),
  fault: z.enum(FaultKind),
  /** Only requests whose bucket / key start with these. */
  bucket: z.string().optional(),
  keyPrefix: z.string().optional(),
  /** Probability per matching request (seeded: the same seed gives the same faults). */
  rate: z.number().min(0).max(1).default(1),
  /** Skip this many matching requests first, then fault at most `times` of them. */
  after: z.number().int().min(0).default(0),
  times: z.number().int().positive().optional(),
  status: z.number().int().min(400).max(599).default(503),
  code: z.string().default('SlowDown'),
  latencyMs: z.number().int().min(0).max(60_000).default(0),
});
export type FaultRule = z.input<typeof FaultRuleSchema>;

export interface ProxyLogEntry {
  seq: number;
  op: string;
  method: string;
  path: string;
  bucket?: string;
  key?: string;
  partNumber?: number;
  /** The request's `Range` header (a ranged GET), as sent. */
  range?: string;
  /** HTTP status sent to the client; 0 when the connection was dropped. */
  status: number;
  bytesIn: number;
  bytesOut: number;
  fault?: FaultKind;
}

/** The AWS operation a request stands for: EC2's `Action`, or S3's by method, path and query. */
export function operationOf(method: string, url: URL, formBody: URLSearchParams | undefined): { op: string; bucket?: string; key?: string } {
  if (formBody?.get('Action')) return { op: formBody.get('Action')! };
  const action = url.searchParams.get('Action');
  if (action) return { op: action };
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const q = url.searchParams;
  const where = { ...(bucket ? { bucket } : {}), ...(key ? { key } : {}) };
  const op = ((): string => {
    if (!bucket) return 'ListBuckets';
    if (!key) {
      if (method === 'GET') return q.has('uploads') ? 'ListMultipartUploads' : 'ListObjects';
      if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
      return method === 'PUT' ? 'CreateBucket' : method === 'DELETE' ? 'DeleteBucket' : method === 'HEAD' ? 'HeadBucket' : `${method}Bucket`;
    }
    if (method === 'PUT') return q.has('partNumber') ? 'UploadPart' : 'PutObject';
    if (method === 'POST') return q.has('uploads') ? 'CreateMultipartUpload' : q.has('uploadId') ? 'CompleteMultipartUpload' : 'PostObject';
    if (method === 'DELETE') return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    if (method === 'HEAD') return 'HeadObject';
    return q.has('uploadId') ? 'ListParts' : 'GetObject';
  })();
  return { op, ...where };
}

function awsErrorBody(op: string, code: string, ec2: boolean): string {
  const message = `${code} (injected by the fault proxy for ${op})`;
  return ec2
    ? `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>`
    : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
}

/** mulberry32: a small seeded generator, so a fault mix (or a reliability campaign's kill points) can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface ActiveRule {
  rule: z.output<typeof FaultRuleSchema>;
  seen: number;
  applied: number;
}

/** Serves the proxy on a loopback port; returns the port and a close function. */
export async function serveFaultProxy(upstream: string, opts: { port?: number; seed?: number } = {}): Promise<{ port: number; close(): Promise<void> }> {
  const up = new URL(upstream);
  let rules: ActiveRule[] = [];
  let random = seededRandom(opts.seed ?? 1);
  const log: ProxyLogEntry[] = [];
  let seq = 0;

  const pickFault = (op: string, bucket: string | undefined, key: string | undefined): ActiveRule | undefined => {
    for (const r of rules) {
      const { rule } = r;
      if (rule.op !== '*' && rule.op !== op) continue;
      if (rule.bucket !== undefined && rule.bucket !== bucket) continue;
      if (rule.keyPrefix !== undefined && !(key ?? '').startsWith(rule.keyPrefix)) continue;
      r.seen++;
      if (r.seen <= rule.after) continue;
      if (rule.times !== undefined && r.applied >= rule.times) continue;
      if (rule.rate < 1 && random() >= rule.rate) continue;
      r.applied++;
      return r;
    }
    return undefined;
  };

  const control = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const body = (await readAll(req)).toString('utf8');
    const reply = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    if (path === '/__proxy/rules' && req.method === 'POST') {
      const parsed = z.object({ rules: z.array(FaultRuleSchema), seed: z.number().int().optional() }).safeParse(JSON.parse(body || '{}'));
      if (!parsed.success) return reply(400, { error: parsed.error.issues });
      rules = parsed.data.rules.map((rule) => ({ rule, seen: 0, applied: 0 }));
      if (parsed.data.seed !== undefined) random = seededRandom(parsed.data.seed);
      return reply(200, { rules: rules.length });
    }
    if (path === '/__proxy/log' && req.method === 'GET') return reply(200, log);
    if (path === '/__proxy/log' && req.method === 'DELETE') {
      log.length = 0;
      return reply(200, {});
    }
    return reply(404, { error: `no control endpoint ${req.method} ${path}` });
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    if (url.pathname.startsWith('/__proxy/')) {
      control(req, res, url.pathname).catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
      return;
    }
    void forward(req, res, url);
  });

  async function forward(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    // EC2's Query API names the operation in the body: buffer those (small); stream everything else.
    const buffered = isForm ? await readAll(req) : undefined;
    const where = operationOf(method, url, buffered ? new URLSearchParams(buffered.toString('utf8')) : undefined);
    const part = url.searchParams.get('partNumber');
    const entry: ProxyLogEntry = {
      seq: ++seq,
      op: where.op,
      method,
      path: url.pathname,
      ...(where.bucket ? { bucket: where.bucket } : {}),
      ...(where.key ? { key: where.key } : {}),
      ...(part ? { partNumber: Number(part) } : {}),
      ...(req.headers.range ? { range: String(req.headers.range) } : {}),
      status: 0,
      bytesIn: buffered?.length ?? 0,
      bytesOut: 0,
    };
    log.push(entry);
    const active = pickFault(where.op, where.bucket, where.key)?.rule;
    if (active) entry.fault = active.fault;

    if (active?.fault === FaultKind.Reset) {
      req.socket.destroy();
      return;
    }
    if (active?.fault === FaultKind.Error) {
      if (!buffered) {
        req.on('data', (c: Buffer) => (entry.bytesIn += c.length));
        await new Promise((r) => req.on('end', r).on('error', r));
      }
      const body = awsErrorBody(where.op, active.code, isForm);
      entry.status = active.status;
      entry.bytesOut = Buffer.byteLength(body);
      res.writeHead(active.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (active?.fault === FaultKind.Latency) await new Promise((r) => setTimeout(r, active.latencyMs));

    const upstreamReq = httpRequest({ host: up.hostname, port: up.port, method, path: `${url.pathname}${url.search}`, headers: req.headers }, (upstreamRes) => {
      if (active?.fault === FaultKind.LostResponse) {
        upstreamRes.resume();
        upstreamRes.on('end', () => req.socket.destroy());
        return;
      }
      const total = Number(upstreamRes.headers['content-length'] ?? 0);
      entry.status = upstreamRes.statusCode ?? 0;
      const headers = { ...upstreamRes.headers };
      if (active?.fault === FaultKind.DropChecksums) for (const h of Object.keys(headers)) if (h.startsWith('x-amz-checksum-')) delete headers[h];
      res.writeHead(upstreamRes.statusCode ?? 502, headers);
      upstreamRes.on('data', (chunk: Buffer) => {
        if (active?.fault === FaultKind.ResetMidResponse && entry.bytesOut + chunk.length > total / 2) {
          const head = chunk.subarray(0, Math.max(0, Math.floor(total / 2) - entry.bytesOut));
          entry.bytesOut += head.length;
          entry.status = 0;
          res.write(head, () => req.socket.destroy());
          upstreamRes.destroy();
          return;
        }
        entry.bytesOut += chunk.length;
        res.write(chunk);
      });
      upstreamRes.on('end', () => res.end());
    });
    upstreamReq.on('error', () => req.socket.destroy());
    if (buffered) upstreamReq.end(buffered);
    else {
      req.on('data', (c: Buffer) => (entry.bytesIn += c.length));
      req.pipe(upstreamReq);
    }
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A fault proxy running as its own process, with its control API wrapped. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`: give it to clients as their AWS endpoint. */
  endpoint: string;
  setRules(rules: FaultRule[], seed?: number): Promise<void>;
  log(): Promise<ProxyLogEntry[]>;
  clearLog(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the proxy as a child process in front of `upstream` and waits until it listens. */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--upstream', upstream], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`fault proxy did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /fault-proxy listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fault proxy exited with ${code}: ${out}`));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${endpoint}${path}`, { method, ...(body ? { body: JSON.stringify(body) } : {}) });
    if (!res.ok) throw new Error(`fault proxy ${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<unknown>;
  };
  return {
    endpoint,
    setRules: async (rules, seed) => void (await call('POST', '/__proxy/rules', { rules, ...(seed !== undefined ? { seed } : {}) })),
    log: async () => (await call('GET', '/__proxy/log')) as ProxyLogEntry[],
    clearLog: async () => void (await call('DELETE', '/__proxy/log')),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--upstream');
  const upstream = i > 0 ? process.argv[i + 1] : undefined;
  if (!upstream) {
    process.stderr.write('usage: fault-proxy.ts --upstream http://HOST:PORT\n');
    process.exit(2);
  }
  const parent = process.ppid;
  const { port } = await serveFaultProxy(upstream);
  process.stdout.write(`fault-proxy listening ${port}\n`);
  // Never outlive the process that started it (a killed test runner leaves nothing behind).
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1_000).unref();
  // Keep the event loop alive while the server listens.
  process.on('SIGTERM', () => process.exit(0));
}
