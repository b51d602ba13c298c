/**
 * `phasewise agent connect` and `phasewise agent run` as real child processes against a stand-in
 * control plane on loopback: enrollment errors, the run loop, a refused goal state, retries, scheduled
 * events. The kill -9 tests are in agent-kill.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, packageRef, sleep, tempDirs, trust } from './helpers/agent-kit.js';
import { AgentRig, caFile, dirArgs, killed, outcomeOf, reimage, until } from './helpers/agent-process.js';
import { cli } from './helpers/cli.js';

const rig = new AgentRig();
const cp = rig.cp;
const publisher = newPublisher();
before(() => rig.start());
after(() => rig.stop());
const enroll = (d: Parameters<AgentRig['enroll']>[0]) => rig.enroll(d);
const startAgent = (d: Parameters<AgentRig['startAgent']>[0], extra: string[] = []) => rig.startAgent(d, extra);

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

test('R21: agent run installs, heartbeats, keeps its state on a malformed goal state; a restart runs nothing again', async () => {
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
  const done = await until('op-1 succeeded', () => outcomeOf(cp.lastReport(agentId), 'op-1'), 30_000, agent);
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

test('R21: 503s on the goal state and 500s on status are retried with backoff; an oversized goal state is refused', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]));
  cp.goalStateFailures = 2;
  cp.statusFailures = 2;
  const agent = startAgent(d);
  await until('op-1 reported after the failures', () => outcomeOf(cp.lastReport(agentId), 'op-1'), 30_000, agent);
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
