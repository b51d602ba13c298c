/**
 * The README's first hour, run as written: a server started as `npm start` starts it (the demo fleet,
 * 3600x), then the shell block of "What `npm start` does" with 5 s between commands, then the SDK
 * snippet. Each step must say something meaningful: the demo's own release and its rollout, a rolling
 * upgrade or a 404 ARM error before one reached the set, the instance's extension with its version, a
 * publish that leaves the demo's rollout running. The only change made to the commands is the port
 * (the test picks a free one instead of 8443).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLI, ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-readme-'));
let server: ChildProcess | null = null;
after(() => {
  server?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The fenced block of `lang` that follows `marker` in README.md. */
export function blockAfter(readme: string, marker: string, lang: string): string {
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `README.md has "${marker}"`);
  const open = readme.indexOf('```' + lang + '\n', at);
  return readme.slice(open + lang.length + 4, readme.indexOf('\n```', open));
}

/** Shell commands of a block: comments dropped, continuation lines joined. */
export function commands(block: string): string[] {
  return block.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; killAfterMs: number }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.killAfterMs);
    child.on('error', reject);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
  });
}

test('the README\'s curl block and SDK snippet, run as written 5 s apart against npm start\'s server, tell the demo\'s story', { timeout: 150_000 }, async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const shell = commands(blockAfter(readme, 'Watch a rollout step by step', 'sh'));
  const sdk = blockAfter(readme, 'The same with the Azure SDK', 'js');
  const start = /"start": "npm run build && node dist\/src\/cli\/main\.js (serve [^"]+)"/.exec(readFileSync(join(ROOT, 'package.json'), 'utf8'))?.[1];
  assert.ok(start, 'npm start runs serve');
  assert.ok(shell.some((c) => c.includes('127.0.0.1:8443')));

  // npm start's server, in a folder of its own: its --data-dir (data/demo) relative to where the commands run.
  const port = await freePort();
  const data = join(dir, 'data', 'demo');
  mkdirSync(join(dir, 'data'), { recursive: true });
  const args = start.split(' ').map((a) => (a === 'data/demo' ? data : a));
  server = spawn(process.execPath, [CLI, ...args, '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${said}`)), 30_000);
    server!.stderr!.setEncoding('utf8').on('data', (d: string) => {
      said += d;
      if (said.includes('serving the ARM API')) { clearTimeout(timer); resolve(); }
    });
    server!.on('exit', (code) => reject(new Error(`serve exited (${code}): ${said}`)));
  });

  // The block as written, 5 s between commands, each one's output after a marker.
  const script = shell.map((c, i) => `${i > 0 ? 'sleep 5; ' : ''}echo "@@step ${i}"; ${c.replaceAll('127.0.0.1:8443', `127.0.0.1:${port}`)}; echo`).join('\n');
  const r = await run('bash', ['-c', `set -u\n${script}`], { cwd: dir, killAfterMs: 110_000 });
  assert.equal(r.status, 0, r.stderr);
  const outputs = r.stdout.split(/@@step \d+\n/).slice(1).map((o) => o.trim());
  const step = (needle: string) => {
    const i = shell.findIndex((c) => c.startsWith('curl') && c.includes(needle));
    assert.ok(i >= 0, needle);
    return JSON.parse(outputs[i]!) as any;
  };

  const rollouts = step('/phasewise/rollouts').value as any[];
  const demo = rollouts.find((x) => x.artifact.type === 'AzureMonitorLinuxAgent');
  assert.equal(demo?.toVersion, '1.31.0.0', 'the demo\'s own release');
  assert.equal(demo.status, 'running');
  const latest = step('rollingUpgrades/latest');
  assert.ok(latest.properties?.runningStatus?.code || latest.error?.code === 'NotFound', JSON.stringify(latest));
  const ext = step('virtualMachines/0/extensions/ama');
  assert.match(ext.properties.instanceView.typeHandlerVersion, /^1\.3[01]\.\d+\.\d+$/);
  assert.ok(ext.properties.automaticUpgradeState);
  const published = step('/versions/2.0.0.0');
  assert.equal(published.version, '2.0.0.0');
  assert.equal(published.rolloutId, null, 'a new major starts no automatic rollout (R1)');

  // The SDK snippet, with the environment the block exported; it follows the agent's rollout without a stack trace.
  const file = join(ROOT, 'dist', `readme-sdk-${process.pid}.mjs`);
  writeFileSync(file, sdk);
  try {
    const token = readFileSync(join(data, 'token'), 'utf8').trim();
    const env = { ...process.env, PW: `https://127.0.0.1:${port}`, TOKEN: token, NODE_EXTRA_CA_CERTS: join(data, 'tls', 'cert.pem') };
    const s = await run(process.execPath, [file], { cwd: ROOT, env, killAfterMs: 10_000 });
    assert.doesNotMatch(s.stderr, /Error|at /, s.stderr);
    const lines = s.stdout.trim().split('\n');
    assert.ok(lines.length >= 2, s.stdout);
    for (const l of lines) assert.match(l, /^ama on web-eus\/0: 1\.3[01]\.\d+\.\d+ \(.+\); set: (no rolling upgrade yet|\w+ \{.*\})$/);
  } finally {
    rmSync(file, { force: true });
  }

  // The demo's rollout was not replaced by the README's publish.
  const after = await run('curl', ['-s', '--cacert', join(data, 'tls', 'cert.pem'), '-H', `Authorization: Bearer ${readFileSync(join(data, 'token'), 'utf8').trim()}`,
    `https://127.0.0.1:${port}/phasewise/rollouts/${demo.id}`], { cwd: dir, killAfterMs: 10_000 });
  assert.equal((JSON.parse(after.stdout) as { status: string }).status, 'running');
});
