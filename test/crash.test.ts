/**
 * Crash test: the engine runs as a real process on an accelerated clock, with its state in SQLite,
 * while the fleet host plays the machines. The engine is killed with SIGKILL at seeded random moments
 * (while it recovers from the last kill, and while it runs) and started again each time, then let finish.
 * Afterwards the database must hold a finished run that nothing of the crashes shows in: every rollout
 * completed, an event log that keeps the engine's invariants, no attempt started twice, no key
 * executed twice, and every operator setting as it was set.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { DriverAction } from '../src/engine/driver.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { isMachineHealthy } from '../src/model/health.js';
import { Random } from '../src/sim/random.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation, Simulation } from '../src/sim/simulator.js';
import { FleetHost } from '../src/sim/realtime/fleet-host.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { baseScenario } from './helpers/harness.js';
import { waitFor as waitUntil } from './helpers/poll.js';

const SEED = 20260105;
const MIN_KILLS = 50;
/** Kills aimed for in the time the run takes without crashes; crashes make it longer, so more happen. */
const TARGET_KILLS = 50;
/** After this many kills the engine is left to finish in peace. */
const MAX_KILLS = 150;
/** Share of kills aimed at recovery (opening and loading the database, resending, re-observing) rather than a running engine. */
const EARLY_SHARE = 0.2;
/** The kills stop by then at the latest: this, or twice the run's calibrated wall time if longer (a loaded machine). */
const DEADLINE_MS = 100_000;
/**
 * After the kills, the run has this much more wall time to finish (or the run's calibrated wall time, if
 * longer). The clock runs on the wall, so a loaded machine (slower restarts, each crash costing more virtual
 * time) needs more of it; the test is about finishing exactly once, not about speed.
 */
const FINISH_GRACE_MS = 60_000;
/**
 * The slowest clock the calibration may pick. It was 100: with start-ups of 5 s (a loaded machine) the run
 * then fit 10 kills in 100 s instead of 50 and did not finish in 160 s. At 30 the run without crashes
 * lasts at most 7 minutes, which the deadlines follow; the test's timeout bounds the worst case. On a
 * quiet machine the calibration picks a fast clock and the test takes as long as before.
 */
const MIN_FACTOR = 30;
/** The run without crashes at the slowest factor (3.5 h of virtual time: 7 minutes), with room: what the timeout allows for. */
const WORST_RUN_MS = 8 * 60_000;
const TIMEOUT_MS = Math.max(DEADLINE_MS, 2 * WORST_RUN_MS) + Math.max(FINISH_GRACE_MS, WORST_RUN_MS) + 60_000;

const AGENT = 'extension:contoso.agent';
const MONITOR = 'extension:contoso.monitor';
const SETTINGS: Record<string, Record<string, unknown>> = {
  [AGENT]: { workspaceId: 'ws-42', level: 3, tags: ['a', 'b'], proxy: { url: 'http://proxy.contoso:3128', bypass: ['10.0.0.0/8'] } },
  [MONITOR]: { sampleSeconds: 15 },
};
/** The newest release of each extension: where every instance still opted in ends. */
const NEWEST: Record<string, string> = { [AGENT]: '1.1.0.0', [MONITOR]: '2.1.0.0' };
const OPTED_OUT = ['vm-west-sub1-0-6', 'vm-west-sub1-0-1', 'arc-north-sub2-0-2', 'ss-east/7'];

/**
 * Two extensions released at once over a scale set, standalone VMs and Arc machines, with failed
 * installs, unhealthy upgrades, rollbacks (the monitor's sometimes failing) and retries, while the
 * operator changes opt-ins: agents opted out come back in (one while its rollout runs, the others
 * later), monitors are opted in by set and region, and two of them out again for good.
 */
function scenario(): Record<string, unknown> {
  return baseScenario({
    name: 'crash-test',
    seed: 7,
    horizon: 'P3D',
    // The gates are off so that every rollout completes, the fleet-wide verdict (R22) included.
    profiles: {
      standard: {
        phaseBake: 'PT15M', retryVm: 'PT5M', retryArc: 'PT2M', gateRecheck: 'PT10M', maxPhaseFailurePercent: 100,
        groupMaxUnhealthyUpgradedPercent: 100, releaseVerdict: false,
      },
    },
    catalog: [
      { publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
      { publisher: 'Contoso', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '2.0.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, settings: SETTINGS[AGENT] },
      // No enableAutomaticUpgrade: on by default on Arc machines, off elsewhere (R3).
      monitor: { publisher: 'Contoso', type: 'Monitor', typeHandlerVersion: '2.0', settings: SETTINGS[MONITOR] },
    },
    fleet: {
      scaleSets: [{
        name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 24, extensions: ['agent', 'monitor'],
        upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { maxUnhealthyUpgradedInstancePercent: 50 } },
      }],
      vms: [
        { region: 'west', subscription: 'sub1', count: 10, zones: ['1', '2'], extensions: ['agent', 'monitor'] },
        { region: 'south', subscription: 'sub2', count: 4, extensions: ['agent'] },
      ],
      arcMachines: [{ region: 'north', subscription: 'sub2', count: 6, extensions: ['agent', 'monitor'] }],
    },
    failures: {
      versions: {
        // A failed rollback of a release that broke its machine would leave the machine broken for good, and
        // the other extension there retrying forever (the gates that would stop it are off): keep them apart.
        '1.1.0.0': { installFailure: 0.08, unhealthyAfterUpgrade: 0.1 },
        '2.1.0.0': { installFailure: 0.1, rollbackFailure: 0.3 },
      },
    },
    events: [
      { at: 'PT5M', setAutomaticUpgrade: { extension: 'monitor', scaleSet: 'ss-east', enabled: true } },
      { at: 'PT5M', setAutomaticUpgrade: { extension: 'monitor', region: 'west', enabled: true } },
      { at: 'PT10M', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT12M', setAutomaticUpgrade: { extension: 'agent', machines: OPTED_OUT, enabled: false } },
      { at: 'PT30M', publish: { extension: 'monitor', version: '2.1.0.0' } },
      { at: 'PT1H', setAutomaticUpgrade: { extension: 'agent', machines: OPTED_OUT.slice(0, 1), enabled: true } },
      { at: 'PT1H30M', setAutomaticUpgrade: { extension: 'monitor', machines: ['ss-east/20', 'vm-west-sub1-0-8'], enabled: false } },
      { at: 'PT3H', setAutomaticUpgrade: { extension: 'agent', machines: OPTED_OUT.slice(1), enabled: true } },
    ],
  });
}

const dir = mkdtempSync(join(tmpdir(), 'phasewise-crash-'));
const hosts: FleetHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Polls every 2 ms: the crash instants are picked to the millisecond. */
const waitFor = (cond: () => boolean, ms: number) => waitUntil(cond, ms, 2);

/** Real milliseconds from fork to ready on this machine, from one engine started on a scratch database. */
async function startUpMs(scenarioFile: string): Promise<number> {
  const host = new FleetHost({ scenarioFile, dbFile: join(dir, 'calibration.sqlite'), factor: 1 });
  hosts.push(host);
  const t0 = Date.now();
  host.start();
  await waitFor(() => host.engine === 'running' || host.problems.length > 0, 20_000);
  const ms = Date.now() - t0;
  assert.deepEqual(host.problems, []);
  await host.close();
  return ms;
}

test('the engine killed with SIGKILL at random moments, over and over, still finishes the rollouts exactly once', { timeout: TIMEOUT_MS }, async (t) => {
  const scenarioFile = join(dir, 'scenario.json');
  const dbFile = join(dir, 'phasewise.sqlite');
  writeFileSync(scenarioFile, JSON.stringify(scenario()));

  // Time runs on the wall clock, so the factor decides how many kills fit in the run. It is chosen
  // from how long an engine takes to start here and how long the run takes without crashes.
  const startMs = await startUpMs(scenarioFile);
  const cycleMs = startMs + (1 - EARLY_SHARE) * 110 + EARLY_SHARE * 8 + 15;
  const compiled = compileScenario(scenario(), scenarioFile);
  const runMs = runSimulation(compiled).endMs - compiled.startMs;
  const factor = Math.round(Math.min(5000, Math.max(MIN_FACTOR, runMs / ((TARGET_KILLS / (1 - EARLY_SHARE)) * cycleMs))));
  const runWallMs = runMs / factor;
  assert.ok(runWallMs <= WORST_RUN_MS, `the scenario's run (${runMs} ms) fits the timeout's bound at the slowest factor`);
  const killsMs = Math.max(DEADLINE_MS, 2 * runWallMs);
  const graceMs = Math.max(FINISH_GRACE_MS, runWallMs);

  const host = new FleetHost({ scenarioFile, dbFile, factor });
  hosts.push(host);
  const t0 = Date.now();
  const deadline = t0 + killsMs;
  const failed = () => host.problems.length > 0;
  const rng = new Random(SEED);
  host.start();
  while (!host.done && !failed() && host.stats.kills < MAX_KILLS && Date.now() < deadline) {
    // Kill 0-15 ms after the engine opens the database (recovery takes about that long), or 20-200 ms after it is ready.
    const early = rng.chance(EARLY_SHARE);
    const delay = early ? rng.int(0, 15) : rng.int(20, 200);
    await waitFor(() => host.engine !== 'loading' && (early || host.engine !== 'recovering'), 20_000);
    await waitFor(() => host.done || failed(), delay);
    if (host.done || failed()) break;
    await host.kill();
    host.start();
  }
  await waitFor(() => host.done || failed(), deadline + graceMs - Date.now());
  assert.deepEqual(host.problems, [], 'the engine never fails by itself, and the fleet never executes a key twice');
  const s = host.stats;
  // Said before the verdict, so a run that does not finish shows how far it got and why.
  t.diagnostic(`factor ${factor} (start-up ${startMs} ms, ${(runMs / 3_600_000).toFixed(1)} h without crashes), ${Date.now() - t0} ms real for ${((host.clock.now() - compiled.startMs) / 3_600_000).toFixed(1)} h; kills ${s.kills} (${s.killsWhileRunning} running, ${s.killsWhileRecovering} recovering, ${s.killsWhileLoading} loading), starts ${s.starts}, resent ${s.resent}, executed ${s.executed}, duplicates ${s.duplicates}, observations delivered ${s.delivered}, lost ${s.lost}`);
  assert.ok(host.done, `the run finished within ${Math.round((killsMs + graceMs) / 1000)} s (virtual time reached ${new Date(host.clock.now()).toISOString()})`);
  await host.stop();
  await host.close();
  const midRun = s.killsWhileRunning + s.killsWhileRecovering;
  assert.ok(midRun >= MIN_KILLS, `at least ${MIN_KILLS} kills of an engine at work (running or recovering) before the run finished, got ${midRun}`);

  // What the database holds.
  const store = SqliteStore.open(dbFile, { mode: 'existing' });
  const state = store.load()!;
  const events = [...store.events()];
  const pending = store.pendingActions();
  store.close();
  const db = new Database(dbFile, { readonly: true });
  const rolloutRows = db.prepare('SELECT id, status FROM rollouts ORDER BY id').all() as Array<{ id: string; status: string }>;
  const actionRows = db.prepare('SELECT key, body, answered_at FROM actions').all() as Array<{ key: string; body: string; answered_at: number | null }>;
  db.close();

  // Every rollout completed, in the log and in the rollouts table.
  const of = <T extends EngineEvent['type']>(type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>;
  const created = of('rollout.created').map((e) => e.rolloutId).sort();
  assert.ok(created.length >= 2, `both releases made rollouts: ${created.join(', ')}`);
  assert.deepEqual(of('rollout.completed').map((e) => e.rolloutId).sort(), created);
  assert.deepEqual(rolloutRows, created.map((id) => ({ id, status: 'completed' })));
  for (const type of ['instance.rollback.started', 'instance.retry.scheduled', 'instance.skipped'] as const) assert.ok(of(type).length > 0, `the run had ${type}`);
  assert.equal(of('release.published').length, 2, 'each release was published once');

  // The event log: seq 1, 2, 3... with no gap, and the engine's invariants.
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `event ${i} has seq ${e.seq}`));
  const checker = new InvariantChecker({ pairs: symmetricPairs([...state.fleet.regions.values()]) });
  checker.onEvents(events);
  assert.deepEqual(checker.finish(), []);

  // No attempt started twice: one upgrade start per (machine, version, attempt), whichever rollout logged
  // it (a second rollout must not start the same attempt again); at most one rollback per (rollout, machine, attempt).
  const starts = new Map<string, number>();
  for (const e of of('instance.upgrade.started')) {
    const id = `${e.machineId} → ${e.toVersion} attempt ${e.attempt}`;
    assert.ok(!starts.has(id), `instance.upgrade.started logged twice for ${id} (seq ${starts.get(id)} and ${e.seq})`);
    starts.set(id, e.seq);
  }
  for (const type of ['instance.upgrade.started', 'instance.rollback.started'] as const) {
    const seen = new Set<string>();
    for (const e of of(type)) {
      const id = `${e.rolloutId}/${e.machineId}/${e.attempt}`;
      assert.ok(!seen.has(id), `${type} logged twice for ${id}`);
      seen.add(id);
    }
  }

  // Keys: each one the fleet executed was committed first, with the same action, and nothing is left unanswered.
  assert.equal(s.executed, host.executed.size);
  assert.ok(s.duplicates > 0, 'restarts resent keys the fleet had already executed');
  const rows = new Map(actionRows.map((r) => [r.key, r]));
  for (const [key, action] of host.executed) {
    const row = rows.get(key);
    assert.ok(row, `executed key ${key} is in the actions table`);
    assert.deepEqual(JSON.parse(row.body), JSON.parse(JSON.stringify(action)));
  }
  assert.equal(rows.size, host.executed.size, 'every committed action reached the fleet');
  assert.deepEqual(pending, []);
  for (const r of actionRows) {
    const action = JSON.parse(r.body) as DriverAction;
    assert.deepEqual(action.settings, SETTINGS[action.artifactKey], `settings sent with ${r.key}`);
  }

  // Operator settings: each instance keeps its template's settings and the last opt-in or opt-out given to it.
  const initial = host.scenario.state.fleet.instances;
  const expectedAuto = new Map<string, boolean>();
  for (const [key, byMachine] of initial) for (const [id, inst] of byMachine) expectedAuto.set(`${key}|${id}`, inst.enableAutomaticUpgrade);
  const changes: string[] = [];
  for (const a of host.scenario.actions) {
    if (a.kind !== 'setAutomaticUpgrade') continue;
    for (const id of a.machineIds) {
      const k = `${a.artifactKey}|${id}`;
      if (!expectedAuto.has(k) || expectedAuto.get(k) === a.enabled) continue;
      expectedAuto.set(k, a.enabled);
      changes.push(`${k}|${a.enabled}`);
    }
  }
  // Each opt-in and opt-out applied exactly once, in order.
  assert.deepEqual(of('autoUpgrade.changed').map((e) => `${e.artifactKey}|${e.machineId}|${e.enabled}`), changes);
  let upgraded = 0;
  for (const [key, byMachine] of state.fleet.instances) {
    for (const [id, inst] of byMachine) {
      const where = `${key} on ${id}`;
      assert.deepEqual(inst.settings, SETTINGS[key], `settings of ${where}`);
      assert.equal(inst.enableAutomaticUpgrade, expectedAuto.get(`${key}|${id}`), `enableAutomaticUpgrade of ${where}`);
      // Settled: on its last-known-good version, or Failed after a failed rollback (R31).
      if (inst.blockedReason) assert.equal(inst.status, 'Failed', where);
      else assert.deepEqual([inst.status, inst.installedVersion, inst.desiredVersion], ['Succeeded', inst.lastKnownGoodVersion, inst.lastKnownGoodVersion], where);
      // Every instance still opted in ends on the newest release, unless a failed rollback blocked it.
      if (inst.enableAutomaticUpgrade && !inst.blockedReason) {
        assert.equal(inst.installedVersion, NEWEST[key], where);
        upgraded++;
      }
    }
  }
  assert.ok(upgraded > 60, `${upgraded} instances upgraded`);

  // The engine's last word on each machine's health is the truth: reports lost with a crash were asked for again.
  const healthy = new Map<string, boolean>();
  host.driver.observe([...state.fleet.machines.keys()]);
  host.driver.deliverDue(Number.MAX_SAFE_INTEGER, (o) => { if (o.kind === 'health') healthy.set(o.machineId, isMachineHealthy(o.signals)); });
  for (const id of state.fleet.machines.keys()) assert.equal(!state.fleet.health.has(id), healthy.get(id), `health of ${id} as the engine last heard it`);
});

/**
 * Smallest reproductions of what the crash test showed about recovery, on the virtual clock: the
 * engine "crashes" between two steps (its store closed), the fleet's reports meanwhile are lost, and
 * it restarts from the database as `Simulation.restart` does.
 */
describe('recovery after an outage (reproductions for the engine)', () => {
  function crashAndRestart(raw: Record<string, unknown>, crashWhen: (sim: Simulation) => boolean, downMs: number): { sim: Simulation; events: EngineEvent[]; seqAtCrash: number } {
    const scenario = compileScenario(raw, 'outage');
    const file = join(dir, `outage-${Math.random().toString(36).slice(2)}.sqlite`);
    const first = SqliteStore.open(file, { mode: 'new' });
    first.importState(scenario.state);
    const sim = new Simulation(scenario, { store: first });
    while (!crashWhen(sim) && sim.step());
    const seqAtCrash = sim.engine.state.eventSeq;
    first.close();
    const back = sim.clock.now() + downMs;
    sim.driver.deliverDue(back, () => {}); // reported while nobody listened
    sim.clock.set(back);
    const store = SqliteStore.open(file, { mode: 'existing' });
    try {
      sim.restart(store);
      sim.run();
      return { sim, events: [...store.events()], seqAtCrash };
    } finally {
      store.close();
    }
  }

  test('a machine that recovered while the engine was down counts as healthy after the restart', () => {
    // Half the scale set is sick from 00:30 to 00:50; the engine is down from 00:30 to 00:55, so it never hears they are well again.
    const raw = baseScenario({ horizon: 'P10D', profiles: { standard: { phaseBake: 'PT1H' } }, failures: { background: [{ at: 'PT30M', duration: 'PT20M', scaleSet: 'ss-east', share: 0.5 }] } });
    const { sim } = crashAndRestart(raw, (s) => (s.engine.state.fleet.setUnhealthy.get('ss-east') ?? 0) > 0, 25 * 60_000);
    assert.equal(sim.engine.state.fleet.setUnhealthy.get('ss-east') ?? 0, 0, 'machines the engine counts unhealthy in ss-east');
    assert.equal([...sim.engine.state.rollouts.values()][0]?.status, 'completed');
  });

  test('an upgrade whose healthy report was lost with a crash is not rolled back for want of it', () => {
    // No failures at all; the engine dies while an instance waits for its health report, and is back 6 minutes later (the window is 5).
    const inHealthWait = (s: Simulation) => [...s.engine.state.rollouts.values()].some((r) => [...r.attempts.values()].some((a) => a.status === 'healthWait'));
    const { events, seqAtCrash } = crashAndRestart(baseScenario(), inHealthWait, 6 * 60_000);
    const rolledBack = events.filter((e) => e.seq > seqAtCrash && e.type === 'instance.health.unhealthy').map((e) => `${(e as { machineId: string }).machineId}: ${(e as { reason: string }).reason}`);
    assert.deepEqual(rolledBack, []);
  });
});
