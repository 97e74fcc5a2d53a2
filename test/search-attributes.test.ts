import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { startTemporalDevServer, toolPath, type TemporalDevServer } from '../src/dev/services.js';
import { ALL_SEARCH_ATTRIBUTES, CLI_TYPE_NAMES, SA } from '../src/search-attributes.js';
import { ErrorKind, TrainctlError } from '../src/errors/kinds.js';
import {
  createSearchAttributesCommand,
  ensureSearchAttributes,
  explainStartFailure,
  explainStartFailureOffline,
  missingSearchAttributes,
} from '../src/temporal.js';
import { registersSearchAttributes } from '../src/worker.js';
import { runCli } from './helpers/cli.js';

const ALL_NAMES = ALL_SEARCH_ATTRIBUTES.map((key) => key.name);
let server: TemporalDevServer | undefined;
let connection: Connection;
let client: Client;

// A plain server, as a user's own `temporal server start-dev` is: no trainctl search attributes.
before(async () => {
  server = await startTemporalDevServer({ headless: true, searchAttributes: false });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: 'default' });
});

after(async () => {
  await connection?.close();
  await server?.stop();
});

/** Starts a workflow (no worker needed: a start only records it) that sets trainctl's search attributes. */
function startWithSearchAttributes() {
  return client.workflow.start('provisionVolume', {
    taskQueue: `plain-${randomUUID()}`,
    workflowId: `search-attributes-test/${randomUUID()}`,
    typedSearchAttributes: [
      { key: SA.kind, value: 'volume' },
      { key: SA.costUsd, value: 0 },
    ],
  });
}

async function startFailure(): Promise<unknown> {
  try {
    await startWithSearchAttributes();
  } catch (err) {
    return err;
  }
  assert.fail('the start succeeded although the server lacks the search attributes');
}

let printedCommand = '';

test('trainctl volume create against a plain dev server fails naming the missing attribute and the command, not "Failed to start Workflow"', async () => {
  const env = {
    TEMPORAL_ADDRESS: server!.address,
    TRAINCTL_TASK_QUEUE: `plain-${randomUUID()}`,
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_REGION: 'us-east-1',
  };
  const r = await runCli(['volume', 'create', '--name', `plain-${randomUUID().slice(0, 8)}`, '--size-gib', '1', '--az', 'us-east-1a'], env);
  assert.equal(r.code, 1, r.stderr);
  // The server names the first attribute it met; the command creates every one trainctl uses.
  assert.match(r.stderr, /\(InvalidInput\): namespace default.* is missing the search attributes? (Trainctl\w+, )*Trainctl\w+;/);
  const command = /temporal operator search-attribute create (--address \S+ )?--namespace default( --name \w+ --type \w+)+/.exec(r.stderr)?.[0] ?? '';
  for (const key of ALL_SEARCH_ATTRIBUTES) assert.ok(command.includes(`--name ${key.name} --type ${CLI_TYPE_NAMES[key.type]}`), `${key.name} in: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /Failed to start Workflow/);
});

test('on a plain dev server a start fails with InvalidInput naming every missing attribute and the command that creates them', async () => {
  const raw = await startFailure();
  const explained = await explainStartFailure(raw, client);
  assert.ok(explained instanceof TrainctlError, `explained: ${String(explained)}`);
  assert.equal(explained.kind, ErrorKind.InvalidInput);
  assert.match(explained.message, new RegExp(`missing the search attributes ${ALL_NAMES.join(', ')}`));
  const address = server!.address;
  const expected =
    `temporal operator search-attribute create --address ${address} --namespace default --name TrainctlKind --type Keyword` +
    ' --name TrainctlResource --type Keyword --name TrainctlProject --type Keyword --name TrainctlCostUsd --type Double --name TrainctlBudgetExceeded --type Bool' +
    ' --name TrainctlRun --type Keyword';
  assert.ok(explained.message.endsWith(expected), explained.message);
  assert.equal(explained.cause, raw, 'the server error stays the cause');
  printedCommand = expected;

  // The CLI's offline fallback (reportError without the API's explanation) names what the server named.
  const offline = explainStartFailureOffline(raw);
  assert.ok(offline instanceof TrainctlError);
  assert.equal(offline.kind, ErrorKind.InvalidInput);
  const named = /is missing the search attribute (Trainctl\w+);/.exec(offline.message)?.[1];
  assert.ok(named && ALL_NAMES.includes(named), offline.message);
  assert.ok(
    offline.message.endsWith(
      `temporal operator search-attribute create --namespace default ${ALL_SEARCH_ATTRIBUTES.map((k) => `--name ${k.name} --type ${CLI_TYPE_NAMES[k.type]}`).join(' ')}`,
    ),
    offline.message,
  );
  assert.equal(explainStartFailureOffline(explained), explained, 'an explained error is left as it is');
  const other = new Error('something else');
  assert.equal(await explainStartFailure(other, client), other, 'other errors pass through unchanged');
});

test('running the printed command creates the attributes, and the same start then succeeds', async () => {
  assert.ok(printedCommand, 'the previous test printed a command');
  const temporal = toolPath('temporal');
  const r = spawnSync(temporal, printedCommand.split(' ').slice(1), { encoding: 'utf8' });
  assert.equal(r.status, 0, `${printedCommand}\n${r.stdout}${r.stderr}`);
  assert.deepEqual(await missingSearchAttributes(connection, 'default'), []);
  const handle = await startWithSearchAttributes();
  await handle.terminate('test done');
});

test('the worker start-up step registers the missing attributes, after which a start succeeds; a second run adds nothing', async () => {
  await connection.operatorService.removeSearchAttributes({ namespace: 'default', searchAttributes: ALL_NAMES });
  assert.equal((await missingSearchAttributes(connection, 'default')).length, ALL_NAMES.length);
  const messages: string[] = [];
  const log = { info: (m: string) => messages.push(`info: ${m}`), warn: (m: string) => messages.push(`warn: ${m}`) };
  await ensureSearchAttributes(connection, { address: server!.address, namespace: 'default', enabled: true, ...log });
  assert.deepEqual(messages, [`info: registered trainctl's search attributes ${ALL_NAMES.join(', ')} in namespace default`]);
  const handle = await startWithSearchAttributes();
  await handle.terminate('test done');
  await ensureSearchAttributes(connection, { address: server!.address, namespace: 'default', enabled: true, ...log });
  assert.equal(messages.length, 1, 'nothing to add the second time');
});

test('registration is skipped when turned off or on Temporal Cloud, and a refusal is a warning with the command', async () => {
  const calls: string[] = [];
  const refusing = {
    operatorService: {
      listSearchAttributes: async () => {
        calls.push('list');
        throw Object.assign(new Error('7 PERMISSION_DENIED: Request unauthorized.'), { code: 7 });
      },
    },
  } as unknown as Connection;
  const messages: string[] = [];
  const log = { info: (m: string) => messages.push(`info: ${m}`), warn: (m: string) => messages.push(`warn: ${m}`) };
  await ensureSearchAttributes(refusing, { address: 'localhost:7233', namespace: 'default', enabled: false, ...log });
  await ensureSearchAttributes(refusing, { address: 'prod.a1b2c.tmprl.cloud:7233', namespace: 'prod.a1b2c', enabled: true, ...log });
  assert.deepEqual(calls, [], 'no operator call when off or on Temporal Cloud');
  await ensureSearchAttributes(refusing, { address: 'temporal.internal:7233', namespace: 'ml', enabled: true, ...log });
  assert.equal(messages.length, 1);
  assert.match(messages[0]!, /^warn: could not register trainctl's search attributes \(the server refused\)/);
  assert.ok(
    messages[0]!.includes('temporal operator search-attribute create --address temporal.internal:7233 --namespace ml --name TrainctlKind'),
    messages[0],
  );

  assert.equal(registersSearchAttributes(undefined, {}), true);
  assert.equal(registersSearchAttributes(true, {}), false, '--no-register-search-attributes');
  assert.equal(registersSearchAttributes(undefined, { TRAINCTL_REGISTER_SEARCH_ATTRIBUTES: 'false' }), false);
  assert.equal(registersSearchAttributes(undefined, { TRAINCTL_REGISTER_SEARCH_ATTRIBUTES: 'true' }), true);
  assert.match(
    createSearchAttributesCommand(['TrainctlKind', 'TrainctlCostUsd'], { namespace: 'prod.a1b2c', address: 'prod.a1b2c.tmprl.cloud:7233' }),
    /^tcld namespace search-attributes add --namespace prod\.a1b2c --search-attribute TrainctlKind=Keyword --search-attribute TrainctlCostUsd=Double$/,
  );
});
