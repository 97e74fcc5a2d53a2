// @ts-check
import tseslint from 'typescript-eslint';
import { importX, createNodeResolver } from 'eslint-plugin-import-x';
import { builtinModules } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/**
 * Every module the workflow bundle contains: walked from src/workflows/index.ts through relative
 * value imports (type-only imports are erased and never reach the sandbox). The sandbox rules
 * below cover all of them, not only the files under src/workflows/.
 */
function workflowBundleFiles() {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file) || !existsSync(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    const specifiers = /^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?\bfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm;
    for (const m of text.matchAll(specifiers)) visit(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  };
  visit(join(root, 'src', 'workflows', 'index.ts'));
  return [...seen].map((f) => relative(root, f));
}

const layer = (group, message, extra = {}) => ({ group, message, ...extra });
const NO_CLI = [layer(['**/cli', '**/cli/**'], 'Nothing imports the CLI.')];
const NO_API = [layer(['**/api', '**/api/**', '**/client.js'], 'Only scripts and the CLI import the client API.')];
const NO_WORKFLOWS = [layer(['**/workflows', '**/workflows/**'], 'Share definitions through src/contracts/, never by importing workflows.')];
const NO_ACTIVITIES = [layer(['**/activities', '**/activities/**'], 'Only the worker wires activities.')];

/** What each layer may not import (no-restricted-imports patterns); the first matching layer applies. */
const LAYERS = [
  {
    name: 'contracts',
    files: ['src/contracts/**/*.ts'],
    patterns: [
      { regex: '^(?!zod$|zod/|@temporalio/workflow$|\\./)', message: 'Contracts import only zod, @temporalio/workflow (define*) and other contracts.' },
    ],
  },
  { name: 'workflows', files: ['src/workflows/**/*.ts'], patterns: [...NO_CLI, ...NO_API] },
  {
    name: 'activities',
    files: ['src/activities/**/*.ts'],
    // Activities that report to the cost tracker use the API's signal helpers (which import no workflow), nothing else of it.
    patterns: [
      ...NO_CLI,
      { regex: '(^|/)(client\\.js|api(/(?!cost-signals\\.js$).*)?)$', message: "Activities use only the API's cost signals." },
      ...NO_WORKFLOWS,
    ],
  },
  { name: 'api', files: ['src/api/**/*.ts', 'src/client.ts'], patterns: [...NO_CLI, ...NO_ACTIVITIES] },
  {
    name: 'domain',
    files: [
      'src/transfer/**/*.ts',
      'src/cost/**/*.ts',
      'src/cleanup/**/*.ts',
      'src/prewarm/**/*.ts',
      'src/run/**/*.ts',
      'src/aws/**/*.ts',
      'src/errors/**/*.ts',
      'src/*.ts',
    ],
    ignores: ['src/worker.ts', 'src/client.ts', 'src/temporal.ts'],
    patterns: [...NO_CLI, ...NO_API, ...NO_WORKFLOWS, ...NO_ACTIVITIES],
  },
];

/** The deterministic sandbox: what no module of the workflow bundle may import. */
const SANDBOX = [
  { group: ['@aws-sdk/*'], message: 'Workflow code must not call AWS; use an activity.' },
  { group: ['@temporalio/activity', '@temporalio/worker', '@temporalio/client'], message: 'Wrong context for workflow code.' },
  layer(['**/activities', '**/activities/*', '**/activities/**'], 'Import activities only as types (import type) and call them through proxyActivities.', {
    allowTypeImports: true,
  }),
  layer(
    ['**/dev/*', '**/aws/*', '**/errors/classify*', '**/errors/aws-codes*'],
    'Workflow code must not reach dev tooling, AWS clients or the AWS error tables.',
  ),
];
const SANDBOX_PATHS = nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins.' }));

function layerOf(file) {
  const match = (glob) =>
    new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '(?:.*/)?')
        .replace(/\*\*/g, '.*')
        .replace(/\*/g, '[^/]*')}$`,
    ).test(file);
  return LAYERS.find((l) => l.files.some(match) && !(l.ignores ?? []).some(match));
}

const bundleFiles = workflowBundleFiles();

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', 'scripts/*.mjs', 'bin/**', 'examples/**/*.py'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensionAlias: { '.js': ['.ts', '.js'] } })],
      // Without these, import-x cannot parse a .ts dependency and so never sees a cycle through it.
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    // No import cycles anywhere in the product (type-only edges included: they still tangle the reading order).
    files: ['src/**/*.ts'],
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    // The CLI, worker bootstrap, dev tooling, scripts, benchmarks, examples and tests talk to a terminal.
    files: ['src/cli/**', 'src/worker.ts', 'src/dev/**', 'test/**', 'bench/**', 'scripts/**', 'examples/**'],
    rules: { 'no-console': 'off' },
  },
  ...LAYERS.map((l) => ({
    files: l.files,
    ...(l.ignores ? { ignores: l.ignores } : {}),
    rules: { 'no-restricted-imports': ['error', { patterns: l.patterns }] },
  })),
  // Each module of the workflow bundle keeps its layer's rules and adds the sandbox's.
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: SANDBOX_PATHS, patterns: [...(LAYERS.find((l) => l.name === 'workflows')?.patterns ?? []), ...SANDBOX] }],
    },
  },
  ...bundleFiles.map((file) => ({
    files: [file],
    rules: { 'no-restricted-imports': ['error', { paths: SANDBOX_PATHS, patterns: [...(layerOf(file)?.patterns ?? []), ...SANDBOX] }] },
  })),
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, no SDKs with side effects —
    // in every module the workflow bundle contains.
    files: ['src/workflows/**/*.ts', ...bundleFiles],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop, or better an activity.' },
        { name: 'process', message: 'No process state in workflow code.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Non-deterministic; use uuid4() from @temporalio/workflow.' },
        { object: 'Date', property: 'now', message: 'Deterministic in the sandbox but misleading; use workflow time explicitly.' },
      ],
    },
  },
);
