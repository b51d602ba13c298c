/**
 * Guest OS patching end to end on the real server side: a `phasewise serve` (in process) and a real
 * `phasewise agent run` process with a scripted apt-get. The AgentDriver's PatchDriver puts the
 * operation in the goal state, the agent runs it and reports, the driver answers with the ARM-shaped
 * result; an installation resent with its key is answered again without reaching the machine.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { tempDirs } from './helpers/agent-kit.js';
import { CERT, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { cli, CLI, ROOT } from './helpers/cli.js';

const ENROLL = 'enroll-token-patching-0123456789';
const SEC = 'Debian-Security:12/oldstable-security';
let s: TestServer;
let agent: ChildProcess | null = null;
let out = '';
const d = tempDirs();
const bin = join(d.root, 'pm');

/** The promise's value, or a failure naming `what` (with the agent's output) after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}\n${out}`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

before(async () => {
  s = await startTestServer({ agentPollIntervalSeconds: 1, agentStatusIntervalSeconds: 2, enrollmentTokens: [{ token: ENROLL, subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }] });
  mkdirSync(bin, { recursive: true });
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-apt.sh'), join(bin, 'apt-get'));
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-reboot.sh'), join(bin, 'reboot.sh'));
  writeFileSync(join(bin, 'available'), [
    `openssl 3.0.19-1~deb12u2 3.0.22-1~deb12u2 ${SEC}`, `postgresql-15 15.13-0+deb12u1 15.14-0+deb12u1 ${SEC}`,
    `linux-image-amd64 6.1.187-1 6.1.192-3 ${SEC}`, 'curl 7.88.1-10+deb12u14 7.88.1-10+deb12u15 Debian:12.15/oldstable', '',
  ].join('\n'));
  writeFileSync(join(bin, 'fail-postgresql-15'), '');
  const c = await cli('agent', 'connect', '--server', s.url, '--enrollment-token', ENROLL, '--ca-cert', CERT, '--name', 'patch-1', '--lib-dir', d.lib, '--config-dir', d.config);
  assert.equal(c.status, 0, c.stderr);
  const env: NodeJS.ProcessEnv = { ...process.env, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.02' };
  delete env.NODE_EXTRA_CA_CERTS;
  agent = spawn(process.execPath, [CLI, 'agent', 'run', '--lib-dir', d.lib, '--config-dir', d.config, '--log-dir', d.log, '--imds-port', '0',
    '--package-manager', 'apt', '--package-manager-path', bin, '--reboot-command', join(bin, 'reboot.sh'), '--reboot-required-file', join(bin, 'reboot-required')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout!.setEncoding('utf8').on('data', (t: string) => (out = (out + t).slice(-20_000)));
  agent.stderr!.setEncoding('utf8').on('data', (t: string) => (out = (out + t).slice(-20_000)));
});

after(async () => {
  if (agent && agent.exitCode === null) {
    agent.kill('SIGKILL');
    await new Promise((r) => agent!.once('exit', r));
  }
  await s?.stop();
});

test('assessPatches and installPatches through serve and a real agent: goal state, report, ARM-shaped answers, idempotent by key', async () => {
  const driver = s.agents.driver;
  const machineId = driver.agents()[0]!.machineId;
  const target = { machineId, os: 'linux' as const };
  const a = await within(driver.patches.assessPatches(target), 60_000, 'the assessment');
  assert.equal(a.status, 'Succeeded');
  assert.deepEqual(a.availablePatches.map((p) => [p.patchId, p.classifications[0]]).sort(), [
    ['curl_7.88.1-10+deb12u15', 'Other'], ['linux-image-amd64_6.1.192-3', 'Security'], ['openssl_3.0.22-1~deb12u2', 'Security'], ['postgresql-15_15.14-0+deb12u1', 'Security'],
  ]);
  assert.deepEqual(driver.goal(driver.agents()[0]!.agentId)!.patchOps, {}, 'answered: the operation left the goal state');

  const req = { key: 'maint-run-1', maximumDurationMs: 3600_000, rebootSetting: 'IfRequired' as const, classifications: ['Critical' as const, 'Security' as const], include: [], exclude: ['linux-image-*'] };
  const r = await within(driver.patches.installPatches(target, req), 60_000, 'the installation');
  assert.equal(r.status, 'CompletedWithWarnings');
  assert.deepEqual(Object.fromEntries(r.patches.map((p) => [p.name, p.installationState])), {
    'postgresql-15': 'Failed', openssl: 'Installed', 'linux-image-amd64': 'Excluded', curl: 'NotSelected',
  });
  assert.equal(r.rebootStatus, 'NotNeeded');
  assert.equal(existsSync(join(bin, 'reboots.log')), false);
  const calls = readFileSync(join(bin, 'calls.log'), 'utf8');
  assert.equal(calls.split('\n').filter((l) => l.startsWith('install ')).length, 2);
  // The same key again: the stored answer; the machine sees nothing new.
  assert.deepEqual(await within(driver.patches.installPatches(target, req), 5_000, 'the resent installation'), r);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(readFileSync(join(bin, 'calls.log'), 'utf8'), calls);
});

test('R76: a platform patch baseline through the agent driver: Critical and Security patches with the reboot setting, one answer per key', async () => {
  const driver = s.agents.driver;
  const machineId = driver.agents()[0]!.machineId;
  const before = readFileSync(join(bin, 'calls.log'), 'utf8');
  const action = {
    kind: 'upgrade' as const, key: 'ro-9/platform/1', machineId, artifact: { kind: 'guestPatch' as const, os: 'Linux' as const }, artifactKey: 'guestPatch:linux',
    fromVersion: '0.0.0', toVersion: '2026.3.1', settings: { rebootSetting: 'Never' },
  };
  driver.send(action);
  const answered = async () => {
    for (let i = 0; i < 600; i++) {
      const a = driver.store.operation(action.key)?.answer;
      if (a) return JSON.parse(a) as { ok: boolean; version: string; patch?: { installed: number; failed: number; pending: number; rebooted: boolean } };
      await new Promise((res) => setTimeout(res, 100));
    }
    return undefined;
  };
  const obs = await within(answered(), 60_000, 'the platform patch answer');
  assert.ok(obs, `no answer\n${out}`);
  // openssl went in before; the kernel (Security) now goes in; postgresql-15 fails again; curl (Other) is not selected.
  assert.equal(obs.ok, true);
  assert.equal(obs.version, '2026.3.1');
  assert.deepEqual(obs.patch, { installed: 1, failed: 1, pending: 0, rebooted: false, rebootSec: 0 });
  const calls = readFileSync(join(bin, 'calls.log'), 'utf8').slice(before.length);
  assert.ok(/install .*linux-image-amd64/.test(calls), calls);
  assert.ok(!/curl/.test(calls.split('\n').filter((l) => l.startsWith('install ')).join('\n')), calls);
  assert.equal(existsSync(join(bin, 'reboots.log')), false, 'rebootSetting Never: no reboot');
  // A resend is answered from the store; the machine sees nothing new.
  const seen = readFileSync(join(bin, 'calls.log'), 'utf8');
  driver.send(action);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(readFileSync(join(bin, 'calls.log'), 'utf8'), seen);
});
