/** Goal state order (src/agent/goal-state-order.ts): ids compared within one server epoch only. Pure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PAST_EPOCHS_KEPT, pastEpochsAfter, staleGoalState } from '../src/agent/goal-state-order.js';
import type { GoalState } from '../src/protocol/agent-wire.js';
import { goal } from './helpers/agent-kit.js';

const gs = (id: number, epoch?: string): GoalState => ({ ...goal(id, []), ...(epoch === undefined ? {} : { epoch }) });

test('an older id of the held epoch is refused; a new epoch is followed whatever its id; a left epoch is refused; no epoch: as before', () => {
  assert.match(staleGoalState(gs(5, 'a'), gs(3, 'a'), [])!, /goal state 3 is older than goal state 5 of the same server epoch a/);
  assert.equal(staleGoalState(gs(5, 'a'), gs(5, 'a'), []), null);
  assert.equal(staleGoalState(gs(5, 'a'), gs(1, 'b'), []), null, 'a restored server');
  assert.match(staleGoalState(gs(1, 'b'), gs(9, 'a'), ['a'])!, /from server epoch a, which this agent has moved on from/);
  assert.equal(staleGoalState(gs(5), gs(3), []), null, 'a server without epochs is followed as before');
  assert.equal(staleGoalState(null, gs(3, 'a'), []), null);
  assert.deepEqual(pastEpochsAfter(gs(5, 'a'), gs(1, 'b'), []), ['a']);
  assert.deepEqual(pastEpochsAfter(gs(5, 'a'), gs(6, 'a'), ['z']), ['z']);
});

/**
 * A server that restarts (new epoch, ids from any point) and answers are replayed or delivered late in any order:
 * whatever arrives, the agent's goal states never go back within an epoch and never return to an epoch it left.
 */
test('property: whatever order the answers arrive in, ids never go back within an epoch and a left epoch never comes back', () => {
  const answer = fc.record({ epoch: fc.constantFrom('e0', 'e1', 'e2', 'e3', undefined), id: fc.nat({ max: 20 }) });
  fc.assert(fc.property(fc.array(answer, { maxLength: 60 }), (answers) => {
    let held: GoalState | null = null;
    let past: string[] = [];
    const left = new Set<string>();
    for (const a of answers) {
      const next = gs(a.id, a.epoch);
      if (staleGoalState(held, next, past) !== null) continue;
      if (held?.epoch !== undefined && next.epoch === held.epoch) assert.ok(next.goalStateId >= held.goalStateId, 'no going back within an epoch');
      if (next.epoch !== undefined) assert.ok(!left.has(next.epoch), `epoch ${next.epoch} was left`);
      past = pastEpochsAfter(held, next, past);
      if (held?.epoch !== undefined && held.epoch !== next.epoch) left.add(held.epoch);
      held = next;
      assert.ok(past.length <= PAST_EPOCHS_KEPT && new Set(past).size === past.length);
    }
  }), { numRuns: 300 });
});
