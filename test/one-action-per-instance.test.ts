/**
 * One action at a time per instance (R22, R30): a rollout never starts an upgrade on an instance while
 * another rollout of the same extension has an attempt in flight on it (a release superseded mid-upgrade,
 * a manual upgrade beside an automatic one). Before, both acted at once: the second upgrade started from
 * the version the first was leaving, and its rollback went to whatever the first had just installed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { simulate } from './helpers/harness.js';
import type { Run } from './helpers/harness.js';

function scenario(events: unknown[], failures: Record<string, unknown>, catalog = [{ version: '1.0.0.0' }]): Record<string, unknown> {
  return {
    name: 'one-action',
    start: '2026-03-02T00:00:00Z',
    seed: 935208,
    regions: [{ name: 'r0', pair: null, zones: [] }],
    catalog: [{ publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: catalog }],
    extensions: { agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: { vms: [{ name: 'vm', region: 'r0', subscription: 's1', count: 3, extensions: ['agent'] }] },
    events,
    failures,
  };
}

/** Each upgrade attempt's interval on its instance, from its start to its success or the end of its rollback. */
function actions(run: Run): Array<{ machine: string; rollout: string; from: string; start: number; end: number; rollbackTo?: string }> {
  const open = new Map<string, { machine: string; rollout: string; from: string; start: number; end: number; rollbackTo?: string }>();
  const out: Array<{ machine: string; rollout: string; from: string; start: number; end: number; rollbackTo?: string }> = [];
  for (const e of run.events) {
    if (!('attempt' in e) || !('machineId' in e)) continue;
    const key = `${e.rolloutId}|${e.machineId}|${e.attempt}`;
    const t = e.seq;
    if (e.type === 'instance.upgrade.started') {
      const a = { machine: e.machineId, rollout: e.rolloutId, from: e.fromVersion, start: t, end: Number.POSITIVE_INFINITY };
      open.set(key, a);
      out.push(a);
    }
    const a = open.get(key);
    if (!a) continue;
    if (e.type === 'instance.rollback.started') a.rollbackTo = e.toVersion;
    if (e.type === 'instance.upgrade.succeeded' || e.type === 'instance.rollback.succeeded' || e.type === 'instance.rollback.failed' || e.type === 'instance.rollback.skipped') a.end = t;
  }
  return out;
}

function assertOneAtATime(run: Run): void {
  const checker = new InvariantChecker({ pairs: symmetricPairs([...run.scenario.state.fleet.regions.values()]) });
  checker.onEvents(run.events as EngineEvent[]);
  assert.deepEqual(checker.finish(), []);
  const all = actions(run);
  for (const a of all) {
    for (const b of all) {
      if (a === b || a.machine !== b.machine) continue;
      assert.ok(a.end < b.start || b.end < a.start, `${a.rollout} and ${b.rollout} acted on ${a.machine} at once`);
    }
    if (a.rollbackTo !== undefined) assert.equal(a.rollbackTo, a.from, `${a.rollout}'s rollback of ${a.machine} returns to the version its upgrade came from`);
  }
}

test('R22: a release superseded while its upgrades are in flight: the new rollout waits for them, starts from what they left, and rolls back to it', () => {
  const run = simulate(scenario(
    [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }, { at: 'PT1H', publish: { extension: 'agent', version: '1.2.0.0' } }],
    { versions: { '1.2.0.0': { installFailure: 1 } } },
  ));
  assert.deepEqual(run.of('rollout.cancelled').map((e) => e.reason), ['superseded by 1.2.0.0']);
  const first = run.of('instance.upgrade.started').filter((e) => e.rolloutId === 'ro-1');
  assert.ok(first.length > 0, 'the superseded rollout had an upgrade in flight');
  const second = run.of('instance.upgrade.started').filter((e) => e.rolloutId === 'ro-2');
  for (const e of second.filter((s) => first.some((f) => f.machineId === s.machineId))) assert.equal(e.fromVersion, '1.1.0.0', `${e.machineId} starts from what ro-1 installed`);
  assert.ok(run.of('instance.rollback.started').some((e) => e.rolloutId === 'ro-2' && e.toVersion === '1.1.0.0'));
  assertOneAtATime(run);
});

test('R6, R22: a manual upgrade to another major beside an automatic rollout never acts on an instance the other has in flight', () => {
  const run = simulate(scenario(
    [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }, { at: 'PT1H', manualUpgrade: { extension: 'agent', version: '2.0.0.0' } }],
    { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.5 } } },
    [{ version: '1.0.0.0' }, { version: '2.0.0.0' }],
  ));
  const manual = run.of('rollout.created').find((e) => e.profile === 'manual')!;
  const reached = new Set(run.of('instance.upgrade.started').filter((e) => e.rolloutId === manual.rolloutId).map((e) => e.machineId));
  assert.equal(reached.size, 3, 'the manual upgrade still reached every machine (R6), once the automatic attempts settled');
  assertOneAtATime(run);
});

test('sim: an upgrade still in flight in a superseded rollout finishes, in the log, even once every rollout is over', () => {
  // ro-1's slow upgrade of a-0 is in flight when 1.2.0.0 (r1 only) supersedes it; ro-2 completes first.
  // Before, the simulation stopped there, and a-0's upgrade never had an outcome in the log.
  const run = simulate({
    ...scenario([{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }, { at: 'PT1H1M', publish: { extension: 'agent', version: '1.2.0.0', regions: ['r1'] } }],
      { versions: { '1.1.0.0': { installSeconds: { median: 3000, p95: 3000 } } } }),
    regions: [{ name: 'r0', pair: null, zones: [] }, { name: 'r1', pair: null, zones: [] }],
    canaryRegions: ['r0'],
    fleet: { vms: [{ name: 'a', region: 'r0', subscription: 's1', count: 1, extensions: ['agent'] }, { name: 'b', region: 'r1', subscription: 's2', count: 1, extensions: ['agent'] }] },
  });
  const completed = run.of('rollout.completed');
  assert.deepEqual(completed.map((e) => e.rolloutId), ['ro-2']);
  const done = run.of('instance.upgrade.succeeded').find((e) => e.rolloutId === 'ro-1' && e.machineId === 'a-0');
  assert.ok(done, 'the superseded rollout\'s upgrade of a-0 has its outcome in the log');
  assert.ok(done.seq > completed[0]!.seq, 'it settled after the last rollout completed');
  assert.equal(run.engine.state.fleet.instances.get('extension:p.agent')!.get('a-0')!.status, 'Succeeded', 'a-0 is not left Transitioning');
});
