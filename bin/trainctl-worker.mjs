#!/usr/bin/env node
// `trainctl-worker [--host ID --root DIR ...] [--no-register-search-attributes]`: a trainctl worker.
// Installed from the package, it runs the compiled worker (dist/worker.js) on this Node; in a
// checkout it is `npm run worker` (scripts/bootstrap.mjs: Node 24 where the machine's is older).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN_NODE_MAJOR = 22;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const compiled = join(root, 'dist', 'worker.js');

let argv;
if (existsSync(join(root, 'src', 'worker.ts'))) {
  argv = [join(root, 'scripts', 'bootstrap.mjs'), 'worker', ...args];
} else if (existsSync(compiled)) {
  if (Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR) {
    process.stderr.write(`trainctl-worker: Node ${process.version} is older than the Node ${MIN_NODE_MAJOR} trainctl needs (Node 24 LTS recommended)\n`);
  }
  argv = [compiled, ...args];
} else {
  process.stderr.write(`trainctl-worker: ${compiled} is missing; in a checkout run \`npm run build\` or reinstall the package\n`);
  process.exit(1);
}
const child = spawn(process.execPath, argv, { stdio: 'inherit' });
// Ctrl-C reaches the worker from the terminal itself; forward the rest so it can finish its tasks.
for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
process.on('SIGINT', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
