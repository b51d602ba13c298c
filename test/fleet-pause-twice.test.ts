/**
 * The fleet-wide stop given again while it holds: the later reason is not lost. Every pause is in the
 * event log (and so the activity log) with its caller and reason; the holds it placed show the latest
 * reason; a hold of another kind (a single rollout's pause) keeps its own; one resume lifts the stop.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FLEET_STOP } from '../src/engine/rollouts/operator-controls.js';
import { baseScenario } from './helpers/harness.js';
import { KEY, MIN, Rig } from './helpers/rig.js';

const ARTIFACT = { kind: 'extension', publisher: 'Contoso', type: 'Agent' } as const;

function running(): Rig {
  const rig = new Rig(baseScenario({ events: [] }));
  rig.at(0);
  rig.publish('1.1.0.0');
  rig.at(MIN);
  assert.equal([...rig.engine.state.rollouts.values()].filter((r) => r.status === 'running').length, 1);
  return rig;
}

test('a second fleet-wide stop keeps both reasons in the log, and the hold shows the latest', () => {
  const rig = running();
  const first = rig.engine.pauseAllRollouts('incident 42', 'alice');
  rig.at(2 * MIN);
  const second = rig.engine.pauseAllRollouts('incident 43: the database too', 'bob');
  assert.deepEqual(second.map((r) => r.id), first.map((r) => r.id));
  const paused = rig.of('rollout.paused');
  assert.deepEqual(paused.map((e) => `${e.caller} ${e.reason}`), [
    `alice ${FLEET_STOP}alice: incident 42`,
    `bob ${FLEET_STOP}bob: incident 43: the database too`,
  ]);
  const hold = rig.engine.release(ARTIFACT, '1.1.0.0')?.hold;
  assert.equal(hold?.reason, `${FLEET_STOP}bob: incident 43: the database too`);
  assert.equal(hold?.caller, 'bob');
  assert.equal(hold?.sinceMs, rig.startMs + MIN, 'held since the first stop');
  assert.equal(rig.of('release.halted').length, 1, 'one hold, placed once');
  const resumed = rig.engine.resumeAllRollouts('carol');
  assert.deepEqual(resumed.map((r) => r.id), first.map((r) => r.id));
  assert.equal(rig.engine.release(ARTIFACT, '1.1.0.0')?.hold, null);
  assert.match(rig.of('release.resumed')[0]!.reason, /incident 43/);
});

test('a fleet-wide stop leaves a single rollout\'s pause as it is: no second event, its reason kept', () => {
  const rig = running();
  const r = [...rig.engine.state.rollouts.values()][0]!;
  rig.engine.pauseRollout(r.id, 'support tickets', 'alice');
  rig.engine.pauseAllRollouts('incident 42', 'bob');
  assert.equal(rig.of('rollout.paused').length, 1);
  assert.match(rig.engine.release(ARTIFACT, '1.1.0.0')!.hold!.reason, /^paused by alice: support tickets/);
  assert.ok(rig.engine.state.releases.has(`${KEY}@1.1.0.0`));
});

test('holding rollouts that start during the stop (newOnly) neither renews the stop nor logs its pauses again', () => {
  const rig = running();
  rig.engine.pauseAllRollouts('incident 42', 'alice');
  rig.engine.pauseAllRollouts('incident 42', 'alice', true);
  assert.equal(rig.of('rollout.paused').length, 1);
  assert.equal(rig.engine.release(ARTIFACT, '1.1.0.0')?.hold?.reason, `${FLEET_STOP}alice: incident 42`);
});

test('holding the rollouts that started during a stop (createdSince) leaves one that ran before it, resumed on its own, running', () => {
  const rig = running();
  const r = [...rig.engine.state.rollouts.values()][0]!;
  // The stop began after ro-1 was created: the server's follow-up holds only rollouts created since.
  assert.deepEqual(rig.engine.pauseAllRollouts('change freeze', 'alice', true, r.createdAtMs + 1), []);
  assert.equal(rig.engine.release(ARTIFACT, '1.1.0.0')?.hold ?? null, null);
  assert.equal(rig.of('rollout.paused').length, 0);
  // Created at or after the stop's start: held.
  assert.deepEqual(rig.engine.pauseAllRollouts('change freeze', 'alice', true, r.createdAtMs).map((x) => x.id), [r.id]);
  assert.equal(rig.engine.release(ARTIFACT, '1.1.0.0')?.hold?.reason, `${FLEET_STOP}alice: change freeze`);
});
