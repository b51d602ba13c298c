/**
 * R21: the attempts waiting for a machine's health verdict (`healthWaiters`). One rollout waiting, nearly always,
 * is kept as the attempt itself, several as a list (issue 13, session 18: no wrapper and no array of one per
 * machine). Against a plain model, a list per machine in the order the attempts began to wait, under random
 * adds and removes: the same waiters in the same order, and no entry for a machine nobody waits on.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AttemptState, EngineState } from '../src/engine/state.js';
import { addHealthWaiter, healthWaitersOf, removeHealthWaiter } from '../src/engine/state.js';

const MACHINES = ['m0', 'm1', 'm2'];
const ROLLOUTS = ['r1', 'r2', 'r3'];

function attempt(rolloutId: string, machineId: string): AttemptState {
  return { rolloutId, machineId } as AttemptState;
}

type Step = { add: boolean; machine: number; rollout: number };

test('R21: health waiters kept as the attempt or a list answer as a list per machine would, in order', () => {
  const step = fc.record({ add: fc.boolean(), machine: fc.nat(MACHINES.length - 1), rollout: fc.nat(ROLLOUTS.length - 1) });
  fc.assert(fc.property(fc.array(step, { maxLength: 80 }), (steps: Step[]) => {
    const state: Pick<EngineState, 'healthWaiters'> = { healthWaiters: new Map() };
    const model = new Map<string, AttemptState[]>();
    for (const s of steps) {
      const machineId = MACHINES[s.machine]!;
      const rolloutId = ROLLOUTS[s.rollout]!;
      const list = model.get(machineId) ?? [];
      if (s.add) {
        if (list.some((a) => a.rolloutId === rolloutId)) continue; // a rollout waits once per machine
        const a = attempt(rolloutId, machineId);
        addHealthWaiter(state, a);
        model.set(machineId, [...list, a]);
      } else {
        removeHealthWaiter(state, machineId, rolloutId);
        const left = list.filter((a) => a.rolloutId !== rolloutId);
        if (left.length > 0) model.set(machineId, left);
        else model.delete(machineId);
      }
      for (const id of MACHINES) {
        const expected = model.get(id) ?? [];
        const got = healthWaitersOf(state, id);
        assert.equal(got.length, expected.length, id);
        got.forEach((a, i) => assert.equal(a, expected[i], `${id} #${i}`));
        // Nobody waiting: no entry; one: the attempt itself, no list.
        const kept = state.healthWaiters.get(id);
        if (expected.length === 0) assert.equal(kept, undefined);
        if (expected.length === 1) assert.equal(kept, expected[0]);
      }
    }
  }), { numRuns: 400 });
});

test('R21: the waiters of a machine are a copy: judging one (it leaves the registry) does not skip the next', () => {
  const state: Pick<EngineState, 'healthWaiters'> = { healthWaiters: new Map() };
  const a = attempt('r1', 'm0');
  const b = attempt('r2', 'm0');
  addHealthWaiter(state, a);
  addHealthWaiter(state, b);
  const seen: AttemptState[] = [];
  for (const w of healthWaitersOf(state, 'm0')) {
    seen.push(w);
    removeHealthWaiter(state, 'm0', w.rolloutId);
  }
  assert.deepEqual(seen, [a, b]);
  assert.equal(state.healthWaiters.size, 0);
});
