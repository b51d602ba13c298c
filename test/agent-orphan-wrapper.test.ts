/**
 * A handler wrapper still running whose step no open operation has (its journal record lost, or its
 * operation closed while the agent was killed) is ended by a real `agent run`: after the grace (the
 * longest handler timeout, scaled) its process group gets SIGTERM, and SIGKILL when it ignores that; each
 * step is logged and the run files go with the next sweep. The reaper's timing is unit-tested with a fake
 * clock.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { OrphanReaper } from '../src/agent/orphan-reaper.js';
import { goal, tempDirs } from './helpers/agent-kit.js';
import { AgentRig, until } from './helpers/agent-process.js';
import { processAlive as alive } from './helpers/poll.js';

const rig = new AgentRig();
before(() => rig.start());
after(() => rig.stop());

/** A wrapper as the agent spawns it (own process group, its run file base on its command line). */
function orphanWrapper(runDir: string, runId: string, ignoreTerm: boolean): number {
  const base = join(runDir, runId);
  const script = `${ignoreTerm ? 'trap "" TERM; ' : ''}sleep 300; exit 0`;
  const child = spawn('sh', ['-c', script, 'phasewise-handler', base], { detached: true, stdio: 'ignore' });
  child.unref();
  writeFileSync(`${base}.pid`, `${child.pid}\n`);
  writeFileSync(`${base}.out`, '');
  return child.pid!;
}

test('orphan reaper: SIGTERM after the grace, SIGKILL after killAfter, nothing for wrappers that end or get an owner', () => {
  const d = tempDirs();
  let now = 0;
  const sent: string[] = [];
  const lines: string[] = [];
  const reaper = new OrphanReaper(d, () => now, 1000, 100, (l) => lines.push(l), (pid, sig) => sent.push(`${pid} ${sig}`));
  // Pids of processes that have ended: the SIGKILL is sent only to a wrapper still alive.
  const [p1, p2] = [spawnSync('true').pid!, spawnSync('true').pid!];
  reaper.note([{ runId: 'a', pid: p1 }, { runId: 'b', pid: p2 }]);
  now = 999;
  reaper.note([{ runId: 'a', pid: p1 }, { runId: 'b', pid: p2 }]);
  assert.deepEqual(sent, [], 'nothing within the grace');
  now = 1000;
  reaper.note([{ runId: 'a', pid: p1 }]); // b ended (or its step was opened again): forgotten
  assert.deepEqual(sent, [`${p1} SIGTERM`]);
  now = 2000;
  reaper.note([{ runId: 'a', pid: p1 }]);
  assert.deepEqual(sent, [`${p1} SIGTERM`], 'no SIGKILL for a wrapper that is not alive any more');
  reaper.note([{ runId: 'b', pid: p2 }]);
  now = 2999;
  reaper.note([{ runId: 'b', pid: p2 }]);
  assert.deepEqual(sent, [`${p1} SIGTERM`], 'b seen again starts a new grace');
  assert.match(lines[0]!, /handler command a \(wrapper pid \d+\) is still running but no open operation has it; its process group is ended in 1 s/);
  rmSync(d.root, { recursive: true, force: true });
});

test('agent run ends live orphan handler wrappers: SIGTERM to the group after the grace, SIGKILL to one that ignores it', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  rig.cp.goals.set(agentId, goal(1, []));
  const runDir = join(d.lib, '.agent/run');
  mkdirSync(runDir, { recursive: true });
  const polite = orphanWrapper(runDir, 'aaaaaaaaaaaaaaaaaaaa', false);
  const stubborn = orphanWrapper(runDir, 'bbbbbbbbbbbbbbbbbbbb', true);
  try {
    const agent = rig.startAgent(d);
    await until('the orphans noticed', () => /handler command bbbbbbbbbbbbbbbbbbbb \(wrapper pid \d+\) is still running but no open operation has it/.test(agent.output()), 60_000, agent);
    assert.ok(alive(polite) && alive(stubborn), 'not before the grace');
    await until('the polite orphan gone', () => !alive(polite), 90_000, agent);
    await until('the stubborn orphan gone', () => !alive(stubborn), 30_000, agent);
    const out = agent.output();
    assert.match(out, /handler command aaaaaaaaaaaaaaaaaaaa \(wrapper pid \d+\): no open operation has it after \d+ s; sent SIGTERM to its process group/);
    assert.match(out, /handler command bbbbbbbbbbbbbbbbbbbb \(wrapper pid \d+\) outlived SIGTERM by \d+ s; sent SIGKILL to its process group/);
    assert.doesNotMatch(out, /aaaaaaaaaaaaaaaaaaaa \(wrapper pid \d+\) outlived SIGTERM/);
    await until('their pid files removed by the sweep', () => !existsSync(join(runDir, 'aaaaaaaaaaaaaaaaaaaa.pid')) && !existsSync(join(runDir, 'bbbbbbbbbbbbbbbbbbbb.pid')), 30_000, agent);
  } finally {
    for (const pid of [polite, stubborn]) if (alive(pid)) process.kill(-pid, 'SIGKILL');
  }
});
