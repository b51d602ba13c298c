/**
 * InGuestPatch schedules in scenarios and the simulator (issue 16): a schedule runs in each window through
 * the simulated PatchDriver with serve's events; R75/R83 hold on every generated log (fast-check: small
 * fleets, random windows, time zones, durations, reboot settings, failures); a log broken on purpose is
 * caught; bad scenario input is a ScenarioError naming the field; `phasewise sim` checks the log.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { PatchChecker } from '../src/audit/patches.js';
import type { EngineEvent } from '../src/model/events.js';
import { REBOOT_NOTICE_MS } from '../src/model/patch-runs.js';
import { windowAt } from '../src/schedule/window.js';
import type { Scenario } from '../src/sim/scenario.js';
import { compileScenario, ScenarioError } from '../src/sim/scenario.js';
import { runSimulation, Simulation } from '../src/sim/simulator.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { cli, cliWithin, ROOT } from './helpers/cli.js';

type Raw = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Opts { duration?: string; timeZone?: string; startTime?: string; reboot?: string; failRate?: number; vms?: number; bypassShare?: number; seed?: number }

function scenario(o: Opts = {}): Raw {
  const vms = o.vms ?? 4;
  const withBypass = Math.max(1, Math.round(vms * (o.bypassShare ?? 0.75)));
  return {
    name: 'sched', start: '2026-03-02T12:00:00Z', seed: o.seed ?? 3, horizon: 'P4D',
    regions: [{ name: 'eastus', pair: 'westus' }, { name: 'westus', pair: 'eastus' }],
    catalog: [{ publisher: 'C.M', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.4.0.0' }] }],
    extensions: { agent: { publisher: 'C.M', type: 'Agent', typeHandlerVersion: '1.4', installed: '1.4.0.0', enableAutomaticUpgrade: true } },
    fleet: { vms: [
      { name: 'web', region: 'eastus', subscription: 'prod', count: withBypass, extensions: ['agent'],
        patchSettings: { patchMode: 'AutomaticByPlatform', bypassPlatformSafetyChecksOnUserSchedule: true } },
      ...(vms > withBypass ? [{ name: 'old', region: 'westus', subscription: 'prod', count: vms - withBypass, extensions: ['agent'] }] : []),
      // Without the bypass: the platform patches it (R76); the Linux-only schedule does not cover it.
      { name: 'win', region: 'westus', subscription: 'prod', os: 'windows', count: 1, patchSettings: { patchMode: 'AutomaticByPlatform' } },
      // With the bypass and no schedule: patched by nothing, as in Azure.
      { name: 'idle', region: 'westus', subscription: 'prod', os: 'windows', count: 1,
        patchSettings: { patchMode: 'AutomaticByPlatform', bypassPlatformSafetyChecksOnUserSchedule: true } },
    ] },
    ...(o.failRate ? { failures: { default: { installFailure: o.failRate, unhealthyAfterUpgrade: o.failRate } } } : {}),
    maintenance: {
      configurations: [{ name: 'nightly', scope: 'InGuestPatch', startDateTime: `2026-03-01 ${o.startTime ?? '22:00'}`, duration: o.duration ?? '03:00',
        timeZone: o.timeZone ?? 'UTC', recurEvery: 'Day',
        installPatches: { rebootSetting: o.reboot ?? 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical', 'Security', 'Other'] } } }],
      assignments: [{ configuration: 'nightly', dynamicScope: { osTypes: ['Linux'] } }],
    },
    events: [{ at: 'P2D', publish: { extension: 'agent', version: '1.5.0.0' } }],
  };
}

function simulate(raw: Raw): { sc: Scenario; events: EngineEvent[]; checker: PatchChecker } {
  const sc = compileScenario(raw, 'inline.yaml');
  const events: EngineEvent[] = [];
  const checker = newChecker(sc);
  runSimulation(sc, { onEvents: (b) => { events.push(...b); checker.onEvents(b); } });
  return { sc, events, checker };
}

const newChecker = (sc: Scenario) => new PatchChecker({ windowOf: (id) => sc.patchSchedules.find((s) => s.id === id)?.window, noticeMs: REBOOT_NOTICE_MS });
const of = <T extends EngineEvent['type']>(events: EngineEvent[], type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>;

test('R75: a nightly schedule runs in each window through the simulated PatchDriver, with serve\'s events; machines without the bypass are skipped', () => {
  const { sc, events, checker } = simulate(scenario());
  const started = of(events, 'patch.run.started');
  assert.ok(started.length >= 6, `runs started: ${started.length}`);
  const window = sc.patchSchedules[0]!.window;
  for (const s of started) {
    assert.ok(s.machineId.startsWith('web'), s.machineId);
    assert.equal(s.configuration, 'nightly');
    const inst = windowAt(window, Date.parse(s.time))!;
    assert.ok(inst, `started in a window: ${s.time}`);
    assert.equal(Date.parse(s.time) + s.maximumDurationMs, inst.end);
  }
  const skipped = of(events, 'patch.run.skipped');
  assert.ok(skipped.some((e) => e.machineId.startsWith('old') && /without bypassPlatformSafetyChecksOnUserSchedule/.test(e.reason)));
  assert.ok(!skipped.some((e) => e.machineId.startsWith('win') || e.machineId.startsWith('idle')), 'the Linux-only dynamic scope leaves the Windows VMs out');
  assert.equal(of(events, 'patch.run.completed').length, started.length);
  assert.equal(of(events, 'machine.reboot.announced').length, started.length);
  assert.ok(of(events, 'availability.impact').length > 0, 'some kernel or libc update rebooted a machine');
  // R76: the schedule takes its machines from platform-orchestrated patching; the others keep it.
  assert.deepEqual([...(sc.state.fleet.instances.get('guestPatch:linux')?.keys() ?? [])], []);
  assert.deepEqual([...sc.state.fleet.instances.get('guestPatch:windows')!.keys()], ['win-0']);
  assert.deepEqual(checker.violations, []);
  assert.equal(checker.checkedStarts, started.length);
});

test('R75, R83: the patch checker holds on every simulated log (random fleets, windows, time zones, durations, reboot settings, failures)', () => {
  fc.assert(fc.property(
    fc.record({
      vms: fc.integer({ min: 1, max: 6 }), bypassShare: fc.double({ min: 0, max: 1, noNaN: true }),
      duration: fc.constantFrom('01:30', '02:00', '02:45', '03:55'),
      timeZone: fc.constantFrom('UTC', 'America/New_York', 'Asia/Tokyo', 'Europe/Dublin', 'Pacific Standard Time', 'Asia/Kolkata'),
      startTime: fc.constantFrom('00:00', '03:30', '12:15', '22:00', '23:45'),
      reboot: fc.constantFrom('IfRequired', 'Never', 'Always'),
      failRate: fc.constantFrom(0, 0.1, 0.5), seed: fc.integer({ min: 1, max: 1000 }),
    }),
    (o) => {
      const { events, checker } = simulate(scenario(o));
      assert.deepEqual(checker.violations, []);
      const started = of(events, 'patch.run.started');
      assert.ok(started.length > 0, 'some run started');
      assert.equal(checker.checkedStarts, started.length);
      assert.equal(of(events, 'machine.reboot.announced').length, o.reboot === 'Never' ? 0 : started.length);
      if (o.reboot === 'Never') assert.equal(of(events, 'availability.impact').length, 0);
    },
  ), { numRuns: 25, seed: 16 });
});

test('R75, R83: a simulated log broken on purpose (an installation outside its window, a reboot announced too late) is caught', () => {
  const { sc, events } = simulate(scenario({ reboot: 'Always' }));
  const started = of(events, 'patch.run.started')[0]!;
  const outside: EngineEvent[] = events.map((e) => (e === started ? { ...e, time: new Date(Date.parse(started.windowStart) - 3_600_000).toISOString() } : e));
  const c1 = newChecker(sc);
  c1.onEvents(outside);
  assert.ok(c1.violations.some((v) => /outside the windows of nightly/.test(v)), c1.violations.join('\n'));
  const impact = of(events, 'availability.impact')[0]!;
  const late: EngineEvent[] = events.map((e) => (e === impact ? { ...e, startTime: new Date(Date.parse(impact.startTime) - 10 * 60_000).toISOString() } : e));
  const c2 = newChecker(sc);
  c2.onEvents(late);
  assert.ok(c2.violations.some((v) => /announced 5 minutes ahead, less than 15 \(R83\)/.test(v)), c2.violations.join('\n'));
});

function issuesOf(raw: Raw): string[] {
  try {
    compileScenario(raw, 'inline.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected a ScenarioError');
}

test('bad schedules in a scenario: a ScenarioError naming the field', () => {
  const bad = (change: (s: Raw) => void) => {
    const s = scenario();
    change(s);
    return issuesOf(s);
  };
  const cfg = 'maintenance.configurations[0]';
  assert.match(bad((s) => { s.maintenance.configurations[0].installPatches.linuxParameters.classificationsToInclude = ['Nope']; }).join('\n'),
    new RegExp(`${cfg.replace(/[[\]]/g, '\\$&')}\\.installPatches\\.linuxParameters\\.classificationsToInclude\\[0\\]: 'Nope' is not a Linux classification`));
  assert.match(bad((s) => { delete s.maintenance.configurations[0].installPatches; }).join('\n'), /configurations\[0\]\.installPatches: InGuestPatch configurations need installPatches/);
  assert.match(bad((s) => { s.maintenance.configurations[0].installPatches.rebootSetting = 'Sometimes'; }).join('\n'), /installPatches\.rebootSetting: expected one of IfRequired, Never, Always/);
  assert.match(bad((s) => { s.maintenance.configurations[0].duration = '01:00'; }).join('\n'), /configurations\[0\]\.duration: duration: InGuestPatch windows last at least 01:30/);
  assert.match(bad((s) => { s.maintenance.configurations[0].scope = 'Extension'; }).join('\n'), /configurations\[0\]\.installPatches: only InGuestPatch configurations install patches/);
  assert.match(bad((s) => { s.maintenance.assignments = [{ configuration: 'nightly', machines: ['win-0'] }]; }).join('\n'),
    /assignments\[0\]\.machines\[0\]: "win-0" runs windows, and configuration "nightly" has no windowsParameters/);
  const windowsScope = { configuration: 'nightly', dynamicScope: { osTypes: ['Windows'] } };
  assert.match(bad((s) => { s.maintenance.assignments = [windowsScope]; }).join('\n'), /assignments\[0\]\.dynamicScope\.osTypes: .*no windowsParameters/);
  const both = { configuration: 'nightly', machines: ['web-0'], dynamicScope: {} };
  assert.match(bad((s) => { s.maintenance.assignments = [both]; }).join('\n'), /expected exactly one of scaleSet, machines, dynamicScope/);
  assert.match(bad((s) => { s.fleet.vms[0].patchSettings.bypassPlatformSafetyChecksOnUserSchedule = 'yes'; }).join('\n'), /fleet\.vms\[0\]\.patchSettings\.bypassPlatformSafetyChecksOnUserSchedule/);
});

/** Faults of installPatches that do not hide one another, each with the issue path it must give. */
const PATCH_FAULTS: Array<{ path: string; apply: (ip: Raw) => void }> = [
  { path: 'installPatches.rebootSetting', apply: (ip) => { ip.rebootSetting = 'Sometimes'; } },
  { path: 'installPatches.extra', apply: (ip) => { ip.extra = 1; } },
  { path: 'installPatches.linuxParameters.classificationsToInclude[1]', apply: (ip) => { ip.linuxParameters.classificationsToInclude[1] = 'Nope'; } },
  { path: 'installPatches.linuxParameters.packageNameMasksToInclude[0]', apply: (ip) => { ip.linuxParameters.packageNameMasksToInclude = ['bad mask!']; } },
  { path: 'installPatches.linuxParameters.packageNameMasksToExclude', apply: (ip) => { ip.linuxParameters.packageNameMasksToExclude = 'kernel*'; } },
  { path: 'installPatches.linuxParameters.colour', apply: (ip) => { ip.linuxParameters.colour = 'blue'; } },
  { path: 'installPatches.linuxParameters.maintenanceRunId', apply: (ip) => { ip.linuxParameters.maintenanceRunId = 'x'.repeat(129); } },
  { path: 'installPatches.windowsParameters.kbNumbersToInclude[0]', apply: (ip) => { ip.windowsParameters = { classificationsToInclude: ['Critical'], kbNumbersToInclude: ['KB12'] }; } },
];

test('installPatches: every problem is reported at once, as the rest of a scenario\'s are (property over sets of faults)', () => {
  const cfg = 'maintenance.configurations[0].';
  fc.assert(fc.property(fc.subarray(PATCH_FAULTS, { minLength: 1 }), (faults) => {
    const s = scenario();
    for (const f of faults) f.apply(s.maintenance.configurations[0].installPatches);
    const got = issuesOf(s).filter((i) => i.startsWith(`${cfg}installPatches`)).map((i) => i.slice(cfg.length, i.indexOf(': ')));
    assert.deepEqual([...got].sort(), faults.map((f) => f.path).sort(), issuesOf(s).join('\n'));
  }), { numRuns: 100 });
});

test('phasewise sim checks a scenario\'s patch schedules and says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sched-'));
  try {
    const file = join(dir, 's.json');
    writeFileSync(file, JSON.stringify(scenario()));
    const r = await cli('sim', file);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Patch schedules: \d+ run starts and \d+ reboots checked, no violation/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('R75: a restart neither repeats nor skips a run (the window starts already run are kept with the engine state)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-sched-restart-'));
  try {
    const sc = compileScenario(scenario(), 'inline.yaml');
    const file = join(dir, 'db.sqlite');
    const first = SqliteStore.open(file, { mode: 'new' });
    first.importState(sc.state);
    const sim = new Simulation(sc, { store: first });
    // Stop right after the second night's run started: its mark and its events are in the database.
    let nights = 0;
    const seen = new Set<string>();
    while (sim.step()) {
      for (const e of first.events()) if (e.type === 'patch.run.started') seen.add(e.runId);
      if (seen.size !== nights) nights = seen.size;
      if (nights === 2) break;
    }
    assert.equal(nights, 2);
    first.close();
    const store = SqliteStore.open(file, { mode: 'existing' });
    try {
      sim.restart(store);
      sim.run();
      const events = [...store.events()];
      const starts = of(events, 'patch.run.started');
      const keys = starts.map((e) => `${e.runId}|${e.machineId}`);
      assert.equal(new Set(keys).size, keys.length, 'no run repeated on a machine');
      const runs = [...new Set(starts.map((e) => e.runId))];
      assert.ok(runs.length >= 4, `runs: ${runs.join(', ')}`);
      // Every night from the first to the last has its run: none skipped across the restart.
      const days = runs.map((r) => Date.parse(r.slice(r.indexOf('@') + 1)) / 86_400_000).sort((a, b) => a - b);
      for (let i = 1; i < days.length; i++) assert.equal(days[i]! - days[i - 1]!, 1);
      const checker = newChecker(sc);
      checker.onEvents(events);
      assert.deepEqual(checker.violations, []);
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs/patching.md\'s figures for examples/demo.yaml (its runs and reboots, and the line sim prints) are what `phasewise sim` prints', { timeout: 180_000 }, async () => {
  const doc = readFileSync(join(ROOT, 'docs/patching.md'), 'utf8');
  const r = await cliWithin(150_000, 'sim', 'examples/demo.yaml', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  const printed = /Patch schedules: (\d+) run starts and (\d+) reboots checked, no violation/.exec(r.stdout);
  assert.ok(printed, r.stdout);
  const prose = /\((\d+) runs with the default seed, (\d+) of them rebooting\)/.exec(doc.replace(/\s+/g, ' '));
  assert.ok(prose, 'docs/patching.md gives the demo\'s runs and reboots');
  assert.deepEqual([prose[1], prose[2]], [printed[1], printed[2]], 'the prose says what sim prints (it said 69 runs for 57)');
  assert.ok(doc.includes(printed[0]), `docs/patching.md shows the line sim prints: ${printed[0]}`);
});
