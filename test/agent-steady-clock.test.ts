/**
 * The wall clock stepped by hours while a handler command runs: the agent's deadlines follow the
 * monotonic clock (steady-clock.ts), so a healthy install is not killed by a jump forward and a hung one
 * is still killed on time after a jump backward. Real handler processes; only the wall clock is faked.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { runStep } from '../src/agent/handler-process.js';
import type { CommandSpec, ProcessRuntime } from '../src/agent/handler-process.js';
import { Journal } from '../src/agent/journal.js';
import type { OperationJournal } from '../src/agent/journal.js';
import { monotonicMs, steadyClock } from '../src/agent/steady-clock.js';
import { Agent } from '../src/agent/agent-loop.js';
import { loadCredentials } from '../src/agent/enrollment.js';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, packageRef, sleep, tempDirs, trust } from './helpers/agent-kit.js';
import { AgentRig, outcomeOf, until } from './helpers/agent-process.js';

const HOURS_3 = 3 * 3600_000;

test('steady clock: whatever the wall clock does, it advances exactly with the monotonic clock, across restarts in one boot', () => {
  const d = tempDirs();
  const file = join(d.lib, '.agent/clock.json');
  try {
    const step = fc.record({ monoAdvance: fc.integer({ min: 0, max: 600_000 }), wallJump: fc.integer({ min: -48 * 3600_000, max: 48 * 3600_000 }), restart: fc.boolean() });
    fc.assert(
      fc.property(fc.integer({ min: 1e12, max: 2e12 }), fc.array(step, { maxLength: 30 }), (wall0, steps) => {
        rmSync(file, { force: true });
        let mono = 5_000;
        let wall = wall0;
        const src = () => ({ wall: () => wall, mono: () => mono, bootId: 'boot-1', file });
        let clock = steadyClock(src());
        const start = clock();
        assert.equal(start, wall0, 'anchored on the wall clock at the first start');
        for (const s of steps) {
          mono += s.monoAdvance;
          wall += s.monoAdvance + s.wallJump;
          if (s.restart) clock = steadyClock(src()); // a restarted agent in the same boot
          assert.equal(clock() - start, mono - 5_000);
        }
        // After a reboot (new boot id, monotonic from 0 again) it anchors on the wall clock again.
        mono = 1_000;
        const rebooted = steadyClock({ ...src(), bootId: 'boot-2' });
        assert.equal(rebooted(), wall);
      }),
      { numRuns: 200 },
    );
    writeFileSync(file, '{not json');
    assert.equal(steadyClock({ wall: () => 7e12, mono: () => 1, bootId: 'boot-1', file })(), 7e12, 'a damaged anchor file: anchored again');
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).anchorMs, 7e12 - 1, 'and rewritten whole');
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});

/** A wall clock that jumps by `jumpMs` `afterMs` after it is made. */
function jumpingWall(afterMs: number, jumpMs: number): () => number {
  const t0 = Date.now();
  return () => {
    const now = Date.now();
    return now - t0 >= afterMs ? now + jumpMs : now;
  };
}

async function run(now: () => number, command: string, timeoutMs: number) {
  const d = tempDirs();
  const journal = new Journal(d);
  const op: Pick<OperationJournal, 'operationId' | 'steps'> = { operationId: 'op-clock', steps: {} };
  const rt: ProcessRuntime = { now, sleep, pollMs: 20, log: () => undefined };
  const spec: CommandSpec = { key: 'install@1.0.0', command, cwd: d.root, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs, logFile: join(d.log, 'c.log') };
  const t0 = Date.now();
  try {
    const r = await runStep(d, journal, 'Contoso.Test.Clock', op, spec, rt);
    return { ...r, tookMs: Date.now() - t0 };
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
}

const steady = (wall: () => number) => {
  const d = tempDirs();
  const clock = steadyClock({ wall, mono: monotonicMs, bootId: 'test-boot', file: join(d.lib, '.agent/clock.json') });
  rmSync(d.root, { recursive: true, force: true });
  return clock;
};

test('the wall clock jumps 3 hours forward while an install runs: it finishes (exit 0), it is not timed out', async () => {
  const wall = jumpingWall(300, HOURS_3);
  const r = await run(steady(wall), 'sleep 1; exit 0', 10_000);
  assert.deepEqual({ exitCode: r.exitCode, timedOut: r.timedOut }, { exitCode: 0, timedOut: false });
  // The wall clock alone (what the agent used) kills the healthy install at the jump.
  const naive = await run(jumpingWall(300, HOURS_3), 'sleep 1; exit 0', 10_000);
  assert.equal(naive.timedOut, true, 'the wall clock is what the defect used');
});

test('the wall clock jumps 3 hours backward while a hung install runs: it is still killed at its timeout', async () => {
  const wall = jumpingWall(200, -HOURS_3);
  const r = await run(steady(wall), 'sleep 60', 1_500);
  assert.equal(r.timedOut, true);
  assert.ok(r.tookMs < 6_000, `killed after ${r.tookMs} ms, not hours later`);
});

test('a real agent: the wall clock jumps 3 hours forward during an install; the install finishes and the operation succeeds', async () => {
  const rig = new AgentRig();
  await rig.start();
  const d = tempDirs();
  const publisher = newPublisher();
  trust(d, publisher);
  const agentId = await rig.enroll(d);
  const ref = packageRef(rig.cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { install: 'sleep 2' }));
  rig.cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-jump' })]));
  let jump = 0;
  // timeScale 0.01: install may take 9 s; the wall clock given to the agent jumps once the install runs.
  const agent = new Agent({ dirs: d, imdsPort: 0, timeScale: 0.01, log: () => undefined, now: () => Date.now() + jump }, loadCredentials(d));
  await agent.start();
  try {
    await until('install started', () => calls(d.callLog).some((l) => l.startsWith('install')), 15_000);
    jump = HOURS_3;
    const o = await until('op-jump finished', () => outcomeOf(rig.cp.lastReport(agentId), 'op-jump'), 30_000);
    assert.equal(o.outcome, 'succeeded', o.message);
    assert.deepEqual(calls(d.callLog).map((l) => l.split(' ')[0]), ['install', 'enable'], 'each step once');
  } finally {
    await agent.stop();
    await rig.stop();
    rmSync(d.root, { recursive: true, force: true });
  }
});
