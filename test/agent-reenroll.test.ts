/**
 * `phasewise agent connect --force` (a revoked credential, a cloned machine told to take its own identity)
 * makes a new agent on the same lib dir. Goal state ids count per agent, so the new agent's first goal
 * states have lower ids than the one the journal held from the earlier enrollment, in the same server
 * epoch: they were refused as "older", and the machine stopped converging until the server restarted.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { extension, goal, gsMessage, handlerZip, inEpoch, newPublisher, packageRef, tempDirs, trust } from './helpers/agent-kit.js';
import { AgentRig, caFile, dirArgs, killed, outcomeOf, until } from './helpers/agent-process.js';
import { cli } from './helpers/cli.js';

const rig = new AgentRig();
const cp = rig.cp;
const publisher = newPublisher();
before(() => rig.start());
after(() => rig.stop());


test('after agent connect --force the new agent follows its own goal states, whose ids start again (not refused as older than the earlier enrollment\'s)', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const first = await rig.enroll(d);
  const zip = await handlerZip(d.callLog);
  const v1 = packageRef(cp.packages, publisher, 'Contoso.Test.Agent', '1.0.0', zip);
  cp.goals.set(first, inEpoch(goal(5, [extension({ version: '1.0.0', package: v1, operationId: 'op-5' })]), 'epoch-a'));
  let agent = rig.startAgent(d);
  assert.equal((await until('op-5 done', () => outcomeOf(cp.lastReport(first), 'op-5'), 30_000, agent)).outcome, 'succeeded');
  agent.kill('SIGTERM');
  await killed(agent);

  const again = await cli('agent', 'connect', '--server', cp.url, '--enrollment-token', cp.token, '--ca-cert', caFile, '--name', 'm1', '--force', ...dirArgs(d));
  assert.equal(again.status, 0, again.stderr);
  const second = /enrolled: agent (\S+)/.exec(again.stdout)![1]!;
  assert.notEqual(second, first);
  // The same server (same epoch), the new agent's ids counting from 1.
  cp.goals.set(second, inEpoch(goal(1, [extension({ version: '1.0.0', package: v1, operationId: 'op-new', settingsSeqNo: 2 })]), 'epoch-a'));
  agent = rig.startAgent(d);
  await until('op-new done', () => outcomeOf(cp.lastReport(second), 'op-new'), 30_000, agent);
  assert.doesNotMatch(gsMessage(cp.lastReport(second)), /older than/);
  assert.match(agent.output(), new RegExp(`enrolled as agent ${second} now \\(the goal state held was agent ${first}'s\\): dropped it`));
  assert.equal(cp.lastReport(second)!.goalStateId, 1);
  agent.kill('SIGTERM');
  await killed(agent);
});

test('agent connect --force while agent run runs: the running agent takes the new credential before its next poll (it went on as the old agent until restarted)', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const first = await rig.enroll(d);
  const v1 = packageRef(cp.packages, publisher, 'Contoso.Test.Agent', '1.0.0', await handlerZip(d.callLog));
  cp.goals.set(first, inEpoch(goal(4, [extension({ version: '1.0.0', package: v1, operationId: 'op-4' })]), 'epoch-a'));
  const agent = rig.startAgent(d);
  await until('op-4 done', () => outcomeOf(cp.lastReport(first), 'op-4'), 30_000, agent);

  const again = await cli('agent', 'connect', '--server', cp.url, '--enrollment-token', cp.token, '--ca-cert', caFile, '--name', 'm1', '--force', ...dirArgs(d));
  assert.equal(again.status, 0, again.stderr);
  const second = /enrolled: agent (\S+)/.exec(again.stdout)![1]!;
  cp.goals.set(second, inEpoch(goal(1, [extension({ version: '1.0.0', package: v1, operationId: 'op-second', settingsSeqNo: 2 })]), 'epoch-a'));
  await until('op-second done by the same process', () => outcomeOf(cp.lastReport(second), 'op-second'), 30_000, agent);
  assert.match(agent.output(), new RegExp(`enrolled again: agent ${second} for .* from now on \\(was agent ${first}\\)`));
  assert.equal(agent.exitCode, null, 'no restart was needed');
  agent.kill('SIGTERM');
  await killed(agent);
});
