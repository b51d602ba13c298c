/** The invariant checker itself: each safety invariant, broken on purpose in a hand-written log, is reported. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { baseScenario, simulate } from './helpers/harness.js';
import { symmetricPairs } from '../src/model/fleet.js';

const pairs = new Map([['east', 'west'], ['west', 'east']]);
const artifact = { kind: 'extension' as const, publisher: 'P', type: 'A' };
let seq = 0;
const at = (minute: number) => new Date(Date.UTC(2026, 0, 5, 0, minute)).toISOString();

function ev(minute: number, body: Record<string, unknown>): EngineEvent {
  return { seq: ++seq, time: at(minute), ...body } as unknown as EngineEvent;
}
const created = (phases: string[][], profile = 'standard') => ev(0, { type: 'rollout.created', rolloutId: 'r', artifact, toVersion: '1.1.0.0', profile, phases, eligible: 10, reason: '' });
const phase = (minute: number, type: string, n: number) => ev(minute, { type, rolloutId: 'r', phase: n, regions: [] });
const batch = (minute: number, type: string, id: string, scope: Record<string, unknown>, instances = ['m1'], extra: Record<string, unknown> = {}) =>
  ev(minute, { type, rolloutId: 'r', batchId: id, scope: { subscription: 's', ...scope }, instances, reason: '', ...extra });
const instance = (minute: number, type: string, machineId: string, batchId: string, extra: Record<string, unknown> = {}) =>
  ev(minute, { type, rolloutId: 'r', batchId, machineId, placement: {}, artifact, attempt: 1, fromVersion: '1.0.0.0', toVersion: '1.1.0.0', ...extra });

function check(events: EngineEvent[]): string[] {
  const c = new InvariantChecker({ pairs });
  c.onEvents(events);
  return c.finish();
}

describe('InvariantChecker', () => {
  test('R10: a phase holding both regions of a geo-pair', () => {
    assert.match(check([created([['east', 'west']])]).join(), /geo-pair/);
  });
  test('R10: batches in both regions of a pair at once', () => {
    const v = check([created([['east'], ['west']]), phase(1, 'phase.started', 0), phase(2, 'phase.completed', 0), phase(3, 'phase.started', 1),
      batch(4, 'batch.started', 'b1', { region: 'east', zone: null }), batch(5, 'batch.started', 'b2', { region: 'west', zone: null })]);
    assert.match(v.join(), /geo-pair west has one in flight|its geo-pair east/);
  });
  test('R10: a phase started before its predecessor completed, and a batch before its phase', () => {
    const v = check([created([['east'], ['west']]), phase(1, 'phase.started', 0), phase(2, 'phase.started', 1), batch(3, 'batch.started', 'b', { region: 'east', zone: null })]);
    assert.match(v.join(), /phase 1 started before phase 0 completed/);
    const w = check([created([['east'], ['west']]), phase(1, 'phase.started', 0), batch(3, 'batch.started', 'b', { region: 'west', zone: null })]);
    assert.match(w.join(), /before its phase 1 started/);
  });
  test('R11: two zones of a region at once', () => {
    const v = check([created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b1', { region: 'east', zone: '1' }), batch(3, 'batch.started', 'b2', { region: 'east', zone: '2' })]);
    assert.match(v.join(), /zone 2 of east started while zone 1/);
  });
  test('R13: two batches of one set at once, also across rollouts', () => {
    const v = check([created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b1', { region: 'east', zone: '1', setId: 'ss', updateDomain: 0 }), batch(3, 'batch.started', 'b2', { region: 'east', zone: '1', setId: 'ss', updateDomain: 1 })]);
    assert.match(v.join(), /second batch of set ss/);
  });
  test('R14: a batch above its limit, and a whole set at once', () => {
    const v = check([created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b1', { region: 'east', zone: '1', setId: 'ss' }, ['a', 'b', 'c'], { limit: 2, setSize: 3 })]);
    assert.match(v.join(), /above the batch limit 2/);
    assert.match(v.join(), /whole set of 3/);
  });
  test('R22: an unhealthy instance never rolled back', () => {
    const v = check([created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b', { region: 'east', zone: null }), instance(2, 'instance.upgrade.started', 'm1', 'b'), instance(8, 'instance.health.unhealthy', 'm1', 'b')]);
    assert.match(v.join(), /never rolled back/);
  });
  test('R5 and R1: an attempt after an opt-out, and one across majors', () => {
    const v = check([ev(0, { type: 'autoUpgrade.changed', machineId: 'm1', artifactKey: 'extension:p.a', enabled: false, caller: 'op' }), created([['east']]), phase(1, 'phase.started', 0),
      batch(2, 'batch.started', 'b', { region: 'east', zone: null }, ['m1', 'm2']), instance(2, 'instance.upgrade.started', 'm1', 'b'), instance(2, 'instance.upgrade.started', 'm2', 'b', { toVersion: '2.0.0.0' })]);
    assert.match(v.join(), /m1 attempted after its automatic upgrade was disabled/);
    assert.match(v.join(), /across majors 1.0.0.0 → 2.0.0.0/);
  });
  test('the same attempt started twice, an instance outside its batch, and seq going back', () => {
    const events = [created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b', { region: 'east', zone: null }), instance(2, 'instance.upgrade.started', 'm1', 'b'), instance(3, 'instance.upgrade.started', 'm1', 'b'), instance(4, 'instance.upgrade.started', 'm9', 'nope')];
    const v = check(events);
    assert.match(v.join(), /attempt 1 of m1 started again/);
    assert.match(v.join(), /m9 started outside an in-flight batch/);
    const back = { ...events[3]!, seq: 1 } as EngineEvent;
    assert.match(check([...events.slice(0, 3), back]).join(), /seq did not increase/);
  });
  test('R22: a second rollout upgrading an instance while another rollout\'s attempt on it is in flight', () => {
    const second = (minute: number, type: string, extra: Record<string, unknown> = {}) => ({ ...ev(minute, { type, ...extra }), rolloutId: 'r2' }) as EngineEvent;
    const start = [created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b', { region: 'east', zone: null }), instance(2, 'instance.upgrade.started', 'm1', 'b'),
      { ...created([['east']]), rolloutId: 'r2', toVersion: '1.2.0.0' } as EngineEvent, second(3, 'phase.started', { phase: 0, regions: [] }),
      second(3, 'batch.started', { batchId: 'c', scope: { subscription: 's', region: 'west', zone: null }, instances: ['m1'], reason: '' })];
    const upgrade2 = second(4, 'instance.upgrade.started', { batchId: 'c', machineId: 'm1', placement: {}, artifact, attempt: 1, fromVersion: '1.0.0.0', toVersion: '1.2.0.0' });
    assert.match(check([...start, upgrade2]).join(), /m1 upgraded while rollout r has an attempt in flight on it/);
    // Once the first attempt settled (here: rolled back), the second may go.
    const settled = [instance(3, 'instance.upgrade.failed', 'm1', 'b'), instance(3, 'instance.rollback.started', 'm1', 'b'), instance(4, 'instance.rollback.succeeded', 'm1', 'b')];
    assert.deepEqual(check([...start, ...settled, { ...upgrade2, seq: ++seq }]).filter((v) => /in flight on it/.test(v)), []);
  });
  test('attempt numbers are kept per machine however many machines the log names (its arrays grow)', () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `m${i}`);
    const events = [created([['east']]), phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b', { region: 'east', zone: null }, ids)];
    for (const id of ids) events.push(instance(2, 'instance.upgrade.started', id, 'b'), instance(2, 'instance.upgrade.succeeded', id, 'b'));
    assert.deepEqual(check(events), []);
    const again = [...events, instance(4, 'instance.upgrade.started', 'm2999', 'b'), instance(4, 'instance.upgrade.started', 'm7', 'b', { attempt: 2 })];
    assert.deepEqual(check(again).map((v) => v.replace(/^seq \d+ \S+ /, '')), ['instance.upgrade.started: attempt 1 of m2999 started again (last was 1)']);
  });
  test('attempt numbers are kept per rollout when rollouts of one artifact take turns on a machine', () => {
    const second = (minute: number, type: string, extra: Record<string, unknown> = {}) => ({ ...ev(minute, { type, ...extra }), rolloutId: 'r2' }) as EngineEvent;
    const on1 = { batchId: 'c', machineId: 'm1', placement: {}, artifact, fromVersion: '1.0.0.0', toVersion: '1.2.0.0' };
    const upgrade2 = (minute: number, attempt: number) => second(minute, 'instance.upgrade.started', { ...on1, attempt });
    const done2 = (minute: number) => second(minute, 'instance.upgrade.succeeded', { ...on1, attempt: 1 });
    const events = [created([['east']]), { ...created([['east']]), rolloutId: 'r2', toVersion: '1.2.0.0' } as EngineEvent,
      phase(1, 'phase.started', 0), batch(2, 'batch.started', 'b', { region: 'east', zone: null }), second(2, 'phase.started', { phase: 0, regions: [] }),
      second(2, 'batch.started', { batchId: 'c', scope: { subscription: 's', region: 'east', zone: null }, instances: ['m1'], reason: '' }),
      // r starts attempt 2, r2 its attempt 1, then r its attempt 3 and r2 its attempt 2: each rollout's numbers grow.
      instance(3, 'instance.upgrade.started', 'm1', 'b', { attempt: 2 }), instance(3, 'instance.upgrade.succeeded', 'm1', 'b'), upgrade2(4, 1), done2(4),
      instance(5, 'instance.upgrade.started', 'm1', 'b', { attempt: 3 }), instance(5, 'instance.upgrade.succeeded', 'm1', 'b'), upgrade2(6, 2), done2(6)];
    assert.deepEqual(check(events), []);
    // r starting attempt 3 again after r2 acted, and r2 its attempt 2 again after r did.
    const strip = (v: string[]) => v.map((x) => x.replace(/^seq \d+ \S+ /, ''));
    assert.deepEqual(strip(check([...events, instance(7, 'instance.upgrade.started', 'm1', 'b', { attempt: 3 })])), ['instance.upgrade.started: attempt 3 of m1 started again (last was 3)']);
    assert.deepEqual(strip(check([...events, instance(7, 'instance.upgrade.started', 'm1', 'b', { attempt: 4 }), instance(7, 'instance.upgrade.succeeded', 'm1', 'b'), upgrade2(8, 2)])),
      ['instance.upgrade.started: attempt 2 of m1 started again (last was 2)']);
  });
  test('a real simulated log holds every invariant', () => {
    const run = simulate(baseScenario({ failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.1, installFailure: 0.05 } } } }));
    const c = new InvariantChecker({ pairs: symmetricPairs([...run.scenario.state.fleet.regions.values()]) });
    c.onEvents(run.events);
    assert.deepEqual(c.finish(), []);
    assert.equal(c.checked, run.events.length);
  });
});
