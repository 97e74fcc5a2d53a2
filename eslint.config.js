// @ts-check
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', 'scripts/*.mjs', 'bin/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    // The CLI, worker bootstrap, dev tooling, scripts, benchmarks and tests talk to a terminal.
    files: ['src/cli/**', 'src/worker.ts', 'src/dev/**', 'test/**', 'bench/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, no SDKs with side effects.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code must be deterministic: no Node built-ins.' })),
          patterns: [
            { group: ['@aws-sdk/*'], message: 'Workflow code must not call AWS; use an activity.' },
            { group: ['@temporalio/activity', '@temporalio/worker', '@temporalio/client'], message: 'Wrong context for workflow code.' },
            {
              group: ['**/activities', '**/activities/*', '**/activities/**'],
              allowTypeImports: true,
              message: 'Import activities only as types (import type) and call them through proxyActivities.',
            },
            { group: ['**/dev/*', '**/aws/*', '**/errors/classify*', '**/errors/aws-codes*'], message: 'Workflow code must not reach dev tooling or AWS clients.' },
          ],
        },
      ],
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
