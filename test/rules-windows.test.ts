/**
 * Maintenance windows in simulated rollouts (R70, R72, R40): scale sets that may only upgrade on weekend
 * nights, a rollout that cannot fit its bound and says so in its plan, emergency bypass of critical
 * releases, and assignments that change during a rollout. Scenarios are compiled and run by the real
 * compiler, simulator and engine; the logs are also checked by src/audit/windows.ts, itself tested here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DateTime } from 'luxon';
import { InvariantChecker } from '../src/audit/invariants.js';
import { WindowChecker } from '../src/audit/windows.js';
import type { EngineEvent, EventType } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import type { Plan } from '../src/planner/types.js';
import type { MaintenanceWindow } from '../src/schedule/window.js';
import { maintenanceWindow, windowAt } from '../src/schedule/window.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { baseScenario } from './helpers/harness.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

interface Run {
  sim: Simulation;
  events: EngineEvent[];
  /** Each rollout's plan as it was when the rollout was created, and how many batches had started then. */
  plans: Map<string, { plan: Plan; batchesBefore: number; createdMs: number }>;
  invariantViolations: string[];
  windowViolations: string[];
  of<T extends EventType>(type: T): Array<Extract<EngineEvent, { type: T }>>;
}

/**
 * Runs a scenario; `unionOf` (static assignments) feeds the window checker. `during` may act on the
 * simulation after each step (engine commands mid-run).
 */
function run(raw: unknown, unionOf: (machineId: string) => MaintenanceWindow[] = () => [], during?: (sim: Simulation, events: readonly EngineEvent[]) => void): Run {
  const scenario = compileScenario(raw, 'rules-windows');
  const events: EngineEvent[] = [];
  const plans: Run['plans'] = new Map();
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...scenario.state.fleet.regions.values()]) });
  const windows = new WindowChecker({ unionOf });
  let batches = 0;
  const sim: Simulation = new Simulation(scenario, {
    onEvents: (batch) => {
      invariants.onEvents(batch);
      windows.onEvents(batch);
      for (const e of batch) {
        events.push(e);
        if (e.type === 'batch.started') batches++;
        if (e.type === 'rollout.created') plans.set(e.rolloutId, { plan: structuredClone(sim.engine.state.rollouts.get(e.rolloutId)!.plan), batchesBefore: batches, createdMs: Date.parse(e.time) });
      }
    },
  });
  while (sim.step()) during?.(sim, events);
  return {
    sim,
    events,
    plans,
    invariantViolations: invariants.finish(),
    windowViolations: windows.finish(),
    of: <T extends EventType>(type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>,
  };
}

/** The scenario's configurations assigned to sets, as the window checker needs them. */
function unionsBySet(configs: Array<Record<string, unknown>>, assignments: Array<{ configuration: string; scaleSet: string }>): (id: string) => MaintenanceWindow[] {
  const parsed = new Map(configs.map((c) => [c.name as string, maintenanceWindow(c as never)]));
  return (id) => assignments.filter((a) => id.startsWith(`${a.scaleSet}/`) || id.startsWith(`${a.scaleSet}-vm`)).map((a) => parsed.get(a.configuration)!);
}

// ---------------------------------------------------------------------------------------------------
// (a) and (b): scale sets that may only upgrade on weekend nights

const US = 'America/Los_Angeles';
const EU = 'Europe/Berlin';
const weekendNights = (name: string, timeZone: string) => ({ name, startDateTime: '2026-01-03 22:00', duration: '06:00', timeZone, recurEvery: 'Week Saturday,Sunday' });
const CONFIGS = [weekendNights('us-weekend-nights', 'Pacific Standard Time'), weekendNights('eu-weekend-nights', 'W. Europe Standard Time')];
const SETS: Array<{ name: string; region: string; zones: string[]; capacity: number; eu: boolean }> = [
  { name: 'web-eus', region: 'eastus', zones: ['1', '2', '3'], capacity: 60, eu: false },
  { name: 'api-eus', region: 'eastus', zones: ['1', '2'], capacity: 20, eu: false },
  { name: 'web-wus', region: 'westus', zones: ['1', '2', '3'], capacity: 60, eu: false },
  { name: 'api-cus', region: 'centralus', zones: ['1', '2'], capacity: 40, eu: false },
  { name: 'batch-scus', region: 'southcentralus', zones: [], capacity: 30, eu: false },
  { name: 'web-weu', region: 'westeurope', zones: ['1', '2', '3'], capacity: 50, eu: true },
  { name: 'web-neu', region: 'northeurope', zones: ['1', '2', '3'], capacity: 50, eu: true },
];
const ASSIGNMENTS = SETS.map((s) => ({ configuration: s.eu ? 'eu-weekend-nights' : 'us-weekend-nights', scaleSet: s.name }));
const zoneOfMachine = (id: string) => (SETS.find((s) => id.startsWith(`${s.name}/`))!.eu ? EU : US);

function weekendScenario(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'weekend-nights',
    start: '2026-01-05T00:00:00Z', // a Monday
    seed: 3,
    horizon: 'P12W',
    regions: [
      { name: 'eastus', pair: 'westus', zones: ['1', '2', '3'] },
      { name: 'westus', pair: 'eastus', zones: ['1', '2', '3'] },
      { name: 'centralus', pair: 'southcentralus', zones: ['1', '2'] },
      { name: 'southcentralus', pair: 'centralus', zones: [] },
      { name: 'westeurope', pair: 'northeurope', zones: ['1', '2', '3'] },
      { name: 'northeurope', pair: 'westeurope', zones: ['1', '2', '3'] },
    ],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: { scaleSets: SETS.map((s) => ({ name: s.name, region: s.region, subscription: 'prod', zones: s.zones, capacity: s.capacity, extensions: ['agent'], applicationHealth: true })) },
    maintenance: { configurations: CONFIGS, assignments: ASSIGNMENTS },
    events: [{ at: 'P1DT3H', publish: { extension: 'agent', version: '1.1.0.0' } }], // Tuesday 03:00 UTC
    failures: { default: { installSeconds: { median: 60, p95: 240 }, healthSeconds: { median: 30, p95: 120 } } },
    ...overrides,
  };
}

/** Saturday or Sunday from 22:00, or the small hours of Sunday or Monday before 04:00, local time. */
function onWeekendNight(ms: number, zone: string): boolean {
  const t = DateTime.fromMillis(ms, { zone });
  return ((t.weekday === 6 || t.weekday === 7) && t.hour >= 22) || ((t.weekday === 7 || t.weekday === 1) && t.hour < 4);
}

/** The Saturday of the weekend a weekend-night instant belongs to (local date). */
function weekendOf(ms: number, zone: string): string {
  const t = DateTime.fromMillis(ms, { zone });
  return t.minus({ days: t.weekday === 6 ? 0 : t.weekday === 7 ? (t.hour >= 22 ? 1 : 0) + (t.hour < 4 ? 1 : 0) : 2 }).toISODate()!;
}

describe('weekend nights', () => {
  const r = run(weekendScenario(), unionsBySet(CONFIGS, ASSIGNMENTS));
  const publishedMs = Date.parse('2026-01-06T03:00:00Z');

  test('R70: every upgrade starts on a Saturday or Sunday night, local time of its set\'s window', () => {
    assert.deepEqual(r.invariantViolations, []);
    assert.deepEqual(r.windowViolations, []);
    const started = r.of('instance.upgrade.started');
    assert.equal(started.length, SETS.reduce((n, s) => n + s.capacity, 0));
    const outside = started.filter((e) => !onWeekendNight(Date.parse(e.time), zoneOfMachine(e.machineId)));
    assert.deepEqual(outside.map((e) => `${e.machineId} ${e.time}`), []);
    assert.ok(r.of('window.waiting').length > 0);
    assert.equal(r.of('window.bypassed').length, 0);
  });

  test('R70: the rollout stretches across several weekends', () => {
    const weekends = new Set(r.of('instance.upgrade.started').map((e) => weekendOf(Date.parse(e.time), zoneOfMachine(e.machineId))));
    assert.ok(weekends.size >= 3, `upgrades ran on ${[...weekends].join(', ')}`);
  });

  test('R40: the rollout completes within eight weeks of publication', () => {
    const done = r.of('rollout.completed');
    assert.equal(done.length, 1);
    assert.equal(r.sim.result().hitHorizon, false);
    assert.ok(Date.parse(done[0]!.time) - publishedMs <= 8 * WEEK, `completed ${done[0]!.time}`);
    assert.ok(Date.parse(done[0]!.time) - publishedMs > 2 * WEEK, 'weekend windows must stretch it beyond two weeks');
  });

  test('R40 R70: the plan fits the bound and places every windowed batch on a weekend night', () => {
    assert.equal(r.plans.size, 1);
    const { plan, batchesBefore } = [...r.plans.values()][0]!;
    assert.equal(batchesBefore, 0);
    assert.equal(plan.estimate.fitsBound, true, plan.estimate.notes.join('; '));
    assert.equal(plan.estimate.startMs, publishedMs);
    assert.ok(plan.estimate.totalMs > 2 * WEEK && plan.estimate.totalMs + plan.estimate.retryAllowanceMs <= 8 * WEEK);
    let placed = 0;
    for (const p of plan.phases) for (const reg of p.regions) for (const w of reg.waves) for (const u of w.units) {
      assert.ok(u.windowKey, `${u.id} has no window key`);
      const zone = SETS.find((s) => s.name === u.setId)!.eu ? EU : US;
      for (const b of u.batches) {
        assert.ok(b.window, `${b.id} has no window`);
        const start = plan.estimate.startMs + b.window.startMs;
        assert.ok(onWeekendNight(start, zone), `${b.id} planned at ${new Date(start).toISOString()}`);
        assert.ok(b.window.opensMs <= b.window.startMs && b.window.startMs < b.window.closesMs);
        placed++;
      }
    }
    assert.equal(placed, plan.batches);
    assert.equal(plan.estimate.windowedBatches, plan.batches);
  });

  test('R40: a bound the weekends cannot meet is in the plan before the rollout starts', () => {
    const tight = run(weekendScenario({ profiles: { standard: { bound: 'P2W' } } }), unionsBySet(CONFIGS, ASSIGNMENTS));
    const { plan, batchesBefore } = [...tight.plans.values()][0]!;
    assert.equal(batchesBefore, 0);
    assert.equal(plan.estimate.fitsBound, false);
    assert.ok(plan.estimate.notes.some((n) => /over the standard bound of 14 days \(R40\)/.test(n)), plan.estimate.notes.join('; '));
    // The windows still hold: the rollout is slow, not unsafe.
    assert.deepEqual(tight.windowViolations, []);
    const created = tight.of('rollout.created')[0]!;
    const firstBatch = tight.of('batch.started')[0]!;
    assert.ok(created.seq < firstBatch.seq);
  });
});

// ---------------------------------------------------------------------------------------------------
// (c) R72: emergency bypass, and (d) assignments that change during a rollout

/** Saturday nights 22:00–04:00 UTC; a release published on Monday is outside it. */
const saturdayNight = (emergencyBypass: boolean) => ({ name: 'sat-night', startDateTime: '2026-01-03 22:00', duration: '06:00', timeZone: 'UTC', recurEvery: 'Week Saturday', emergencyBypass });
const SAT = [Date.parse('2026-01-10T22:00:00Z'), Date.parse('2026-01-11T04:00:00Z')] as const;

function smallScenario(overrides: Record<string, unknown>): Record<string, unknown> {
  return baseScenario({
    canaryRegions: ['east'],
    fleet: { scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] }] },
    ...overrides,
  });
}

describe('R72: emergency bypass', () => {
  const critical = { events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', critical: true } }] };

  test('R72: a critical release starts outside the window where the configuration allows it, and each such batch is recorded before it starts', () => {
    const r = run(smallScenario({ ...critical, maintenance: { configurations: [saturdayNight(true)], assignments: [{ configuration: 'sat-night', scaleSet: 'ss-east' }] } }));
    const bypassed = r.of('window.bypassed');
    const batches = r.of('batch.started');
    assert.ok(batches.length > 0);
    assert.equal(bypassed.length, batches.length, 'every batch went outside the window');
    for (const b of batches) {
      const rec = bypassed.find((e) => e.batchId === b.batchId);
      assert.ok(rec, `${b.batchId} has no window.bypassed`);
      assert.ok(rec.seq < b.seq, `${b.batchId}: bypass recorded after the batch started`);
      assert.deepEqual(rec.configurations, ['sat-night']);
      assert.match(rec.reason, /R72/);
      assert.ok(Date.parse(b.time) < SAT[0]);
    }
    assert.equal(r.of('window.waiting').length, 0);
    assert.equal(r.of('rollout.completed').length, 1);
  });

  test('R72: without emergency bypass a critical release waits for the window', () => {
    const configs = [saturdayNight(false)];
    const assignments = [{ configuration: 'sat-night', scaleSet: 'ss-east' }];
    const r = run(smallScenario({ ...critical, maintenance: { configurations: configs, assignments } }), unionsBySet(configs, assignments));
    assert.equal(r.of('window.bypassed').length, 0);
    const waiting = r.of('window.waiting');
    assert.ok(waiting.length > 0);
    assert.equal(Date.parse(waiting[0]!.opensAt!), SAT[0]);
    assert.deepEqual(waiting[0]!.configurations, ['sat-night']);
    assert.deepEqual(r.windowViolations, []);
    for (const b of r.of('batch.started')) assert.ok(Date.parse(b.time) >= SAT[0] && Date.parse(b.time) < SAT[1], `${b.batchId} at ${b.time}`);
    assert.equal(r.of('rollout.completed').length, 1);
  });

  test('R72: a standard release never bypasses, even where the configuration allows it', () => {
    const r = run(smallScenario({ maintenance: { configurations: [saturdayNight(true)], assignments: [{ configuration: 'sat-night', scaleSet: 'ss-east' }] } }));
    assert.equal(r.of('window.bypassed').length, 0);
    assert.ok(r.of('window.waiting').length > 0);
    for (const b of r.of('batch.started')) assert.ok(Date.parse(b.time) >= SAT[0], `${b.batchId} at ${b.time}`);
  });
});

describe('R70: assignments that change during a rollout', () => {
  /** Many small batches with pauses: the set's part of the rollout takes hours. */
  const slowSet = { scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 60, extensions: ['agent'], upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxBatchInstancePercent: 5, pauseTimeBetweenBatches: 'PT20M' } } }] };
  const setBatches = (r: Run) => r.of('batch.started').filter((e) => e.scope.setId === 'ss-east');

  test('R70: a window assigned mid-rollout is honoured from the next batch', () => {
    const assignAt = Date.parse('2026-01-05T04:00:00Z');
    const r = run(smallScenario({
      fleet: slowSet,
      maintenance: { configurations: [saturdayNight(false)] },
      events: [
        { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
        { at: 'PT4H', assignMaintenance: { configuration: 'sat-night', scaleSet: 'ss-east' } },
      ],
    }));
    const changed = r.of('maintenance.changed');
    assert.deepEqual(changed.map((e) => `${e.action} ${e.configuration} ${e.targets.join(',')} ${e.caller}`), ['put sat-night  scenario', 'assign sat-night ss-east scenario']);
    const batches = setBatches(r);
    const before = batches.filter((b) => Date.parse(b.time) < assignAt);
    const after = batches.filter((b) => Date.parse(b.time) >= assignAt);
    assert.ok(before.length >= 3, `${before.length} batches before the assignment`);
    assert.ok(after.length >= 3, `${after.length} batches after the assignment`);
    assert.ok(Date.parse(after[0]!.time) >= SAT[0], `first batch after the assignment at ${after[0]!.time}`);
    const w = maintenanceWindow(saturdayNight(false));
    for (const b of after) assert.ok(windowAt(w, Date.parse(b.time)) !== null, `${b.batchId} at ${b.time}`);
    const waiting = r.of('window.waiting').filter((e) => e.scope.setId === 'ss-east');
    assert.ok(waiting.length > 0);
    assert.ok(Date.parse(waiting[0]!.time) >= assignAt && Date.parse(waiting[0]!.time) < assignAt + HOUR, `waited from ${waiting[0]!.time}`);
    assert.equal(Date.parse(waiting[0]!.opensAt!), SAT[0]);
    assert.equal(r.of('rollout.completed').length, 1);
  });

  test('R70: unassigning the window wakes the waiting unit at once', () => {
    const r = run(smallScenario({
      maintenance: { configurations: [saturdayNight(false)], assignments: [{ configuration: 'sat-night', scaleSet: 'ss-east' }] },
      events: [
        { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
        { at: 'P2DT7H13M', unassignMaintenance: { configuration: 'sat-night', scaleSet: 'ss-east' } },
      ],
    }));
    const at = Date.parse('2026-01-07T07:13:00Z');
    const waiting = r.of('window.waiting');
    assert.ok(waiting.length > 0 && Date.parse(waiting[0]!.time) < at);
    const batches = setBatches(r);
    assert.equal(Date.parse(batches[0]!.time), at, `first batch at ${batches[0]!.time}`);
    assert.ok(r.of('maintenance.changed').some((e) => e.action === 'unassign' && e.seq < batches[0]!.seq));
  });

  test('R70: deleting the configuration wakes the waiting unit at once', () => {
    let deletedAt: number | null = null;
    const r = run(smallScenario({
      maintenance: { configurations: [saturdayNight(false)], assignments: [{ configuration: 'sat-night', scaleSet: 'ss-east' }] },
    }), () => [], (sim, events) => {
      if (deletedAt !== null || !events.some((e) => e.type === 'window.waiting')) return;
      sim.clock.set(sim.clock.now() + 5 * HOUR);
      deletedAt = sim.clock.now();
      sim.engine.deleteMaintenanceConfiguration('sat-night', 'test');
    });
    assert.ok(deletedAt !== null && deletedAt < SAT[0]);
    const batches = setBatches(r);
    assert.equal(Date.parse(batches[0]!.time), deletedAt, `first batch at ${batches[0]!.time}`);
    const deleted = r.of('maintenance.changed').find((e) => e.action === 'delete')!;
    assert.deepEqual(deleted.targets, ['ss-east']);
    assert.ok(deleted.seq < batches[0]!.seq);
    assert.equal(r.of('rollout.completed').length, 1);
  });
});

// ---------------------------------------------------------------------------------------------------
// The window checker itself: it must be able to fail.

describe('R70 R72: the window checker', () => {
  const w = maintenanceWindow(saturdayNight(false));
  const placement = { region: 'east', zone: null, setId: 'ss', updateDomain: 0, faultDomain: 0, subscription: 's', kind: 'scaleSet' } as never;
  const artifact = { kind: 'extension', publisher: 'P', type: 'A' } as const;
  let seq = 0;
  const ev = (time: string, body: Record<string, unknown>): EngineEvent => ({ seq: ++seq, time, ...body }) as EngineEvent;
  const created = (profile: string) => ev('2026-01-05T00:00:00.000Z', { type: 'rollout.created', rolloutId: 'ro-1', artifact, toVersion: '1.1.0.0', profile, phases: [['east']], eligible: 1, reason: '' });
  const batch = (type: 'batch.started' | 'batch.completed', time: string) => ev(time, { type, rolloutId: 'ro-1', batchId: 'b0', scope: { region: 'east', subscription: 's' }, instances: ['ss/0'], reason: '' });
  const upgrade = (time: string) => ev(time, { type: 'instance.upgrade.started', rolloutId: 'ro-1', batchId: 'b0', machineId: 'ss/0', placement, artifact, attempt: 1, fromVersion: '1.0.0.0', toVersion: '1.1.0.0' });
  const check = (events: EngineEvent[], union: MaintenanceWindow[] = [w]) => {
    const c = new WindowChecker({ unionOf: () => union });
    c.onEvents(events);
    return c.finish();
  };

  test('flags an upgrade and a batch outside the window, and a batch that overruns it', () => {
    const outside = check([created('standard'), batch('batch.started', '2026-01-06T10:00:00.000Z'), upgrade('2026-01-06T10:00:00.000Z'), batch('batch.completed', '2026-01-06T10:10:00.000Z')]);
    assert.equal(outside.length, 2, outside.join('\n'));
    assert.match(outside[1]!, /started outside its maintenance windows/);
    const overrun = check([created('standard'), batch('batch.started', '2026-01-11T03:00:00.000Z'), upgrade('2026-01-11T03:00:00.000Z'), batch('batch.completed', '2026-01-11T04:00:01.000Z')]);
    assert.equal(overrun.length, 1);
    assert.match(overrun[0]!, /overran the maintenance window of ss\/0, which closed at 2026-01-11T04:00:00.000Z/);
  });

  test('accepts work inside the window, manual rollouts, machines without windows and recorded bypasses of critical rollouts', () => {
    assert.deepEqual(check([created('standard'), batch('batch.started', '2026-01-10T22:00:00.000Z'), upgrade('2026-01-10T22:00:00.000Z'), batch('batch.completed', '2026-01-11T04:00:00.000Z')]), []);
    assert.deepEqual(check([created('manual'), batch('batch.started', '2026-01-06T10:00:00.000Z'), upgrade('2026-01-06T10:00:00.000Z')]), []);
    assert.deepEqual(check([created('standard'), batch('batch.started', '2026-01-06T10:00:00.000Z'), upgrade('2026-01-06T10:00:00.000Z')], []), []);
    const bypass = (profile: string) => [created(profile), ev('2026-01-06T10:00:00.000Z', { type: 'window.bypassed', rolloutId: 'ro-1', batchId: 'b0', scope: { region: 'east', subscription: 's' }, configurations: ['sat-night'], reason: '' }), batch('batch.started', '2026-01-06T10:00:00.000Z'), upgrade('2026-01-06T10:00:00.000Z')];
    assert.deepEqual(check(bypass('critical')), []);
    assert.match(check(bypass('standard')).join('\n'), /only critical releases may \(R72\)/);
  });
});
