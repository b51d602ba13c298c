/**
 * Defects of the agent found by the last session, each shown on a real `phasewise agent run` against the
 * stand-in control plane: an older goal state applied after a newer one, and handler output that grew while
 * no agent trimmed it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runIdOf } from '../src/agent/handler-process.js';
import { calls, extension, goal, gsMessage, HANDLER, handlerZip, inEpoch, newPublisher, packageRef, sleep, tempDirs, trust } from './helpers/agent-kit.js';
import { AgentRig, dirArgs, killed, outcomeOf, until } from './helpers/agent-process.js';
import { CLI } from './helpers/cli.js';

const rig = new AgentRig();
const cp = rig.cp;
const publisher = newPublisher();
before(() => rig.start());
after(() => rig.stop());


test('goal state order: an older id of the same server epoch is refused, a new epoch (a server restored from backup) is followed, a left epoch is refused', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await rig.enroll(d);
  const zip = await handlerZip(d.callLog);
  const v1 = packageRef(cp.packages, publisher, HANDLER, '1.0.0', zip);
  const v2 = packageRef(cp.packages, publisher, HANDLER, '1.1.0', zip);
  cp.goals.set(agentId, inEpoch(goal(5, [extension({ version: '1.0.0', package: v1, operationId: 'op-5' })]), 'epoch-a'));
  const agent = rig.startAgent(d);
  assert.equal((await until('op-5 done', () => outcomeOf(cp.lastReport(agentId), 'op-5'), 20_000, agent)).outcome, 'succeeded');

  // A replayed or reordered answer: goal state 3 of the same epoch, after 5.
  cp.goals.set(agentId, inEpoch(goal(3, [extension({ version: '1.1.0', package: v2, operationId: 'op-3', settingsSeqNo: 2 })]), 'epoch-a'));
  await until('the old goal state refused', () => /goal state 3 is older than goal state 5 of the same server epoch epoch-a/.test(gsMessage(cp.lastReport(agentId))), 20_000, agent);
  assert.equal(cp.lastReport(agentId)!.goalStateId, 5);

  // The server restored from a backup: its ids start lower, under a new epoch. The agent follows it.
  cp.goals.set(agentId, inEpoch(goal(2, [extension({ version: '1.1.0', package: v2, operationId: 'op-2', settingsSeqNo: 2 })]), 'epoch-b'));
  assert.equal((await until('op-2 done', () => outcomeOf(cp.lastReport(agentId), 'op-2'), 20_000, agent)).outcome, 'succeeded');
  assert.equal(cp.lastReport(agentId)!.goalStateId, 2);

  // The replaced server process answering late (epoch-a, whatever its id): refused, even across a restart of the agent.
  agent.kill('SIGTERM');
  await killed(agent);
  cp.goals.set(agentId, inEpoch(goal(9, [extension({ version: '1.0.0', package: v1, operationId: 'op-9', settingsSeqNo: 3 })]), 'epoch-a'));
  const again = rig.startAgent(d);
  await until('the left epoch refused', () => /goal state 9 is from server epoch epoch-a, which this agent has moved on from/.test(gsMessage(cp.lastReport(agentId))), 20_000, again);
  await sleep(500);
  assert.equal(calls(d.callLog).filter((l) => l.includes('op-3') || l.includes('op-9')).length, 0, 'nothing of the refused goal states ran');
  again.kill('SIGTERM');
  await killed(again);
});

test("a handler's output written while the agent is down is cut when the agent starts, before anything reads it", async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await rig.enroll(d);
  const go = join(d.root, 'go');
  // The install keeps running (and writing) while no agent watches it.
  const install = `while [ ! -f '${go}' ]; do sleep 0.05; done; head -c 40000000 /dev/zero | tr '\\0' y; sleep 3`;
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { install }));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-big' })]));
  const first = rig.startAgent(d);
  await until('install started', () => calls(d.callLog).some((l) => l.startsWith('install')), 20_000, first);
  first.kill('SIGKILL');
  await killed(first);
  // A stray output file with no step behind it (an agent crashed before its journal knew the run): swept too.
  const run = join(d.lib, '.agent', 'run');
  mkdirSync(run, { recursive: true });
  const stray = join(run, 'deadbeefdeadbeefdead.out');
  writeFileSync(stray, Buffer.alloc(3 * 1024 * 1024, 0x7a));
  writeFileSync(go, '');
  const out = join(run, `${runIdOf(HANDLER, 'op-big', 'install@1.0.0')}.out`);
  await until('the handler wrote its 40 MB', () => existsSync(out) && statSync(out).size >= 40_000_000, 20_000);
  const second = rig.startAgent(d);
  await until('the agent running', () => /running against/.test(second.output()), 20_000, second);
  await until('the output cut', () => !existsSync(out) || statSync(out).size <= 3200 * 4, 5_000, second);
  // No step owns it and no process holds it: removed by the start-up sweep (it was cut to 1 MiB and kept).
  assert.ok(!existsSync(stray), 'the stray output file is removed');
  const o = await until('op-big done', () => outcomeOf(cp.lastReport(agentId), 'op-big'), 30_000, second);
  assert.equal(o.outcome, 'succeeded');
  second.kill('SIGTERM');
  await killed(second);
});

test('the agent outlives its log: with stderr closed (its reader went away: `| head`, a log collector), it keeps converging and reporting', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await rig.enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog));
  const agent = rig.startAgent(d);
  await until('the agent running', () => /running against/.test(agent.output()), 20_000, agent);
  // The reading end of its stderr goes away: every later log line is a write to a broken pipe.
  agent.stdout!.destroy();
  agent.stderr!.destroy();
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-log' })]));
  const o = await until('op-log done', () => outcomeOf(cp.lastReport(agentId), 'op-log'), 20_000);
  assert.equal(o.outcome, 'succeeded');
  assert.equal(agent.exitCode, null, 'still running');
  agent.kill('SIGTERM');
  await killed(agent);
});

test('a local process holding hundreds of connections to the scheduled-events port does not starve or stop the agent', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await rig.enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog));
  const port = await freePort();
  // The agent with 256 file descriptors (systemd's default soft limit is 1024): each held connection costs one.
  const env: Record<string, string | undefined> = { ...process.env, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.02' };
  delete env.NODE_EXTRA_CA_CERTS;
  const args = [CLI, 'agent', 'run', ...dirArgs(d), '--log-dir', d.log, '--imds-port', String(port)].map((a) => `'${a}'`).join(' ');
  const agent = spawn('/bin/sh', ['-c', `ulimit -n 256 && exec '${process.execPath}' ${args}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  agent.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  agent.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const view = { output: () => out };
  const sockets: Socket[] = [];
  try {
    await until('the agent running', () => /running against/.test(out), 20_000, view);
    for (let i = 0; i < 400; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      sockets.push(s);
    }
    await sleep(1_000);
    cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-fd' })]));
    const o = await until('op-fd done', () => outcomeOf(cp.lastReport(agentId), 'op-fd'), 30_000, view);
    assert.equal(o.outcome, 'succeeded', o.message);
    assert.equal(agent.exitCode, null, `still running:\n${out}`);
    for (const s of sockets) s.destroy();
    await sleep(300);
    const events = await fetch(`http://127.0.0.1:${port}/metadata/scheduledevents`, { headers: { Metadata: 'true' } });
    assert.equal(events.status, 200, 'scheduled events are served again once the connections are gone');
  } finally {
    for (const s of sockets) s.destroy();
    agent.kill('SIGKILL');
    await killed(agent);
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}
