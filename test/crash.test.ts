/**
 * Crash test: the engine runs as a real process on an accelerated clock, with its state in SQLite,
 * while the fleet host plays the machines. The engine is killed with SIGKILL at seeded random moments
 * (while it loads and recovers, and while it runs) and started again each time, then let finish.
 * Afterwards the database must hold a finished run that nothing of the crashes shows in: every rollout
 * completed, an event log that keeps the engine's invariants, no attempt started twice, no key
 * executed twice, and every operator setting as it was set.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { DriverAction } from '../src/engine/driver.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { Random } from '../src/sim/random.js';
import { compileScenario } from '../src/sim/scenario.js';
import { FleetHost } from '../src/sim/realtime/fleet-host.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { baseScenario } from './helpers/harness.js';

const SEED = 20260105;
const MIN_KILLS = 50;
/** Kills aimed for (while running, before the end): room above MIN_KILLS for a slower machine. */
const TARGET_KILLS = 65;
/** After this many kills the engine is left to finish in peace. */
const MAX_KILLS = 150;
/** Share of kills aimed at start-up (loading the database, recovering) rather than a running engine. */
const EARLY_SHARE = 0.2;
const DEADLINE_MS = 100_000;

const AGENT = 'extension:contoso.agent';
const MONITOR = 'extension:contoso.monitor';
const AGENT_SETTINGS = { workspaceId: 'ws-42', level: 3, tags: ['a', 'b'], proxy: { url: 'http://proxy.contoso:3128', bypass: ['10.0.0.0/8'] } };
const MONITOR_SETTINGS = { sampleSeconds: 15 };
const OPTED_OUT = ['vm-west-sub1-0-1', 'vm-west-sub1-0-6', 'arc-north-sub2-0-2', 'ss-east/7'];

/**
 * Two releases with failures, rollbacks (some failing) and retries, over a scale set, standalone VMs
 * and Arc machines; an operator opts instances out and back in (one rejoins its running rollout, the
 * others catch up later); one instance stays out; a second extension is never released.
 */
function scenario(): Record<string, unknown> {
  return baseScenario({
    name: 'crash-test',
    seed: 7,
    horizon: 'P3D',
    profiles: { standard: { phaseBake: 'PT20M', retryVm: 'PT10M', retryArc: 'PT5M', gateRecheck: 'PT10M', maxPhaseFailurePercent: 100, groupMaxUnhealthyUpgradedPercent: 100 } },
    catalog: [
      { publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
      { publisher: 'Contoso', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '2.0.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, settings: AGENT_SETTINGS },
      // No enableAutomaticUpgrade: on by default on Arc machines, off elsewhere (R3).
      monitor: { publisher: 'Contoso', type: 'Monitor', typeHandlerVersion: '2.0', settings: MONITOR_SETTINGS },
    },
    fleet: {
      scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 24, extensions: ['agent', 'monitor'] }],
      vms: [
        { region: 'west', subscription: 'sub1', count: 10, zones: ['1', '2'], extensions: ['agent', 'monitor'] },
        { region: 'south', subscription: 'sub2', count: 4, extensions: ['agent'] },
      ],
      arcMachines: [{ region: 'north', subscription: 'sub2', count: 6, extensions: ['agent', 'monitor'] }],
    },
    failures: {
      versions: {
        '1.1.0.0': { installFailure: 0.08, unhealthyAfterUpgrade: 0.1, rollbackFailure: 0.15 },
        '1.2.0.0': { installFailure: 0.05, unhealthyAfterUpgrade: 0.05, rollbackFailure: 0.1 },
      },
    },
    events: [
      { at: 'PT10M', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT12M', setAutomaticUpgrade: { extension: 'agent', machines: OPTED_OUT, enabled: false } },
      { at: 'PT1H', setAutomaticUpgrade: { extension: 'agent', machines: [OPTED_OUT[1]!], enabled: true } },
      { at: 'PT3H30M', setAutomaticUpgrade: { extension: 'agent', machines: [OPTED_OUT[0]!, OPTED_OUT[2]!, OPTED_OUT[3]!], enabled: true } },
      { at: 'PT5H', publish: { extension: 'agent', version: '1.2.0.0' } },
      { at: 'PT5H5M', setAutomaticUpgrade: { extension: 'agent', machines: ['vm-west-sub1-0-3', 'arc-north-sub2-0-4'], enabled: false } },
      { at: 'PT5H6M', setAutomaticUpgrade: { extension: 'monitor', machines: ['vm-west-sub1-0-3'], enabled: true } },
      { at: 'PT8H', setAutomaticUpgrade: { extension: 'agent', machines: ['arc-north-sub2-0-4'], enabled: true } },
    ],
  });
}

const dir = mkdtempSync(join(tmpdir(), 'phasewise-crash-'));
const hosts: FleetHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls until `cond` holds or `ms` pass; says which. */
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() >= until) return false;
    await sleep(2);
  }
  return true;
}

/** Real milliseconds from fork to ready on this machine, from one engine started on a scratch database. */
async function startUpMs(scenarioFile: string): Promise<number> {
  const host = new FleetHost({ scenarioFile, dbFile: join(dir, 'calibration.sqlite'), factor: 1 });
  hosts.push(host);
  const t0 = Date.now();
  host.start();
  await waitFor(() => host.isReady || host.problems.length > 0, 20_000);
  const ms = Date.now() - t0;
  assert.deepEqual(host.problems, []);
  await host.close();
  return ms;
}

test('the engine killed with SIGKILL at random moments, over and over, still finishes the rollouts exactly once', { timeout: DEADLINE_MS + 20_000 }, async (t) => {
  const scenarioFile = join(dir, 'scenario.json');
  const dbFile = join(dir, 'phasewise.sqlite');
  writeFileSync(scenarioFile, JSON.stringify(scenario()));

  // Time runs on the wall clock, so the factor decides how many kills fit before the last scenario
  // event: it is chosen from how long an engine takes to start here, for TARGET_KILLS running kills.
  const startMs = await startUpMs(scenarioFile);
  const cycleMs = (1 - EARLY_SHARE) * (startMs + 110) + EARLY_SHARE * 125 + 15;
  const compiled = compileScenario(scenario(), scenarioFile);
  const lastEventMs = compiled.actions.at(-1)!.atMs - compiled.startMs;
  const factor = Math.round(Math.min(5000, Math.max(200, lastEventMs / ((TARGET_KILLS / (1 - EARLY_SHARE)) * cycleMs))));

  const host = new FleetHost({ scenarioFile, dbFile, factor });
  hosts.push(host);
  const t0 = Date.now();
  const deadline = t0 + DEADLINE_MS;
  const failed = () => host.problems.length > 0;
  const rng = new Random(SEED);
  host.start();
  while (!host.done && !failed() && host.stats.kills < MAX_KILLS && Date.now() < deadline) {
    const early = rng.chance(EARLY_SHARE);
    const delay = early ? rng.int(0, 250) : rng.int(20, 200);
    if (!early) await waitFor(() => host.isReady || !host.running, 20_000);
    await waitFor(() => host.done || failed(), delay);
    if (host.done || failed()) break;
    await host.kill();
    host.start();
  }
  await waitFor(() => host.done || failed(), deadline - Date.now());
  assert.deepEqual(host.problems, [], 'the engine never fails by itself, and the fleet never executes a key twice');
  assert.ok(host.done, `the run finished within ${DEADLINE_MS / 1000} s (virtual time reached ${new Date(host.clock.now()).toISOString()})`);
  await host.stop();
  const realMs = Date.now() - t0;
  const s = host.stats;
  t.diagnostic(`factor ${factor} (start-up ${startMs} ms), ${realMs} ms real; kills ${s.kills} (${s.killsWhileRunning} running, ${s.killsWhileStarting} starting), starts ${s.starts}, resent ${s.resent}, executed ${s.executed}, duplicates ${s.duplicates}, observations delivered ${s.delivered}, lost ${s.lost}`);
  assert.ok(s.killsWhileRunning >= MIN_KILLS, `at least ${MIN_KILLS} kills of a running engine before the run finished, got ${s.killsWhileRunning}`);

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
  assert.ok(created.length >= 3, `both releases and a catch-up made rollouts: ${created.join(', ')}`);
  assert.deepEqual(of('rollout.completed').map((e) => e.rolloutId).sort(), created);
  assert.deepEqual(rolloutRows, created.map((id) => ({ id, status: 'completed' })));
  for (const type of ['instance.rollback.failed', 'instance.retry.scheduled', 'autoUpgrade.changed'] as const) assert.ok(of(type).length > 0, `the run had ${type}`);

  // The event log: seq 1, 2, 3... with no gap, and the engine's invariants.
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `event ${i} has seq ${e.seq}`));
  const checker = new InvariantChecker({ pairs: symmetricPairs([...state.fleet.regions.values()]) });
  checker.onEvents(events);
  assert.deepEqual(checker.finish(), []);

  // No attempt started twice: one upgrade and at most one rollback per (rollout, machine, attempt).
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
  for (const r of actionRows) assert.deepEqual((JSON.parse(r.body) as DriverAction).settings, AGENT_SETTINGS);

  // Operator settings: each instance keeps its template's settings and the last opt-in or opt-out given to it.
  const initial = host.scenario.state.fleet.instances;
  const expectedAuto = new Map<string, boolean>();
  for (const [key, byMachine] of initial) for (const [id, inst] of byMachine) expectedAuto.set(`${key}|${id}`, inst.enableAutomaticUpgrade);
  for (const a of host.scenario.actions) {
    if (a.kind !== 'setAutomaticUpgrade') continue;
    for (const id of a.machineIds) if (expectedAuto.has(`${a.artifactKey}|${id}`)) expectedAuto.set(`${a.artifactKey}|${id}`, a.enabled);
  }
  let upgraded = 0;
  let blocked = 0;
  for (const [key, byMachine] of state.fleet.instances) {
    for (const [id, inst] of byMachine) {
      assert.deepEqual(inst.settings, key === AGENT ? AGENT_SETTINGS : MONITOR_SETTINGS, `settings of ${key} on ${id}`);
      assert.equal(inst.enableAutomaticUpgrade, expectedAuto.get(`${key}|${id}`), `enableAutomaticUpgrade of ${key} on ${id}`);
      if (key === MONITOR) {
        assert.equal(inst.installedVersion, '2.0.0.0');
        continue;
      }
      if (!inst.enableAutomaticUpgrade) continue;
      // Every opted-in agent ends on the newest release, unless a failed rollback blocked it (R31).
      if (inst.blockedReason) {
        blocked++;
        assert.equal(inst.status, 'Failed', `blocked ${id}`);
        continue;
      }
      upgraded++;
      assert.deepEqual([inst.installedVersion, inst.desiredVersion, inst.lastKnownGoodVersion, inst.status], ['1.2.0.0', '1.2.0.0', '1.2.0.0', 'Succeeded'], `agent on ${id}`);
    }
  }
  assert.equal(state.fleet.instances.get(AGENT)!.size, 24 + 10 + 4 + 6);
  assert.ok(upgraded > 30 && blocked > 0, `${upgraded} upgraded, ${blocked} blocked`);
  assert.ok(state.fleet.instances.get(MONITOR)!.size > 0);
});
