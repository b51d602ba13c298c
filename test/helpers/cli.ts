/** Runs the real `phasewise` CLI as a child process, bounded: a hung run is killed after 30 s; and `serve` in the background. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
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

export interface Served {
  child: ChildProcess;
  /** `https://127.0.0.1:PORT`, as serve printed it. */
  url: string;
}

/**
 * Starts `phasewise serve ARGS` (from the repository's root) and resolves once it printed the block that
 * says where it serves (rejects after `timeoutMs`, with what it said); `env` is added to the environment.
 */
export function startServe(args: string[], timeoutMs = 60_000, env: NodeJS.ProcessEnv = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), timeoutMs);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /serving the ARM API at (\S+)\n[\s\S]*\n {2}(try|health): [^\n]*\n/.exec(err);
      if (!m) return;
      clearTimeout(t);
      resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`serve exited with ${code}: ${err}`));
    });
  });
}

/** Stops a served process (no-op when it has ended) and waits for its end. */
export async function stopServe(s: Served, signal: NodeJS.Signals): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  s.child.kill(signal);
  await new Promise((r) => s.child.once('close', r));
}

/** The event log of a `serve --data-dir DATA` (its token and generated certificate), one page of 1000 after `after`. */
export function servedEvents<E = { seq: number; type: string }>(url: string, data: string, after = 0): Promise<E[]> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/phasewise/events?after=${after}&limit=1000`, {
      ca: readFileSync(join(data, 'tls', 'cert.pem')),
      headers: { authorization: `Bearer ${readFileSync(join(data, 'token'), 'utf8').trim()}` },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /phasewise/events answered ${res.statusCode}: ${body.slice(0, 500)}`));
        resolve((JSON.parse(body) as { value: E[] }).value);
      });
    });
    req.on('error', reject);
    req.end();
  });
}
