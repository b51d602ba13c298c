/**
 * R1–R6: which versions an instance is offered, who opts in, what install picks, opt-out, manual upgrades.
 * Pure table tests of the version rules and the catalog, then end-to-end runs of the real engine on the
 * simulator whose event logs are checked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { automaticTarget, autoUpgradeState, Catalog, installVersion } from '../src/catalog/catalog.js';
import type { PublishedVersion } from '../src/catalog/catalog.js';
import { ManualClock } from '../src/engine/clock.js';
import { Engine } from '../src/engine/engine.js';
import type { ExtensionInstance } from '../src/model/artifact.js';
import type { EngineEvent } from '../src/model/events.js';
import type { OsType } from '../src/model/fleet.js';
import { compareVersions, isVersion, isVersionPrefix, matchesPrefix, newest } from '../src/model/version.js';
import { SimDriver } from '../src/drivers/sim/sim-driver.js';
import { compileScenario } from '../src/sim/scenario.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { baseScenario, simulate } from './helpers/harness.js';
import type { Run } from './helpers/harness.js';

const AGENT_KEY = 'extension:contoso.agent';
const START = Date.parse('2026-01-05T00:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// ---- helpers -------------------------------------------------------------------------------------

function catalogWith(versions: Array<string | (Partial<PublishedVersion> & { version: string })>, supports = true): Catalog {
  const c = new Catalog();
  c.addType('Contoso', 'Agent', supports);
  for (const v of versions) {
    const spec = typeof v === 'string' ? { version: v } : v;
    c.publish('Contoso', 'Agent', { os: ['linux', 'windows'], regions: null, publishedAtMs: 0, critical: false, digest: null, ...spec });
  }
  return c;
}

function instance(installed: string, over: Partial<ExtensionInstance> = {}): ExtensionInstance {
  return {
    machineId: 'm1',
    artifactKey: AGENT_KEY,
    name: 'agent',
    publisher: 'Contoso',
    type: 'Agent',
    typeHandlerVersion: installed.split('.').slice(0, 2).join('.'),
    autoUpgradeMinorVersion: true,
    settings: {},
    desiredVersion: installed,
    installedVersion: installed,
    lastKnownGoodVersion: installed,
    enableAutomaticUpgrade: true,
    status: 'Succeeded',
    blockedReason: null,
    ...over,
  };
}

const LINUX_EAST = { os: 'linux' as OsType, region: 'east' };

/** One region without a pair, so a rollout is a single phase; the scenario's fleet and events are given. */
function oneRegion(overrides: Record<string, unknown>): Record<string, unknown> {
  return baseScenario({
    regions: [{ name: 'east', pair: null, zones: [] }],
    horizon: 'P3W',
    ...overrides,
  });
}

function ms(iso: string): number {
  return Date.parse(iso);
}

type InstanceEvent = Extract<EngineEvent, { machineId: string; artifact: unknown }>;

function instanceEvents(run: Run, type: InstanceEvent['type']): InstanceEvent[] {
  return run.events.filter((e) => e.type === type) as InstanceEvent[];
}

function machinesStarted(run: Run, toVersion?: string): Set<string> {
  return new Set(
    run.of('instance.upgrade.started').filter((e) => toVersion === undefined || e.toVersion === toVersion).map((e) => e.machineId),
  );
}

function installedOf(run: Run, machineId: string, key = AGENT_KEY): string {
  const inst = run.engine.state.fleet.instances.get(key)?.get(machineId);
  assert.ok(inst, `no ${key} on ${machineId}`);
  return inst.installedVersion;
}

/**
 * The simulator's loop, with a hook after every tick so a test can call engine commands at an exact
 * point of the rollout (the way an operator would through the API).
 */
function steppedRun(raw: unknown, hook: (engine: Engine, fresh: readonly EngineEvent[]) => void): { engine: Engine; events: readonly EngineEvent[] } {
  const scenario = compileScenario(raw, 'inline-stepped');
  const clock = new ManualClock(scenario.startMs);
  const driver = new SimDriver(scenario.state.fleet, scenario.behaviour, () => clock.now(), scenario.seed);
  const store = new MemoryStore();
  const engine = new Engine({ clock, driver, store, state: scenario.state, profiles: scenario.profiles });
  const horizon = scenario.startMs + scenario.horizonMs;
  let next = 0;
  let seen = 0;
  for (let guard = 0; guard < 1_000_000; guard++) {
    const busy = next < scenario.actions.length || [...engine.state.rollouts.values()].some((r) => r.status === 'running');
    if (!busy) break;
    const candidates = [scenario.actions[next]?.atMs ?? null, driver.nextAt(), engine.nextWakeAt()].filter((t): t is number => t !== null);
    if (candidates.length === 0) break;
    const t = Math.min(...candidates);
    if (t > horizon) break;
    clock.set(Math.max(t, clock.now()));
    while (next < scenario.actions.length && scenario.actions[next]!.atMs <= t) {
      const a = scenario.actions[next++]!;
      if (a.kind === 'publish') engine.publishVersion(a.publisher, a.type, a.version);
      else if (a.kind === 'supportAutomaticUpgrade') engine.setTypeSupport(a.publisher, a.type, a.supported);
      else if (a.kind === 'setAutomaticUpgrade') for (const id of a.machineIds) engine.setAutomaticUpgrade(id, a.artifactKey, a.enabled, 'scenario');
      else if (a.kind === 'manualUpgrade') engine.manualUpgrade({ artifact: a.artifact, machineIds: a.machineIds, toVersion: a.version, caller: 'scenario' });
    }
    driver.deliverDue(t, (o) => engine.observe(o));
    engine.tick();
    const all = store.events();
    const fresh = all.slice(seen);
    seen = all.length;
    if (fresh.length > 0) hook(engine, fresh);
  }
  return { engine, events: store.events() };
}

// ---- version arithmetic (the ground R1 and R4 stand on) -----------------------------------------

test('R1: four-part versions compare numerically part by part, so 1.10.0.0 is newer than 1.9.0.0', () => {
  const table: Array<[string, string, -1 | 0 | 1]> = [
    ['1.10.0.0', '1.9.0.0', 1],
    ['1.9.0.0', '1.10.0.0', -1],
    ['1.0.10.0', '1.0.9.0', 1],
    ['1.0.0.10', '1.0.0.9', 1],
    ['2.0.0.0', '1.99.99.99', 1],
    ['0.9.0.0', '1.0.0.0', -1],
    ['1.2.3.4', '1.2.3.4', 0],
    ['1.2.3.4', '1.2.3.5', -1],
  ];
  for (const [a, b, sign] of table) assert.equal(Math.sign(compareVersions(a, b)), sign, `${a} vs ${b}`);
  assert.equal(newest(['1.9.0.0', '1.10.0.0', '1.2.0.0']), '1.10.0.0');
  assert.equal(newest([]), undefined);
});

test('R1: only exact four-part versions are versions; typeHandlerVersion may be a one-to-four-part prefix', () => {
  const versions: Array<[string, boolean]> = [
    ['1.2.3.4', true], ['0.0.0.0', true], ['1.2.3', false], ['1.2.3.4.5', false], ['01.2.3.4', false], ['a.b.c.d', false], ['', false], ['1..3.4', false],
  ];
  for (const [v, ok] of versions) assert.equal(isVersion(v), ok, v);
  const prefixes: Array<[string, boolean]> = [['1', true], ['1.30', true], ['1.30.2', true], ['1.30.2.0', true], ['1.30.', false], ['1.2.3.4.5', false], ['x', false]];
  for (const [p, ok] of prefixes) assert.equal(isVersionPrefix(p), ok, p);
});

test('R4: prefix matching is by whole numbers, never by text (1.30 does not match 1.3.x or 1.300.x)', () => {
  const table: Array<[string, string, boolean]> = [
    ['1.30.2.0', '1.30', true],
    ['1.30.2.0', '1', true],
    ['1.30.2.0', '1.30.2.0', true],
    ['1.3.0.0', '1.30', false],
    ['1.300.0.0', '1.30', false],
    ['2.30.2.0', '1', false],
    ['1.30.2.1', '1.30.2.0', false],
    ['10.0.0.0', '1', false],
  ];
  for (const [v, p, ok] of table) assert.equal(matchesPrefix(v, p), ok, `${v} ~ ${p}`);
});

// ---- R1 ------------------------------------------------------------------------------------------

test('R1: the automatic target is the newest version within the installed major, never the next major', () => {
  const c = catalogWith(['1.0.0.0', '1.2.0.0', '1.10.0.0', '1.9.5.0', '2.0.0.0', '2.1.0.0', '3.0.0.0']);
  const table: Array<[string, string | null]> = [
    ['1.0.0.0', '1.10.0.0'],
    ['1.9.5.0', '1.10.0.0'],
    ['1.10.0.0', null],
    ['2.0.0.0', '2.1.0.0'],
    ['2.1.0.0', null],
    ['3.0.0.0', null],
  ];
  for (const [installed, target] of table) {
    const e = automaticTarget(c, instance(installed), LINUX_EAST, 1);
    assert.equal(e.target, target, `installed ${installed}: ${e.reason}`);
  }
});

test('R1: an older version published later is never a target (no automatic downgrade)', () => {
  const c = catalogWith(['1.0.0.0', '1.5.0.0']);
  c.publish('Contoso', 'Agent', { version: '1.4.0.0', os: ['linux'], regions: null, publishedAtMs: 10, critical: false, digest: null });
  assert.equal(automaticTarget(c, instance('1.5.0.0'), LINUX_EAST, 100).target, null);
  assert.equal(automaticTarget(c, instance('1.4.5.0'), LINUX_EAST, 100).target, '1.5.0.0');
});

test('R1: publishing 2.0.0.0 starts no automatic upgrade of 1.x instances; a later 1.1.0.0 does', () => {
  const run = simulate(oneRegion({
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    fleet: {
      scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 5, extensions: ['agent'] }],
      arcMachines: [{ name: 'arc', region: 'east', subscription: 'sub2', count: 3, extensions: ['agent'] }],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '2.0.0.0' } },
      { at: 'P1D', publish: { extension: 'agent', version: '1.1.0.0' } },
    ],
  }));
  assert.equal(run.of('instance.upgrade.started').filter((e) => e.toVersion === '2.0.0.0').length, 0);
  assert.deepEqual(run.of('rollout.created').map((e) => e.toVersion), ['1.1.0.0']);
  for (const e of run.of('instance.upgrade.started')) {
    assert.equal(e.fromVersion.split('.')[0], e.toVersion.split('.')[0], `${e.machineId} crossed a major: ${e.fromVersion} → ${e.toVersion}`);
  }
  assert.equal(machinesStarted(run, '1.1.0.0').size, 8);
  for (const id of ['ss/0', 'ss/4', 'arc-0', 'arc-2']) assert.equal(installedOf(run, id), '1.1.0.0');
});

test('R1: machines on two majors each follow their own major, and a new major never supersedes the other\'s rollout', () => {
  const run = simulate(oneRegion({
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '2.0.0.0' }] }],
    extensions: {
      v1: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, installed: '1.0.0.0' },
      v2: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '2.0', enableAutomaticUpgrade: true, installed: '2.0.0.0' },
    },
    fleet: {
      vms: [
        { name: 'old', region: 'east', subscription: 'sub1', count: 4, extensions: ['v1'] },
        { name: 'new', region: 'east', subscription: 'sub1', count: 4, extensions: ['v2'] },
      ],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'v1', version: '1.1.0.0' } },
      { at: 'PT1H1M', publish: { extension: 'v2', version: '2.1.0.0' } },
    ],
  }));
  assert.deepEqual(run.of('rollout.cancelled'), [], 'a 2.x release must not cancel the 1.x rollout');
  assert.deepEqual([...machinesStarted(run, '1.1.0.0')].sort(), ['old-0', 'old-1', 'old-2', 'old-3']);
  assert.deepEqual([...machinesStarted(run, '2.1.0.0')].sort(), ['new-0', 'new-1', 'new-2', 'new-3']);
  assert.equal(run.of('rollout.completed').length, 2);
});

// ---- R2 ------------------------------------------------------------------------------------------

test('R2: eligibility needs the setting, type support, and the version published for the OS and region', () => {
  const c = catalogWith([
    '1.0.0.0',
    { version: '1.1.0.0', os: ['windows'] },
    { version: '1.2.0.0', regions: ['west'] },
    { version: '1.3.0.0', publishedAtMs: 1_000 },
  ]);
  const cases: Array<[string, ExtensionInstance, { os: OsType; region: string }, number, string | null]> = [
    ['all conditions met (linux, east, before 1.3 is out)', instance('1.0.0.0'), LINUX_EAST, 500, null],
    ['windows in east sees the windows-only 1.1', instance('1.0.0.0'), { os: 'windows', region: 'east' }, 500, '1.1.0.0'],
    ['linux in west sees the west-only 1.2', instance('1.0.0.0'), { os: 'linux', region: 'west' }, 500, '1.2.0.0'],
    ['after 1.3 is published everyone sees it', instance('1.0.0.0'), LINUX_EAST, 1_000, '1.3.0.0'],
    ['setting off', instance('1.0.0.0', { enableAutomaticUpgrade: false }), LINUX_EAST, 1_000, null],
    ['blocked by a failed rollback', instance('1.0.0.0', { blockedReason: 'rollback failed' }), LINUX_EAST, 1_000, null],
  ];
  for (const [name, inst, machine, now, target] of cases) assert.equal(automaticTarget(c, inst, machine, now).target, target, name);

  const unsupported = catalogWith(['1.0.0.0', '1.3.0.0'], false);
  const e = automaticTarget(unsupported, instance('1.0.0.0'), LINUX_EAST, 1);
  assert.equal(e.target, null);
  assert.match(e.reason, /does not support automatic upgrade/);
});

test('R2: a type without automatic-upgrade support keeps the setting, which takes effect once support comes', () => {
  const c = catalogWith(['1.0.0.0', '1.3.0.0'], false);
  const inst = instance('1.0.0.0');
  assert.equal(autoUpgradeState(inst, c.getType('Contoso', 'Agent')), 'notSupported');
  assert.equal(inst.enableAutomaticUpgrade, true, 'the setting is kept');
  c.addType('Contoso', 'Agent', true);
  assert.equal(autoUpgradeState(inst, c.getType('Contoso', 'Agent')), 'enabled');
  assert.equal(automaticTarget(c, inst, LINUX_EAST, 1).target, '1.3.0.0');
  assert.equal(autoUpgradeState(instance('1.0.0.0', { enableAutomaticUpgrade: false }), c.getType('Contoso', 'Agent')), 'disabled');
});

test('R2: no rollout while the type does not support automatic upgrade; when support flips, opted-in instances follow', () => {
  const run = simulate(oneRegion({
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: false, versions: [{ version: '1.0.0.0' }] }],
    extensions: {
      agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true },
      off: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: false },
    },
    fleet: {
      vms: [
        { name: 'in', region: 'east', subscription: 'sub1', count: 4, extensions: ['agent'] },
        { name: 'out', region: 'east', subscription: 'sub1', count: 2, extensions: ['off'] },
      ],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'P2D', supportAutomaticUpgrade: { extension: 'agent', supported: true } },
    ],
  }));
  const created = run.of('rollout.created');
  assert.equal(created.length, 1, 'exactly one rollout, after support came');
  assert.equal(ms(created[0]!.time), START + 2 * DAY, 'the rollout starts when support flips, not at publication');
  assert.equal(created[0]!.toVersion, '1.1.0.0');
  for (const e of run.of('instance.upgrade.started')) assert.ok(ms(e.time) >= START + 2 * DAY, `${e.machineId} upgraded before support`);
  assert.deepEqual([...machinesStarted(run)].sort(), ['in-0', 'in-1', 'in-2', 'in-3'], 'only instances with the setting on follow');
  assert.equal(installedOf(run, 'out-0'), '1.0.0.0');
  assert.equal(installedOf(run, 'in-3'), '1.1.0.0');
});

test('R2: a release published only for some OSes and regions reaches only the machines it is published for', () => {
  const run = simulate(baseScenario({
    regions: [
      { name: 'east', pair: null, zones: [] },
      { name: 'west', pair: null, zones: [] },
    ],
    fleet: {
      vms: [
        { name: 'el', region: 'east', subscription: 'sub1', count: 2, os: 'linux', extensions: ['agent'] },
        { name: 'ew', region: 'east', subscription: 'sub1', count: 2, os: 'windows', extensions: ['agent'] },
        { name: 'wl', region: 'west', subscription: 'sub1', count: 2, os: 'linux', extensions: ['agent'] },
      ],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0', os: ['linux'], regions: ['east'] } },
    ],
  }));
  assert.deepEqual([...machinesStarted(run)].sort(), ['el-0', 'el-1']);
  assert.deepEqual(run.of('rollout.created').map((e) => e.phases.flat()), [['east']]);
});

test('R2: when the publisher withdraws automatic-upgrade support, no new automatic attempts start', () => {
  // Two unpaired regions: the canary phase runs at once, the second phase after a 4-day bake. Support is
  // withdrawn during the bake, so the second phase's machines are no longer eligible.
  const withdrawAt = START + 2 * DAY;
  const run = simulate(baseScenario({
    canaryRegions: ['east'],
    regions: [
      { name: 'east', pair: null, zones: [] },
      { name: 'west', pair: null, zones: [] },
    ],
    fleet: {
      vms: [
        { name: 'e', region: 'east', subscription: 'sub1', count: 2, extensions: ['agent'] },
        { name: 'w', region: 'west', subscription: 'sub1', count: 4, extensions: ['agent'] },
      ],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'P2D', supportAutomaticUpgrade: { extension: 'agent', supported: false } },
    ],
  }));
  const early = run.of('instance.upgrade.started').filter((e) => ms(e.time) < withdrawAt);
  assert.deepEqual(early.map((e) => e.machineId).sort(), ['e-0', 'e-1'], 'the canary ran before the withdrawal');
  const late = run.of('instance.upgrade.started').filter((e) => ms(e.time) >= withdrawAt);
  assert.deepEqual(late.map((e) => `${e.machineId}@${e.time}`), [], 'a type that no longer supports automatic upgrade gets no automatic attempts');
});

// ---- R3 ------------------------------------------------------------------------------------------

test('R3: enableAutomaticUpgrade defaults to true on Arc machines and to false on VMs and scale-set instances', () => {
  const run = simulate(oneRegion({
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' } },
    fleet: {
      scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 5, extensions: ['agent'] }],
      availabilitySets: [{ name: 'as', region: 'east', subscription: 'sub1', vms: 2, extensions: ['agent'] }],
      vms: [{ name: 'vm', region: 'east', subscription: 'sub1', count: 3, extensions: ['agent'] }],
      arcMachines: [{ name: 'arc', region: 'east', subscription: 'sub2', count: 4, extensions: ['agent'] }],
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  }));
  const { fleet, catalog } = run.engine.state;
  const type = catalog.getType('Contoso', 'Agent');
  const states = new Map<string, string>();
  for (const inst of fleet.instances.get(AGENT_KEY)!.values()) {
    const kind = fleet.machines.get(inst.machineId)!.kind;
    const state = autoUpgradeState(inst, type);
    const seen = states.get(kind);
    assert.ok(seen === undefined || seen === state, `${kind} machines disagree`);
    states.set(kind, state);
  }
  assert.deepEqual(Object.fromEntries(states), { scaleSetInstance: 'disabled', vm: 'disabled', arc: 'enabled' });
  assert.equal(run.of('rollout.created')[0]?.eligible, 4, 'only the Arc machines are eligible');
  assert.deepEqual([...machinesStarted(run)].sort(), ['arc-0', 'arc-1', 'arc-2', 'arc-3']);
});

test('R3: on VMs and scale sets the setting turns on per extension, and only that extension follows releases', () => {
  const run = simulate(oneRegion({
    catalog: [
      { publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
      { publisher: 'Contoso', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '3.0.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true },
      monitor: { publisher: 'Contoso', type: 'Monitor', typeHandlerVersion: '3.0' },
    },
    fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 5, extensions: ['agent', 'monitor'] }] },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT1H', publish: { extension: 'monitor', version: '3.1.0.0' } },
    ],
  }));
  assert.deepEqual(run.of('rollout.created').map((e) => e.artifact.kind === 'extension' ? e.artifact.type : ''), ['Agent']);
  assert.equal(machinesStarted(run, '1.1.0.0').size, 5);
  assert.equal(machinesStarted(run, '3.1.0.0').size, 0);
  assert.equal(installedOf(run, 'ss/2', 'extension:contoso.monitor'), '3.0.0.0');
});

// ---- R4 ------------------------------------------------------------------------------------------

test('R4: installVersion takes the newest minor of the major with autoUpgradeMinorVersion, exactly the requested version without', () => {
  const c = catalogWith(['1.0.0.0', '1.0.5.0', '1.2.0.0', '1.10.0.0', '1.9.0.0', '2.0.0.0', '2.3.0.0', { version: '1.11.0.0', os: ['windows'] }]);
  const table: Array<[string, boolean, string | null]> = [
    ['1.0', true, '1.10.0.0'],
    ['1', true, '1.10.0.0'],
    ['1.9', true, '1.10.0.0'],
    ['2.0', true, '2.3.0.0'],
    ['1.0', false, '1.0.5.0'],
    ['1.0.0.0', false, '1.0.0.0'],
    ['1.2', false, '1.2.0.0'],
    ['1.9', false, '1.9.0.0'],
    ['2.0', false, '2.0.0.0'],
    ['1.11', true, null], // requested minor is not published for linux
    ['1.11', false, null],
    ['3.0', true, null],
  ];
  for (const [typeHandlerVersion, autoUpgradeMinorVersion, expected] of table) {
    const got = installVersion(c, { publisher: 'Contoso', type: 'Agent', typeHandlerVersion, autoUpgradeMinorVersion }, LINUX_EAST, 1);
    assert.equal(got, expected, `typeHandlerVersion ${typeHandlerVersion}, autoUpgradeMinorVersion ${autoUpgradeMinorVersion}`);
  }
  assert.equal(installVersion(c, { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true }, { os: 'windows', region: 'east' }, 1), '1.11.0.0');
  assert.equal(installVersion(c, { publisher: 'Nobody', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true }, LINUX_EAST, 1), null);
});

test('R4: machines are created with what autoUpgradeMinorVersion selects, and it does not upgrade them later by itself', () => {
  const run = simulate(oneRegion({
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.0.5.0' }, { version: '1.3.0.0' }, { version: '2.0.0.0' }] }],
    extensions: {
      minor: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true, enableAutomaticUpgrade: false },
      pinned: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false },
      exact: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0.0.0', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false },
    },
    fleet: {
      vms: [
        { name: 'minor', region: 'east', subscription: 'sub1', count: 2, extensions: ['minor'] },
        { name: 'pinned', region: 'east', subscription: 'sub1', count: 2, extensions: ['pinned'] },
        { name: 'exact', region: 'east', subscription: 'sub1', count: 2, extensions: ['exact'] },
      ],
    },
    events: [{ at: 'PT1H', publish: { extension: 'minor', version: '1.4.0.0' } }],
  }));
  assert.equal(installedOf(run, 'minor-0'), '1.3.0.0');
  assert.equal(installedOf(run, 'pinned-1'), '1.0.5.0');
  assert.equal(installedOf(run, 'exact-0'), '1.0.0.0');
  assert.deepEqual(run.of('rollout.created'), [], 'autoUpgradeMinorVersion alone starts no rollout');
  assert.deepEqual(run.of('instance.upgrade.started'), []);
});

// ---- R5 ------------------------------------------------------------------------------------------

test('R5: an opt-out mid-rollout stops new attempts for those instances; the attempts already running finish', () => {
  // 10 instances, 5 update domains (UD = i % 5), batches of 2: UD 0 = ss/0 + ss/5 runs first.
  // At PT1H0M20S UD 0 is being upgraded; ss/0, ss/5 (in flight) and ss/2, ss/7 (UD 2, not started) opt out.
  const optedOut = ['ss/0', 'ss/5', 'ss/2', 'ss/7'];
  const run = simulate(oneRegion({
    fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }] },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT1H0M20S', setAutomaticUpgrade: { extension: 'agent', machines: optedOut, enabled: false } },
    ],
  }));
  const changed = run.of('autoUpgrade.changed');
  assert.equal(changed.length, 4);
  const cut = Math.max(...changed.map((e) => e.seq));
  const startedBefore = run.of('instance.upgrade.started').filter((e) => e.seq < cut).map((e) => e.machineId).sort();
  assert.deepEqual(startedBefore, ['ss/0', 'ss/5'], 'UD 0 was in flight at the opt-out');
  for (const id of ['ss/0', 'ss/5']) {
    const done = run.of('instance.upgrade.succeeded').find((e) => e.machineId === id);
    assert.ok(done && done.seq > cut, `${id}: the running attempt finishes after the opt-out`);
    assert.equal(installedOf(run, id), '1.1.0.0');
  }
  const after = run.of('instance.upgrade.started').filter((e) => e.seq > cut && optedOut.includes(e.machineId));
  assert.deepEqual(after.map((e) => e.machineId), [], 'no new attempt for opted-out instances');
  assert.equal(installedOf(run, 'ss/2'), '1.0.0.0');
  assert.equal(installedOf(run, 'ss/7'), '1.0.0.0');
  const skipped = run.of('instance.skipped').map((e) => e.machineId).sort();
  assert.deepEqual(skipped, ['ss/2', 'ss/7']);
  assert.deepEqual([...machinesStarted(run)].sort(), ['ss/0', 'ss/1', 'ss/3', 'ss/4', 'ss/5', 'ss/6', 'ss/8', 'ss/9']);
  assert.equal(run.of('rollout.completed').length, 1);
});

test('R5: an opt-out during a failing attempt lets its rollback finish, then no retry runs for it (others do retry)', () => {
  // Every machine that gets 1.1.0.0 turns unhealthy. Gates are opened wide so the rollout keeps going and
  // retries (3 days after a rollback) really happen for instances that stayed opted in; the fleet-wide
  // verdict would hold this release after five failures, so it is lifted too.
  const run = simulate(oneRegion({
    horizon: 'P5D',
    profiles: { standard: { maxPhaseFailurePercent: 100, releaseVerdict: false } },
    fleet: {
      scaleSets: [{
        name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'],
        upgradePolicy: { rollingUpgradePolicy: { maxUnhealthyUpgradedInstancePercent: 100, maxUnhealthyInstancePercent: 100 } },
      }],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT1H2M', setAutomaticUpgrade: { extension: 'agent', machines: ['ss/0'], enabled: false } },
    ],
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } },
  }));
  const cut = run.of('autoUpgrade.changed')[0]!.seq;
  const of0 = (type: InstanceEvent['type']) => instanceEvents(run, type).filter((e) => e.machineId === 'ss/0');
  assert.equal(of0('instance.upgrade.started').length, 1, 'ss/0 has exactly the one attempt it had begun');
  assert.ok(of0('instance.upgrade.started')[0]!.seq < cut);
  const rolledBack = of0('instance.rollback.succeeded');
  assert.equal(rolledBack.length, 1, 'the running attempt finishes with its rollback');
  assert.ok(rolledBack[0]!.seq > cut, 'the rollback completes after the opt-out');
  assert.equal(installedOf(run, 'ss/0'), '1.0.0.0');
  // ss/5 shares the batch and stayed opted in: it is retried about 3 days later.
  const retried = run.of('instance.upgrade.started').filter((e) => e.machineId === 'ss/5' && e.attempt === 2);
  assert.equal(retried.length, 1, 'the control instance is retried, so retries do run in this scenario');
});

test('R5: engine.setAutomaticUpgrade(false) while an instance is being upgraded lets it finish and gives it no further attempts', () => {
  // Every install of 1.1.0.0 fails, so every attempt ends in a rollback and a retry 3 days later. vm-0 and
  // vm-1 belong to different subscriptions (separate units, upgraded side by side); vm-1 is the control.
  let optOutSeq = -1;
  const { events } = steppedRun(oneRegion({
    horizon: 'P5D',
    profiles: { standard: { maxPhaseFailurePercent: 100 } },
    fleet: {
      vms: [
        { name: 'vm', region: 'east', subscription: 'sub1', count: 1, extensions: ['agent'] },
        { name: 'ctl', region: 'east', subscription: 'sub2', count: 1, extensions: ['agent'] },
      ],
    },
    failures: { versions: { '1.1.0.0': { installFailure: 1 } } },
  }), (engine, fresh) => {
    if (optOutSeq >= 0) return;
    if (fresh.some((e) => e.type === 'instance.upgrade.started' && e.machineId === 'vm-0')) {
      engine.setAutomaticUpgrade('vm-0', AGENT_KEY, false, 'operator');
      optOutSeq = engine.state.eventSeq;
    }
  });
  // baseScenario (under oneRegion) publishes 1.1.0.0 at PT1H.
  assert.ok(optOutSeq > 0, 'vm-0 was being upgraded when the operator opted out');
  const vm0 = events.filter((e) => 'machineId' in e && e.machineId === 'vm-0');
  const starts = vm0.filter((e) => e.type === 'instance.upgrade.started');
  assert.equal(starts.length, 1, 'no retry for the opted-out instance');
  assert.ok(vm0.some((e) => e.type === 'instance.rollback.succeeded' && e.seq > optOutSeq), 'its failed attempt still rolls back');
  const ctlStarts = events.filter((e) => e.type === 'instance.upgrade.started' && e.machineId === 'ctl-0');
  assert.ok(ctlStarts.length >= 2, 'the instance still opted in is retried');
});

test('R5: opting out while a retry is pending parks it; the instance gets no attempt when the retry comes due', () => {
  let optOutSeq = -1;
  const { events, engine } = steppedRun(oneRegion({
    horizon: 'P5D',
    profiles: { standard: { maxPhaseFailurePercent: 100 } },
    fleet: {
      vms: [
        { name: 'vm', region: 'east', subscription: 'sub1', count: 1, extensions: ['agent'] },
        { name: 'ctl', region: 'east', subscription: 'sub2', count: 1, extensions: ['agent'] },
      ],
    },
    failures: { versions: { '1.1.0.0': { installFailure: 1 } } },
  }), (eng, fresh) => {
    if (optOutSeq >= 0) return;
    if (fresh.some((e) => e.type === 'instance.retry.scheduled' && e.machineId === 'vm-0')) {
      eng.setAutomaticUpgrade('vm-0', AGENT_KEY, false, 'operator');
      optOutSeq = eng.state.eventSeq;
    }
  });
  assert.ok(optOutSeq > 0);
  const later = events.filter((e) => e.type === 'instance.upgrade.started' && e.machineId === 'vm-0' && e.seq > optOutSeq);
  assert.deepEqual(later, []);
  const attempt = [...engine.state.rollouts.values()][0]!.attempts.get('vm-0')!;
  assert.equal(attempt.status, 'parked');
  assert.ok(events.filter((e) => e.type === 'instance.upgrade.started' && e.machineId === 'ctl-0').length >= 2, 'the control instance is retried');
});

// ---- R6 ------------------------------------------------------------------------------------------

test('R6: a manual upgrade starts at once, with no canary or bake, even where automatic upgrade is off', () => {
  const run = simulate(baseScenario({
    regions: [
      { name: 'east', pair: 'west', zones: [] },
      { name: 'west', pair: 'east', zones: [] },
      { name: 'north', pair: null, zones: [] },
    ],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0.0.0', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false } },
    fleet: {
      scaleSets: [
        { name: 'se', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] },
        { name: 'sw', region: 'west', subscription: 'sub1', capacity: 10, extensions: ['agent'] },
        { name: 'sn', region: 'north', subscription: 'sub1', capacity: 10, extensions: ['agent'] },
      ],
    },
    events: [{ at: 'P1D', manualUpgrade: { extension: 'agent', version: '1.1.0.0' } }],
  }));
  const created = run.of('rollout.created');
  assert.equal(created.length, 1);
  assert.equal(created[0]!.profile, 'manual');
  assert.equal(ms(created[0]!.time), START + DAY, 'starts the moment it is asked for');
  assert.equal(created[0]!.eligible, 30);
  const phases = created[0]!.phases;
  assert.equal(phases.length, 2, 'geo-pairs still never share a phase, but there is no canary');
  for (const p of phases) assert.ok(!(p.includes('east') && p.includes('west')));
  const completed = run.of('phase.completed');
  const started = run.of('phase.started');
  for (let k = 0; k + 1 < phases.length; k++) {
    assert.equal(started[k + 1]!.time, completed[k]!.time, `phase ${k + 1} opens as soon as phase ${k} completes: no bake`);
  }
  const done = run.of('rollout.completed');
  assert.equal(done.length, 1);
  assert.ok(ms(done[0]!.time) - (START + DAY) < 6 * HOUR, `30 instances upgraded within hours, got ${done[0]!.time}`);
  assert.equal(machinesStarted(run, '1.1.0.0').size, 30);
  // Batches are kept: each set goes in batches of at most 20%.
  for (const b of run.of('batch.started')) assert.ok(b.instances.length <= 2, `${b.batchId} has ${b.instances.length} instances`);
});

test('R6: a manual upgrade keeps the health gates: unhealthy instances are rolled back, the set stops, and no retries follow', () => {
  const run = simulate(oneRegion({
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: false } },
    fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }] },
    events: [{ at: 'PT1H', manualUpgrade: { extension: 'agent', scaleSet: 'ss', version: '1.0.0.0' } }],
  }));
  // 1.0.0.0 is what they run: nothing to do.
  assert.deepEqual(run.of('rollout.created'), []);

  const bad = simulate(oneRegion({
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.1.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0.0.0', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false } },
    fleet: { scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }] },
    events: [{ at: 'PT1H', manualUpgrade: { extension: 'agent', scaleSet: 'ss', version: '1.1.0.0' } }],
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 1 } } },
  }));
  assert.equal(bad.of('rollout.created')[0]?.profile, 'manual');
  const firstBatch = bad.of('batch.started');
  assert.equal(firstBatch.length, 1, 'the set stops after its first unhealthy batch');
  assert.equal(firstBatch[0]!.instances.length, 2);
  const unhealthy = bad.of('instance.health.unhealthy');
  assert.equal(unhealthy.length, 2);
  for (const u of unhealthy) {
    const started = bad.of('instance.upgrade.started').find((e) => e.machineId === u.machineId)!;
    assert.ok(ms(u.time) - ms(started.time) >= 5 * 60_000, 'judged only after the 5-minute health window');
  }
  assert.equal(bad.of('instance.rollback.succeeded').length, 2);
  assert.ok(bad.of('gate.breached').some((g) => g.rule === 'R23'));
  assert.deepEqual(bad.of('instance.retry.scheduled'), [], 'a manual upgrade is not retried automatically');
  assert.equal(bad.of('instance.upgrade.started').length, 2);
  for (let i = 0; i < 10; i++) assert.equal(installedOf(bad, `ss/${i}`), '1.0.0.0');
});

test('R6: a manual upgrade overtakes a paced automatic rollout, which then skips the machines already upgraded', () => {
  // Standard rollout: canary north (fewest machines) at PT1H, then a 4-day bake. At P1D the user upgrades
  // the east scale set by hand; it must not wait for the bake or the phases.
  const run = simulate(baseScenario({
    canaryRegions: ['north'],
    regions: [
      { name: 'north', pair: null, zones: [] },
      { name: 'east', pair: null, zones: [] },
    ],
    fleet: {
      scaleSets: [{ name: 'se', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }],
      vms: [{ name: 'n', region: 'north', subscription: 'sub1', count: 2, extensions: ['agent'] }],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'P1D', manualUpgrade: { extension: 'agent', scaleSet: 'se', version: '1.1.0.0' } },
    ],
  }));
  const [auto, manual] = run.of('rollout.created');
  assert.equal(auto?.profile, 'standard');
  assert.equal(manual?.profile, 'manual');
  const eastStarts = run.of('instance.upgrade.started').filter((e) => e.placement.region === 'east');
  assert.equal(eastStarts.length, 10);
  for (const e of eastStarts) {
    assert.equal(e.rolloutId, manual!.rolloutId);
    assert.ok(ms(e.time) < START + 2 * DAY, `${e.machineId} upgraded at ${e.time}, not after the bake`);
  }
  const skipped = run.of('instance.skipped').filter((e) => e.rolloutId === auto!.rolloutId);
  assert.equal(skipped.length, 10, 'the automatic rollout finds them already upgraded');
  assert.equal(run.of('rollout.completed').length, 2);
});

test('R6: a manual upgrade may cross a major version, which automatic upgrades never do (R1)', () => {
  const run = simulate(oneRegion({
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '2.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: { arcMachines: [{ name: 'arc', region: 'east', subscription: 'sub1', count: 3, extensions: ['agent'] }] },
    events: [{ at: 'PT1H', manualUpgrade: { extension: 'agent', machines: ['arc-0', 'arc-2'], version: '2.0.0.0' } }],
  }));
  assert.deepEqual([...machinesStarted(run, '2.0.0.0')].sort(), ['arc-0', 'arc-2']);
  assert.equal(installedOf(run, 'arc-0'), '2.0.0.0');
  assert.equal(installedOf(run, 'arc-1'), '1.0.0.0');
});
