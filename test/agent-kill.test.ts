/**
 * `kill -9` of a real `phasewise agent run` mid-install, mid-download and mid-rollback: the restarted
 * agent converges and no handler command runs twice.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, packageRef, sleep, tempDirs, trust } from './helpers/agent-kit.js';
import { AgentRig, killed, outcomeOf, until } from './helpers/agent-process.js';

const rig = new AgentRig();
const cp = rig.cp;
const publisher = newPublisher();
before(() => rig.start());
after(() => rig.stop());
const enroll = (d: Parameters<AgentRig['enroll']>[0]) => rig.enroll(d);
const startAgent = (d: Parameters<AgentRig['startAgent']>[0], extra: string[] = []) => rig.startAgent(d, extra);

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
  const big = { 'payload.bin': randomBytes(400_000).toString('base64') };
  const b = packageRef(cp.packages, publisher, HANDLER, '1.1.0', await handlerZip(d.callLog, { install: 'exit 5', files: big }));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-a' })]));
  let agent = startAgent(d);
  await until('A enabled', () => outcomeOf(cp.lastReport(agentId), 'op-a'), 30_000, agent);
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
  await until('the rollback reinstall of A started', () => calls(d.callLog).filter((l) => l.startsWith('install 1.0.0')).length === 2, 30_000, agent);
  agent.kill('SIGKILL');
  await killed(agent);
  assert.ok(existsSync(join(d.lib, '.agent/packages', `${HANDLER}__1.0.0.zip`)), 'the LKG zip is still cached');
  agent = startAgent(d);
  const o = await until('op-b finished', () => outcomeOf(cp.lastReport(agentId), 'op-b'), 30_000, agent);
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
