import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DATA_STRATEGIES } from '../src/contracts/prewarm.js';
import { loaderScript, pyStr, type LoaderScriptOptions } from '../src/loader-script.js';

const run = promisify(execFile);
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trainctl-loader-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

// Quotes, backslashes, line breaks, triple quotes, a NUL, Unicode line separators and an astral character.
const NASTY = `/data/it's "x"\\n\n'''"""\r\u2028\0\u00e9\u{1F600}/end\\`;

function variants(): { name: string; opts: LoaderScriptOptions }[] {
  const out: { name: string; opts: LoaderScriptOptions }[] = [];
  for (const strategy of DATA_STRATEGIES) {
    for (const vCpus of [undefined, 1, 4, 192]) {
      for (const nasty of [false, true]) {
        const where =
          strategy === 'DirectS3'
            ? {
                s3: {
                  bucket: 'my-bucket',
                  prefix: nasty ? NASTY : 'imagenet/train/',
                  region: 'us-east-1',
                  ...(nasty ? { endpoint: `http://lab.example:9000/${NASTY}`, addressingStyle: 'path' as const } : {}),
                },
              }
            : { path: nasty ? NASTY : '/mnt/data/imagenet' };
        out.push({
          name: `${strategy}-${vCpus ?? 'runtime'}-${nasty ? 'nasty' : 'plain'}`,
          opts: {
            strategy,
            ...where,
            ...(vCpus !== undefined ? { vCpus } : {}),
            batchSize: 64,
            provenance: nasty ? `made with ${NASTY}` : 'trainctl data loader',
          },
        });
      }
    }
  }
  return out;
}

describe('generated DataLoader scripts', () => {
  test('every strategy × vCPU × path variant compiles with python3 -m py_compile (torch not needed)', async () => {
    const all = variants();
    assert.equal(all.length, 32);
    const files = all.map((v) => {
      const file = join(dir, `${v.name.replace(/[^A-Za-z0-9-]/g, '_')}.py`);
      writeFileSync(file, loaderScript(v.opts));
      return file;
    });
    // One interpreter for all: py_compile exits non-zero naming the first file that fails.
    await run('python3', ['-m', 'py_compile', ...files]);
  });

  test('a user-given path becomes one Python string literal that evaluates back to exactly that path', async () => {
    for (const s of [NASTY, '', 'plain', "'", '\\', '\u007f\u0080\uffff', '\ud800']) {
      const { stdout } = await run('python3', ['-c', `import sys; sys.stdout.write(${pyStr(s)}.encode('utf-8', 'surrogatepass').hex())`]);
      assert.equal(stdout, Buffer.from(s === '\ud800' ? [0xed, 0xa0, 0x80] : Buffer.from(s, 'utf8')).toString('hex'), JSON.stringify(s));
    }
    const literal = pyStr(NASTY);
    assert.match(literal, /^'[\x20-\x7e]*'$/, 'only printable ASCII inside the literal');
  });

  test('the local variants read a folder with a map-style dataset and the S3 variant streams with an iterable one', () => {
    const local = loaderScript({ strategy: 'LocalCache', path: '/cache/b/p', vCpus: 8 });
    assert.match(local, /^DATA_ROOT = '\/cache\/b\/p'$/m);
    assert.match(local, /class LocalFiles\(Dataset\)/);
    assert.match(local, /^NUM_WORKERS = int\(os.environ.get\('TRAINCTL_NUM_WORKERS', '0'\)\) or 7 {2}# from 8 vCPUs/m);
    assert.match(local, /^PREFETCH_FACTOR = 2$/m);
    assert.match(local, /persistent_workers=PERSISTENT_WORKERS/);
    assert.match(local, /pin_memory=PIN_MEMORY/);
    const s3 = loaderScript({ strategy: 'DirectS3', s3: { bucket: 'b', prefix: 'p/', region: 'eu-west-1' }, vCpus: 64 });
    assert.match(s3, /class S3Stream\(IterableDataset\)/);
    assert.match(s3, /^S3_REGION = 'eu-west-1'$/m);
    assert.match(s3, /^NUM_WORKERS = .* or 16 {2}# from 64 vCPUs/m);
    assert.match(s3, /^PREFETCH_FACTOR = 4$/m);
    assert.doesNotMatch(s3, /DATA_ROOT/);
    assert.match(s3, /^S3_ENDPOINT_URL = None$/m, 'AWS (or AWS_ENDPOINT_URL at run time) without a profile');
    // A location on another store (its profile's endpoint and addressing style); credentials stay in the environment.
    const lab = loaderScript({
      strategy: 'DirectS3',
      s3: { bucket: 'b', prefix: 'p/', region: 'us-east-1', endpoint: 'http://10.0.0.5:7070', addressingStyle: 'path' },
    });
    assert.match(lab, /^S3_ENDPOINT_URL = 'http:\/\/10\.0\.0\.5:7070'$/m);
    assert.match(lab, /^S3_ADDRESSING_STYLE = 'path'$/m);
    assert.match(lab, /endpoint_url=S3_ENDPOINT_URL or os\.environ\.get\('AWS_ENDPOINT_URL'\)/);
    assert.doesNotMatch(lab, /aws_secret_access_key|aws_access_key_id/i);
  });

  test('a strategy without its location is refused instead of generating a broken script', () => {
    assert.throws(() => loaderScript({ strategy: 'DirectS3' }), /needs the dataset's S3 location/);
    assert.throws(() => loaderScript({ strategy: 'PreWarmedEBS' }), /needs the dataset's local path/);
    assert.throws(() => loaderScript({ strategy: 'ExistingEBS', path: '/x', vCpus: 0 }), /vCpus/);
  });
});
