/**
 * Platform-orchestrated patching (R76), piece by piece: baselines, the off-peak window of a region's
 * local time, the engine's commands and their refusals, the scenario fields' errors, and an engine rebuilt
 * from SQLite mid-rollout (notices and off-peak waits pending) going on to the same end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FleetError } from '../src/engine/core/errors.js';
import { baselineCutoffMs, isBaselineVersion } from '../src/model/patch-baseline.js';
import { guestPatchArtifact } from '../src/model/artifact.js';
import type { EngineEvent } from '../src/model/events.js';
import { offPeakWindow, regionTimeZone } from '../src/schedule/off-peak.js';
import { nextWindowStart, windowAt } from '../src/schedule/window.js';
import { compileScenario, loadScenarioFile } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-platform-patching-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const EXAMPLE = 'examples/platform-patching.yaml';

describe('baselines and off-peak hours', () => {
  test('a baseline is a date YYYY.M.D, covering patches published by the end of that day (UTC)', () => {
    for (const v of ['2026.1.12', '2026.12.31', '2027.3.1']) assert.ok(isBaselineVersion(v), v);
    for (const v of ['2026.13.1', '2026.0.5', '2026.1.32', '26.1.1', '2026.1', '2026.1.1.0', 'latest']) assert.ok(!isBaselineVersion(v), v);
    assert.equal(baselineCutoffMs('2026.3.1'), Date.parse('2026-03-02T00:00:00Z') - 1);
  });

  test('R76: off-peak is 22:00–06:00 in the region\'s own zone, following daylight saving; unknown regions use UTC', () => {
    assert.equal(regionTimeZone('EastUS'), 'America/New_York');
    assert.equal(regionTimeZone('nowhere'), 'UTC');
    // New York: EST (UTC-5) in January, EDT (UTC-4) in July.
    assert.equal(nextWindowStart(offPeakWindow('eastus'), Date.parse('2026-01-15T12:00:00Z')), Date.parse('2026-01-16T03:00:00Z'));
    assert.equal(nextWindowStart(offPeakWindow('eastus'), Date.parse('2026-07-15T12:00:00Z')), Date.parse('2026-07-16T02:00:00Z'));
    const tokyo = windowAt(offPeakWindow('japaneast'), Date.parse('2026-03-02T14:00:00Z')); // 23:00 in Tokyo
    assert.deepEqual(tokyo && [tokyo.start, tokyo.end], [Date.parse('2026-03-02T13:00:00Z'), Date.parse('2026-03-02T21:00:00Z')]);
    assert.equal(windowAt(offPeakWindow('japaneast'), Date.parse('2026-03-02T22:00:00Z')), null); // 07:00 in Tokyo
    assert.equal(nextWindowStart(offPeakWindow('nowhere'), Date.parse('2026-03-02T23:00:00Z')), Date.parse('2026-03-03T22:00:00Z'));
  });
});

describe('the engine\'s commands', () => {
  test('a bad baseline is refused and changes nothing; a baseline is never withdrawn (patches are not uninstalled)', () => {
    const sim = new Simulation(loadScenarioFile(EXAMPLE));
    const before = sim.engine.state.rollouts.size;
    assert.throws(() => sim.engine.publishPatchBaseline('linux', '1.2.3.4', false, 'test'), (e: unknown) => e instanceof FleetError && e.target === 'version');
    assert.equal(sim.engine.state.rollouts.size, before);
    const r = sim.engine.publishPatchBaseline('linux', '2026.3.1', false, 'test');
    assert.ok(r);
    assert.equal(sim.engine.publishPatchBaseline('linux', '2026.2.1', false, 'test'), null, 'an older baseline starts nothing');
    assert.throws(() => sim.engine.withdrawVersion(guestPatchArtifact('linux'), '2026.3.1', { rollback: true, reason: 'x', caller: 'test' }), (e: unknown) => e instanceof FleetError && e.code === 'Conflict');
  });

  test('R76: setPlatformPatching adds, updates and removes a machine\'s guestPatch instance', () => {
    const sim = new Simulation(loadScenarioFile(EXAMPLE));
    const linux = () => sim.engine.state.fleet.instances.get('guestPatch:linux')!;
    assert.equal(linux().has('manual-0'), false);
    sim.engine.setPlatformPatching('manual-0', { rebootSetting: 'Always' });
    assert.equal(linux().get('manual-0')?.settings['rebootSetting'], 'Always');
    assert.equal(linux().get('manual-0')?.installedVersion, '0.0.0');
    sim.engine.setPlatformPatching('manual-0', { rebootSetting: 'Never' });
    assert.equal(linux().get('manual-0')?.settings['rebootSetting'], 'Never');
    sim.engine.setPlatformPatching('manual-0', null);
    assert.equal(linux().has('manual-0'), false);
    assert.throws(() => sim.engine.setPlatformPatching('nope', null), (e: unknown) => e instanceof FleetError && e.code === 'NotFound');
  });
});

describe('scenario fields', () => {
  const base = () => ({
    name: 't', start: '2026-03-02T00:00:00Z', regions: [{ name: 'eastus' }],
    catalog: [{ publisher: 'P', type: 'A', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { a: { publisher: 'P', type: 'A', typeHandlerVersion: '1.0' } },
    fleet: { vms: [{ region: 'eastus', subscription: 's', count: 2, patchSettings: { patchMode: 'AutomaticByPlatform' } }] },
    events: [{ at: 'PT1H', publishPatchBaseline: { os: 'linux', version: '2026.3.1' } }] as unknown[],
  });

  test('patchSettings and publishPatchBaseline compile; bad values are refused with the field named', () => {
    const ok = compileScenario(base(), 't');
    assert.equal(ok.state.fleet.instances.get('guestPatch:linux')?.size, 2);
    assert.deepEqual(ok.actions.map((a) => a.kind), ['publishPatchBaseline']);
    const bad = base();
    bad.events = [{ at: 'PT1H', publishPatchBaseline: { os: 'linux', version: '2026.13.1' } }];
    assert.throws(() => compileScenario(bad, 't'), /events\[0\]\.publishPatchBaseline\.version: expected a patch baseline date such as 2026\.1\.12/);
    const mode = base();
    (mode.fleet.vms[0]!.patchSettings as { patchMode: string }).patchMode = 'Sometimes';
    assert.throws(() => compileScenario(mode, 't'), /fleet\.vms\[0\]\.patchSettings\.patchMode: expected ImageDefault, AutomaticByOS, AutomaticByPlatform or Manual/);
  });
});

describe('a restart mid-rollout', () => {
  function events(path: string): EngineEvent[] {
    const store = SqliteStore.open(path, { mode: 'existing' });
    try {
      return [...store.events()];
    } finally {
      store.close();
    }
  }

  test('the engine rebuilt from SQLite (guestPatch instances, notices, off-peak waits) writes the uninterrupted log', () => {
    const whole = join(dir, 'whole.sqlite');
    const s1 = loadScenarioFile(EXAMPLE);
    const st1 = SqliteStore.open(whole, { mode: 'new' });
    st1.importState(s1.state);
    new Simulation(s1, { store: st1 }).run();
    st1.close();

    const cut = join(dir, 'cut.sqlite');
    const s2 = loadScenarioFile(EXAMPLE);
    const first = SqliteStore.open(cut, { mode: 'new' });
    first.importState(s2.state);
    let notices = 0;
    const sim = new Simulation(s2, { store: first, onEvents: (batch) => { notices += batch.filter((e) => e.type === 'machine.reboot.announced').length; } });
    // 03:05 UTC on 2026-03-03: eastus's off-peak hours, reboot notices running.
    while (sim.clock.now() < Date.parse('2026-03-03T03:05:00Z') && sim.step());
    assert.ok(notices > 0, 'the cut falls after the first notices');
    first.close();
    const store = SqliteStore.open(cut, { mode: 'existing' });
    sim.restart(store); // the simulated fleet lives on in memory (its installed patches are not snapshotted)
    sim.run();
    store.close();
    const a = events(whole);
    assert.ok(a.filter((e) => e.type === 'rollout.completed').length === 3);
    assert.deepEqual(events(cut), a);
  });
});
