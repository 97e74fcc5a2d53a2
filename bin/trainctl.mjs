#!/usr/bin/env node
// `trainctl ...`. Installed from the package, it runs the compiled CLI (dist/cli/main.js) on this
// Node. In a checkout it runs the TypeScript CLI through tsx; there, on a Node older than 22,
// scripts/bootstrap.mjs runs it on Node 24 from .tools (installed on first use, with a message).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIN_NODE_MAJOR = 22;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const source = join(root, 'src', 'cli', 'main.ts');
const compiled = join(root, 'dist', 'cli', 'main.js');
const oldNode = Number(process.versions.node.split('.')[0]) < MIN_NODE_MAJOR;

let argv;
if (existsSync(source)) {
  argv = oldNode ? [join(root, 'scripts', 'bootstrap.mjs'), 'cli', ...args] : ['--import', 'tsx', source, ...args];
} else if (existsSync(compiled)) {
  if (oldNode)
    process.stderr.write(
      `trainctl: Node ${process.version} is older than the Node ${MIN_NODE_MAJOR} trainctl needs (Node 24 LTS recommended); some features (zstd transfers) are unavailable\n`,
    );
  argv = [compiled, ...args];
} else {
  process.stderr.write(`trainctl: neither ${source} nor ${compiled} exists; in a checkout run \`npm run build\` or reinstall the package\n`);
  process.exit(1);
}
const child = spawn(process.execPath, argv, { stdio: 'inherit' });
for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
// Ctrl-C reaches the child from the terminal itself; this process only waits for it.
process.on('SIGINT', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
