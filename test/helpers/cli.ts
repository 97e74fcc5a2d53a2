import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../src/dev/services.js';
import type { Env } from '../../src/config.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `trainctl ARGS` as its own process, the way a user would, against the given environment. */
export function runCli(args: string[], env: Partial<Record<keyof Env | string, string>>, timeoutMs = 120_000): Promise<CliResult> {
  return runProcess(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'main.ts'), ...args], env, timeoutMs);
}

/** Runs a command in the repository with only PATH, HOME and `env`, and collects its output. */
export function runProcess(command: string, args: string[], env: Record<string, string | undefined>, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} timed out; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

/** The environment a CLI process needs to reach this suite's servers and a test worker's queue. */
export function cliEnv(env: Env, taskQueue: string): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: env.TEMPORAL_NAMESPACE,
    TRAINCTL_TASK_QUEUE: taskQueue,
    AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL ?? '',
    AWS_REGION: env.AWS_REGION,
    TRAINCTL_AWS: 'emulator',
  };
}
