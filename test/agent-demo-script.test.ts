/**
 * `sh examples/agent-demo/run.sh` as the README runs it: a real server, a real agent, the automatic
 * rollout of 1.1.0.0 reaching the machine. Its Ctrl-C hint (`stop: kill $(cat W/agent.pid) $(cat
 * W/serve.pid)`) must stop both: the pid files named the subshells of a shell function, so the kill
 * left the server and the agent running. A port in use ends the script with the server's reason
 * instead of a silent wait for ever.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from './helpers/cli.js';

const dirs: string[] = [];
after(() => {
  for (const w of dirs) {
    for (const f of ['agent.pid', 'serve.pid']) {
      const file = join(w, f);
      if (existsSync(file)) try { process.kill(Number(readFileSync(file, 'utf8')), 'SIGKILL'); } catch { /* gone already */ }
    }
    rmSync(w, { recursive: true, force: true });
  }
});

async function listening(): Promise<Server> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return s;
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');

function runScript(port: number) {
  const w = mkdtempSync(join(tmpdir(), 'phasewise-agent-demo-test-'));
  dirs.push(w);
  const child = spawn('sh', ['examples/agent-demo/run.sh'], { cwd: ROOT, env: { ...process.env, W: w, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  let status: number | null | undefined;
  child.on('exit', (code) => (status = code));
  /** Resolves once the output matches `re`; fails (and kills the script) after `ms`. */
  const waitFor = async (re: RegExp, ms: number): Promise<RegExpExecArray> => {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
      const m = re.exec(out);
      if (m) return m;
    }
    child.kill('SIGKILL');
    throw new Error(`not seen ${re} in ${ms} ms:\n${out}`);
  };
  return { child, waitFor, status: () => status };
}

test('the agent demo upgrades the machine to 1.1.0.0, and its Ctrl-C hint stops the server and the agent it started', { timeout: 240_000 }, async () => {
  const probe = await listening();
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const run = runScript(port);
  await run.waitFor(/Succeeded hello from 1\.1\.0\.0/, 200_000);
  run.child.kill('SIGINT');
  const hint = await run.waitFor(/stop: kill \$\(cat (\S+)\) \$\(cat (\S+)\)/, 20_000);
  const [agent, serve] = [Number(readFileSync(hint[1]!, 'utf8')), Number(readFileSync(hint[2]!, 'utf8'))];
  assert.match(cmdline(agent), /main\.js agent run/, 'agent.pid names the agent process itself');
  assert.match(cmdline(serve), /main\.js serve/, 'serve.pid names the server process itself');
  process.kill(agent, 'SIGTERM');
  process.kill(serve, 'SIGTERM');
  for (let i = 0; i < 100 && (alive(agent) || alive(serve)); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!alive(agent) && !alive(serve), 'kill $(cat agent.pid) $(cat serve.pid) stops both');
});

test('the agent demo with its port in use ends with the server\'s reason instead of waiting for ever', { timeout: 60_000 }, async () => {
  const busy = await listening();
  const port = (busy.address() as { port: number }).port;
  try {
    const run = runScript(port);
    await run.waitFor(/phasewise serve stopped:[^]*\n.*\n/, 45_000);
    await run.waitFor(new RegExp(`serve stopped:[^]*${port}`), 5_000); // the reason names the port
    for (let i = 0; i < 50 && run.status() === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(run.status(), 1);
  } finally {
    await new Promise<void>((r) => busy.close(() => r()));
  }
});
