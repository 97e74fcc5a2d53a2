import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as run from '../src/api/run.js';
import { RunOutcome, TrainingRunWorkflowType, runWorkflowId, type RunReport } from '../src/contracts/run.js';
import { toolPath, toolsDir } from '../src/dev/services.js';
import { onCleanup } from './helpers/harness.js';
import { runName, runSuite, type RunSuite } from './helpers/run.js';
import { waitUntil } from './helpers/run-evidence.js';

const CHROMIUM = process.env.TRAINCTL_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT_DIR = join(toolsDir, 'test-output', 'run-ui');

let suite: RunSuite;
let name: string;
let report: RunReport;
/** `ID TYPE` of the run and of every child workflow its history says it started. */
let expected: string[];

before(
  async () => {
    suite = await runSuite('runui');
    name = runName('ui');
    report = await run.execute(suite.client, suite.request(name), { taskQueue: suite.worker.taskQueue });
    const history = await suite.client.workflow.getHandle(runWorkflowId(name)).fetchHistory();
    const children = (history.events ?? []).flatMap((e) => {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      return a ? [`${a.workflowId} ${a.workflowType?.name}`] : [];
    });
    expected = [`${runWorkflowId(name)} ${TrainingRunWorkflowType}`, ...children].sort();
  },
  { timeout: 300_000 },
);

interface Listed {
  id: string;
  type: string;
}

/** `temporal workflow list -o json --query …` with the real Temporal CLI. */
function temporalList(query: string): Promise<Listed[]> {
  return new Promise((resolve, reject) => {
    const args = ['workflow', 'list', '--address', suite.services.env.TEMPORAL_ADDRESS, '--namespace', 'default', '--query', query, '-o', 'json'];
    const child = spawn(toolPath('temporal'), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`temporal ${args.join(' ')} exited ${code}:\n${err}`));
      try {
        // One JSON array (or, in other CLI versions, one object per line).
        const text = out.trim();
        const items = (
          text.startsWith('[')
            ? JSON.parse(text)
            : text
                .split('\n')
                .filter(Boolean)
                .map((l) => JSON.parse(l))
        ) as {
          execution?: { workflowId?: string };
          type?: { name?: string };
        }[];
        resolve(items.map((i) => ({ id: i.execution?.workflowId ?? '?', type: i.type?.name ?? '?' })));
      } catch (e) {
        reject(new Error(`could not read the CLI's JSON (${String(e)}):\n${out}`));
      }
    });
  });
}

test(
  'temporal workflow list --query TrainctlRun="NAME" (the real CLI) lists the run and every child workflow it started, and nothing else',
  { timeout: 300_000 },
  async () => {
    assert.equal(report.outcome, RunOutcome.Completed);
    // Every step that is a child workflow is among the children: the host check, the volume, the data and code, the checkpoints, the outputs.
    const types = new Map(expected.map((e) => [e.split(' ')[0]!, e.split(' ')[1]!]));
    assert.equal(types.get(`run/${name}/host-check`), 'checkHost');
    assert.ok([...types.values()].includes('provisionVolume'), `a provisionVolume child: ${expected.join(', ')}`);
    for (const what of ['stage-data', 'stage-code', 'checkpoint-final', 'outputs']) assert.equal(types.get(`run/${name}/${what}`), 'transfer', what);

    const query = `TrainctlRun="${name}"`;
    let listed: string[] = [];
    let waited = '';
    // Visibility is eventually consistent: wait until the list has caught up with the history.
    await waitUntil(
      async () => {
        listed = (await temporalList(query)).map((w) => `${w.id} ${w.type}`).sort();
        return listed.length === expected.length ? true : undefined;
      },
      30_000,
      `the list for ${query} to hold ${expected.length} workflows`,
    ).catch((err: unknown) => void (waited = err instanceof Error ? ` (${err.message})` : ''));
    assert.deepEqual(listed, expected, `temporal workflow list --query '${query}' lists the run and all its children${waited}`);
  },
);

/** Debian's chromium (scripts/ensure-chromium.sh installs it); a missing browser fails the test, never skips it. */
async function launchChromium(): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `chromium is missing at ${CHROMIUM}: the browser test needs Debian's chromium; install it with scripts/ensure-chromium.sh (as root; .ci/run does this) or apt-get install chromium`,
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  onCleanup(() => browser.close());
  return browser;
}

/** The text of the page and of its frames: the UI renders markdown summaries in sandboxed iframes. */
async function pageText(page: Page): Promise<string> {
  const texts = await Promise.all(
    page.frames().map((f) =>
      f
        .locator('body')
        .innerText({ timeout: 2_000 })
        .catch(() => ''),
    ),
  );
  return texts.join('\n');
}

/** Waits until the page shows every string in `texts`; fails with what it does show. */
async function waitForTexts(page: Page, texts: string[], what: string): Promise<void> {
  let shown = '';
  try {
    await waitUntil(
      async () => {
        shown = (await pageText(page)).toLowerCase();
        return texts.every((t) => shown.includes(t.toLowerCase())) ? true : undefined;
      },
      45_000,
      what,
      500,
    );
  } catch {
    const missing = texts.filter((t) => !shown.includes(t.toLowerCase()));
    assert.fail(`${what}: the page (${page.url()}) does not show ${missing.join(', ')}; it shows:\n${shown.slice(0, 4000)}`);
  }
}

test(
  "the Web UI finds the run by TrainctlRun, and its page shows the run's summary and its child workflows (screenshot saved)",
  { timeout: 180_000 },
  async () => {
    const ui = suite.services.uiUrl;
    assert.ok(ui, 'the dev server has a Web UI (npm test starts it with one, and so does the harness on its own)');
    const browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const childIds = expected.map((e) => e.split(' ')[0]!).filter((id) => id !== runWorkflowId(name));

    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`TrainctlRun="${name}"`)}`);
    await waitForTexts(page, [runWorkflowId(name), ...childIds], `the workflow list filtered by TrainctlRun="${name}"`);
    await page.screenshot({ path: join(OUTPUT_DIR, 'list.png'), fullPage: true });

    await page
      .getByRole('link', { name: runWorkflowId(name), exact: true })
      .first()
      .click();
    await waitForTexts(page, [runWorkflowId(name), 'Completed', TrainingRunWorkflowType], "the run's page");
    // The static summary the API set at start, in the run's user metadata.
    await page.getByText('User Metadata', { exact: true }).click();
    // The details show the command as given: `--steps`, not a typographic dash a copy would carry along.
    const command = suite.request(name).training.command.join(' ');
    await waitForTexts(page, [`Training run ${name} on a on-demand g5.xlarge in us-east-1a`, command], "the run's static summary and details");
    await page.screenshot({ path: join(OUTPUT_DIR, 'run.png'), fullPage: true });
    assert.ok(statSync(join(OUTPUT_DIR, 'run.png')).size > 10_000, 'a screenshot of the run was saved');
    // The run's relationships: its children, by workflow id.
    await page
      .getByRole('tab', { name: /^Relationships/ })
      .or(page.getByRole('link', { name: /^Relationships/ }))
      .first()
      .click();
    await waitForTexts(page, childIds, "the run's child workflows");
    await page.screenshot({ path: join(OUTPUT_DIR, 'children.png'), fullPage: true });
  },
);
