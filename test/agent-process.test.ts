/**
 * `phasewise agent connect` and `phasewise agent run` as real child processes against a stand-in
 * control plane on loopback: enrollment errors, the run loop, a refused goal state, scheduled events,
 * and `kill -9` of the agent mid-install and mid-rollback with nothing run twice.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ScheduledEvent, StatusReport } from '../src/protocol/agent-wire.js';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, packageRef, sleep, tempDirs, trust } from './helpers/agent-kit.js';
import { cli, CLI, ROOT } from './helpers/cli.js';
import { ControlPlane } from './helpers/control-plane.js';

const cp = new ControlPlane();
const publisher = newPublisher();
const caFile = join(ROOT, 'test/fixtures/tls/cert.pem');
const children: ChildProcess[] = [];
before(() => cp.start());
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await cp.stop();
});

type Dirs = ReturnType<typeof tempDirs>;
const dirArgs = (d: Dirs) => ['--lib-dir', d.lib, '--config-dir', d.config];

async function enroll(d: Dirs): Promise<string> {
  const r = await cli('agent', 'connect', '--server', cp.url, '--enrollment-token', cp.token, '--ca-cert', caFile, '--name', 'm1', ...dirArgs(d));
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(readFileSync(join(d.lib, '.agent/enrollment.json'), 'utf8')).agentId as string;
}

function startAgent(d: Dirs, extraArgs: string[] = []): ChildProcess & { output: () => string } {
  const env = { ...process.env, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.02' };
  delete (env as Record<string, string | undefined>).NODE_EXTRA_CA_CERTS;
  const child = spawn(process.execPath, [CLI, 'agent', 'run', ...dirArgs(d), '--log-dir', d.log, '--imds-port', '0', ...extraArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  return Object.assign(child, { output: () => out });
}

async function until<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 20_000, agent?: { output: () => string }): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}${agent ? `\nagent output:\n${agent.output()}` : ''}`);
    await sleep(50);
  }
}

const outcomeOf = (r: StatusReport | undefined, opId: string) => {
  const last = r?.agentState[HANDLER]?.lastOperation;
  return last?.operationId === opId ? last : undefined;
};

function reimage(EventId: string): ScheduledEvent {
  const r = { EventType: 'Reimage', ResourceType: 'VirtualMachine', EventStatus: 'Scheduled', NotBefore: '' } as const;
  return { EventId, ...r, Resources: ['m1'], Description: 'OS image upgrade', EventSource: 'Platform', DurationInSeconds: -1 };
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}

test('agent connect: usage, refused token, unreachable server, success (key 0600, thumbprint), already enrolled', async () => {
  const d = tempDirs();
  const usage = await cli('agent', 'connect', ...dirArgs(d));
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--server URL is required/);
  const refused = await cli('agent', 'connect', '--server', cp.url, '--enrollment-token', 'wrong', '--ca-cert', caFile, ...dirArgs(d));
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /refused the enrollment token \(401\): InvalidEnrollmentToken: the enrollment token is not valid/);
  const down = await cli('agent', 'connect', '--server', 'https://127.0.0.1:1', '--enrollment-token', 't', '--ca-cert', caFile, ...dirArgs(d));
  assert.equal(down.status, 1);
  assert.match(down.stderr, /cannot reach 127\.0\.0\.1:1: ECONNREFUSED/);
  const saved = process.env.NODE_EXTRA_CA_CERTS; // `npm test` sets it to the test certificate
  delete process.env.NODE_EXTRA_CA_CERTS;
  const pending = cli('agent', 'connect', '--server', cp.url, '--enrollment-token', cp.token, ...dirArgs(d));
  if (saved !== undefined) process.env.NODE_EXTRA_CA_CERTS = saved;
  const untrusted = await pending;
  assert.equal(untrusted.status, 1);
  assert.match(untrusted.stderr, /TLS certificate is not trusted .*--ca-cert/);
  assert.ok(!existsSync(join(d.lib, '.agent/enrollment.json')), 'a failed enrollment leaves nothing');
  await enroll(d);
  const crt = readdirSync(d.lib).find((f) => f.endsWith('.crt'))!;
  assert.match(crt, /^[0-9A-F]{40}\.crt$/);
  assert.equal(statSync(join(d.lib, crt.replace('.crt', '.prv'))).mode & 0o777, 0o600);
  const again = await cli('agent', 'connect', '--server', cp.url, '--enrollment-token', cp.token, '--ca-cert', caFile, ...dirArgs(d));
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already enrolled.*--force/);
});

test('R21: agent run installs, heartbeats, keeps its state on a malformed goal state, serves scheduled events', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog));
  const g = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
  g.scheduledEvents = {
    DocumentIncarnation: 3,
    Events: [reimage('ev-1')],
  };
  cp.goals.set(agentId, g);
  const agent = startAgent(d, ['--imds-port', '0']);
  const done = await until('op-1 succeeded', () => outcomeOf(cp.lastReport(agentId), 'op-1'), 20_000, agent);
  assert.equal(done.outcome, 'succeeded');
  const report = cp.lastReport(agentId)!;
  assert.equal(report.aggregateStatus.handlerAggregateStatus[0]?.status, 'Ready');
  assert.equal(report.aggregateStatus.handlerAggregateStatus[0]?.runtimeSettingsStatus?.settingsStatus.status.status, 'success');
  const n = cp.reports.get(agentId)!.length;
  await until('a heartbeat without change', () => cp.reports.get(agentId)!.length > n, 6000, agent);
  cp.rawGoalState = '{"schemaVersion":"1.0","goalStateId":"nope"';
  const refused = await until('the refused goal state reported', () => {
    const s = cp.lastReport(agentId)?.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus;
    return s?.status === 'Failed' ? s : undefined;
  }, 10_000, agent);
  assert.match(refused.formattedMessage.message, /not JSON.*keeping goal state 1/);
  assert.equal(cp.lastReport(agentId)?.agentState[HANDLER]?.state, 'Enabled');
  agent.kill('SIGTERM');
  await killed(agent);
  // Started again, the agent reports the finished operation and does not run enable again (unlike WALinuxAgent).
  const restarted = startAgent(d);
  const before = cp.reports.get(agentId)!.length;
  await until('a report from the restarted agent', () => cp.reports.get(agentId)!.length > before, 10_000, restarted);
  await sleep(300);
  restarted.kill('SIGTERM');
  await killed(restarted);
  assert.deepEqual(calls(d.callLog).map((l) => l.split(' ')[0]), ['install', 'enable']);
});

test('R83: the IMDS endpoint needs Metadata: true, lists events and forwards StartRequests', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const g = goal(1, []);
  g.scheduledEvents = {
    DocumentIncarnation: 5,
    Events: [reimage('ev-9')],
  };
  cp.goals.set(agentId, g);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const agent = startAgent(d, ['--imds-port', String(port)]);
  const base = `http://127.0.0.1:${port}/metadata/scheduledevents?api-version=2020-07-01`;
  await until('the goal state reached the agent', () => cp.lastReport(agentId)?.goalStateId === 1, 15_000, agent);
  assert.equal((await fetch(base)).status, 400);
  const got = await (await fetch(base, { headers: { Metadata: 'true' } })).json() as { DocumentIncarnation: number; Events: Array<{ EventId: string }> };
  assert.equal(got.DocumentIncarnation, 5);
  assert.equal(got.Events[0]?.EventId, 'ev-9');
  const bad = await fetch(base, { method: 'POST', headers: { Metadata: 'true' }, body: '{"StartRequests":[{"EventId":"nope"}]}' });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /unknown EventId/);
  const ok = await fetch(base, { method: 'POST', headers: { Metadata: 'true' }, body: '{"StartRequests":[{"EventId":"ev-9"}]}' });
  assert.equal(ok.status, 200);
  assert.deepEqual(cp.approvals.at(-1), { agentId, ids: ['ev-9'] });
  agent.kill('SIGTERM');
  await killed(agent);
});

test('kill -9 of the agent mid-install: the restarted agent waits for the running install, nothing runs twice', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { install: 'sleep 2' }));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-k1' })]));
  const first = startAgent(d);
  await until('install started', () => calls(d.callLog).some((l) => l.startsWith('install')), 15_000, first);
  first.kill('SIGKILL');
  await killed(first);
  const second = startAgent(d);
  const o = await until('op-k1 finished', () => outcomeOf(cp.lastReport(agentId), 'op-k1'), 20_000, second);
  assert.equal(o.outcome, 'succeeded');
  assert.match(second.output(), /install@1\.0\.0 was running when the agent stopped; picking it up/);
  assert.deepEqual(calls(d.callLog).map((l) => l.split(' ').slice(0, 2).join(' ')), ['install 1.0.0', 'enable 1.0.0']);
  second.kill('SIGTERM');
  await killed(second);
});

test('R31: kill -9 of the agent mid-rollback and mid-download: it converges, each step ran once, the LKG zip survives', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const flag = join(d.root, 'slow-reinstall');
  const a = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { install: `if [ -f '${flag}' ]; then sleep 2; fi` }));
  const big = { 'payload.bin': (await import('node:crypto')).randomBytes(400_000).toString('base64') };
  const b = packageRef(cp.packages, publisher, HANDLER, '1.1.0', await handlerZip(d.callLog, { install: 'exit 5', files: big }));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-a' })]));
  let agent = startAgent(d);
  await until('A enabled', () => outcomeOf(cp.lastReport(agentId), 'op-a'), 20_000, agent);
  writeFileSync(flag, '');
  cp.packages.faults.slowMs = 40;
  cp.packages.requests = [];
  cp.goals.set(agentId, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-b', settingsSeqNo: 2 })]));
  await until('download under way', () => existsSync(join(d.lib, '.agent/downloads')) && readdirSync(join(d.lib, '.agent/downloads')).length > 0, 15_000, agent);
  await sleep(150);
  agent.kill('SIGKILL');
  await killed(agent);
  cp.packages.faults.slowMs = 0;
  agent = startAgent(d);
  await until('the rollback reinstall of A started', () => calls(d.callLog).filter((l) => l.startsWith('install 1.0.0')).length === 2, 20_000, agent);
  agent.kill('SIGKILL');
  await killed(agent);
  assert.ok(existsSync(join(d.lib, '.agent/packages', `${HANDLER}__1.0.0.zip`)), 'the LKG zip is still cached');
  agent = startAgent(d);
  const o = await until('op-b finished', () => outcomeOf(cp.lastReport(agentId), 'op-b'), 20_000, agent);
  assert.equal(o.outcome, 'rolledBack', `${o.message}\n${agent.output()}\n${calls(d.callLog).join('\n')}`);
  assert.ok(cp.packages.requests.some((r) => r.range && /^bytes=[1-9]/.test(r.range)), 'the download resumed with Range');
  const seen = calls(d.callLog).map((l) => l.split(' ').slice(0, 3).join(' '));
  const expected = ['install 1.0.0 1', 'enable 1.0.0 1', 'disable 1.0.0 2', 'update 1.1.0 2', 'uninstall 1.0.0 2', 'install 1.1.0 2'];
  assert.deepEqual(seen, [...expected, 'uninstall 1.1.0 2', 'install 1.0.0 2', 'enable 1.0.0 2']);
  const report = cp.lastReport(agentId)!;
  assert.equal(report.agentState[HANDLER]?.installedVersion, '1.0.0');
  const settings = report.aggregateStatus.handlerAggregateStatus[0]!.runtimeSettingsStatus!.settingsStatus.status;
  assert.equal(settings.substatus?.[0]?.name, 'Rollback');
  assert.equal(settings.substatus?.[0]?.formattedMessage?.message, 'rolled back to 1.0.0');
  agent.kill('SIGTERM');
  await killed(agent);
});

test('R21: 503s on the goal state and 500s on status are retried with backoff; an oversized goal state is refused', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]));
  cp.goalStateFailures = 2;
  cp.statusFailures = 2;
  const agent = startAgent(d);
  await until('op-1 reported after the failures', () => outcomeOf(cp.lastReport(agentId), 'op-1'), 25_000, agent);
  assert.match(agent.output(), /goal state poll failed \(GET goalstate answered 503: Busy: try later\); next try in/);
  assert.match(agent.output(), /status report failed \(PUT status answered 500: Internal: disk full\); retrying/);
  cp.rawGoalState = `{"pad":"${'x'.repeat(1024 * 1024)}"}`;
  const refused = await until('the oversized goal state reported', () => {
    const s = cp.lastReport(agentId)?.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus;
    return s?.status === 'Failed' ? s : undefined;
  }, 15_000, agent);
  assert.match(refused.formattedMessage.message, /larger than 1048576 bytes; keeping goal state 1/);
  agent.kill('SIGTERM');
  await killed(agent);
  assert.equal(calls(d.callLog).length, 2);
});
