/** Runs the real `phasewise` CLI as a child process, bounded: a hung run is killed after 30 s. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous, so cases can run side by side; PHASEWISE_DEBUG is cleared so messages are the user's. */
export function cli(...args: string[]): Promise<CliResult> {
  return cliWithin(30_000, ...args);
}

/** The same, killed after `timeoutMs` (key generation is slow when the machine is loaded). */
export function cliWithin(timeoutMs: number, ...args: string[]): Promise<CliResult> {
  return cliWithEnv({}, timeoutMs, ...args);
}

/** The same with variables added to the environment (a config folder of the test's own, say). */
export function cliWithEnv(extra: NodeJS.ProcessEnv, timeoutMs: number, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...extra };
    delete env.PHASEWISE_DEBUG;
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}
