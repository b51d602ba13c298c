/**
 * bench:pg — the PostgreSQL store at scale, beside SQLite in the same run: import the benchmark fleet
 * (BENCH_PG_MACHINES, default 10,000,000 as issue 15 asks; the generator fits that size), load it back,
 * plan the release over it, and run rollout ticks committed to each store (engine commits per second;
 * BENCH_PG_TICK_MACHINES: on a fleet of that size instead). PostgreSQL is a
 * throw-away server from the npm package on loopback (fsync on).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Machine } from '../src/model/fleet.js';
import { automaticallyEligible } from '../src/engine/rollouts/create.js';
import { planRollout } from '../src/planner/plan.js';
import { profileFor } from '../src/planner/profile.js';
import { Simulation } from '../src/sim/simulator.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { connect } from '../src/store/postgres/connect.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { EngineState } from '../src/engine/state.js';
import type { Scenario } from '../src/sim/scenario.js';
import { benchScenario } from './fleet.js';
import { machineLine, peakRssMiB } from './machine.js';

const MACHINES = Number(process.env.BENCH_PG_MACHINES ?? 10_000_000);
const TICKS = Number(process.env.BENCH_PG_TICKS ?? 3000);
const TICK_MACHINES = Number(process.env.BENCH_PG_TICK_MACHINES ?? MACHINES);
/** The ticks' simulation is made from a scenario of this size, then restarted on the stored fleet. */
const SPEC_MACHINES = 1000;
const rssMiB = () => Math.round(process.memoryUsage.rss() / 2 ** 20);
/** With --expose-gc: the heap's live size after a full collection (what the phases before left reachable). */
const liveHeap = (): string => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return '';
  gc();
  return `; live heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MiB`;
};
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function planOnce(state: EngineState, actions: Scenario['actions']): { ms: number; batches: number; eligible: number } {
  const release = actions.find((a) => a.kind === 'publish');
  if (!release || release.kind !== 'publish') throw new Error('no release');
  const { fleet, catalog } = state;
  catalog.publish(release.publisher, release.type, release.version);
  const t0 = performance.now();
  // Eligibility as rollout creation finds it (rollouts/create.ts): one catalog search per type, OS, region and version.
  const machines: Machine[] = automaticallyEligible(state, fleet.instances.keys().next().value!, release.version.version, release.atMs);
  const plan = planRollout({
    rolloutId: 'bench', artifact: { kind: 'extension', publisher: release.publisher, type: release.type }, toVersion: release.version.version,
    profile: profileFor('standard'), regions: [...fleet.regions.values()], machines, scaleSets: fleet.scaleSets, availabilitySets: fleet.availabilitySets, setSizes: fleet.setSizes,
  });
  return { ms: performance.now() - t0, batches: plan.batches, eligible: machines.length };
}

/**
 * Loads the fleet back from PostgreSQL and plans the release over it. Each phase is a function of its own: the
 * module's top level (an async body) keeps values in its frame past their last use, and at 10,000,000 machines
 * one loaded state more than needed is gigabytes.
 */
async function loadAndPlan(url: string, release: Scenario['actions']): Promise<void> {
  const t0 = performance.now();
  const loaded = await PgStore.open(url);
  console.log(`load from PostgreSQL: ${s(performance.now() - t0)} (peak RSS so far ${peakRssMiB().toFixed(0)} MiB; RSS now ${rssMiB()} MiB)`);
  const plan = planOnce(loaded.load()!, release);
  const planned = `${plan.eligible.toLocaleString('en')} eligible machines, ${plan.batches.toLocaleString('en')} batches in ${s(plan.ms)}`;
  console.log(`plan over the loaded state: ${planned} (target ≤ 15 s); peak RSS ${peakRssMiB().toFixed(0)} MiB`);
  console.log(`RSS after the plan: ${rssMiB()} MiB (the loaded state and the plan; the peak above includes generating the fleet)`);
  await loaded.end();
}

/** BENCH_PG_TICK_MACHINES: a fleet of that size of its own, in a second database and a second SQLite file. */
async function importTickFleet(adminUrl: string, tickUrl: string, tickFile: string): Promise<void> {
  const admin = await connect(adminUrl); // not PgStore.open: that would load the big fleet again
  await admin.query('CREATE DATABASE ticks');
  await admin.end();
  const fleet = benchScenario(TICK_MACHINES, 0.02, {}, true).state;
  const p = await PgStore.open(tickUrl);
  await p.importState(fleet, { load: false });
  await p.end();
  const q = SqliteStore.open(tickFile, { mode: 'new' });
  q.importState(fleet);
  q.close();
  console.log(`ticks on a fleet of ${fleet.fleet.machines.size.toLocaleString('en')} machines of their own (BENCH_PG_TICK_MACHINES)`);
}

/**
 * `TICKS` engine steps of the rollout on one store, each step's commits durable before the next. The simulation
 * restarts from the store: its engine and its simulated fleet both use the loaded fleet (the scenario it is
 * made from is a small one of the same spec: its release, failure models and seed, not its fleet). The first
 * step creates the rollout (its plan over the whole fleet, one large commit): it is shown apart from the rest.
 */
async function ticksOn(kind: 'postgres' | 'sqlite', url: string, file: string): Promise<void> {
  let t0 = performance.now();
  console.log(`${kind}: before loading for the ticks${liveHeap()}`);
  const store = kind === 'postgres' ? await PgStore.open(url) : SqliteStore.open(file, { mode: 'existing' });
  const sim = new Simulation(benchScenario(SPEC_MACHINES, 0.02, {}, true), { store });
  sim.restart(store);
  sim.driver.observe = () => {};
  console.log(`${kind}: loaded for the ticks in ${s(performance.now() - t0)}; RSS ${rssMiB()} MiB${liveHeap()}`);
  const pg = store instanceof PgStore ? store : null;
  const commits0 = pg?.commits ?? 0;
  // SQLite commits once a step (synchronously, in the step); PostgreSQL counts its own.
  const committed = (steps: number) => (pg ? pg.commits - commits0 : steps);
  let steps = 0;
  let first: { ms: number; commits: number } | null = null;
  t0 = performance.now();
  for (; steps < TICKS && sim.step(); steps++) {
    if (pg) await pg.settled();
    if (steps === 0) first = { ms: performance.now() - t0, commits: committed(1) };
  }
  const ms = performance.now() - t0;
  const commits = committed(steps);
  console.log(`ticks on ${kind}: ${steps} steps, ${commits} commits in ${s(ms)} = ${Math.round(commits / (ms / 1000))} commits/s; peak RSS so far ${peakRssMiB().toFixed(0)} MiB`);
  if (first && steps > 1) {
    const rest = { ms: ms - first.ms, commits: commits - first.commits };
    const after = `the ${steps - 1} after it: ${rest.commits} commits in ${s(rest.ms)} = ${Math.round(rest.commits / (rest.ms / 1000))} commits/s`;
    console.log(`  the first step (the rollout created: its plan and its rows): ${first.commits} commits in ${s(first.ms)}; ${after}`);
  }
  if (pg) await pg.end();
  else (store as SqliteStore).close();
}

const dir = mkdtempSync(join(tmpdir(), 'phasewise-bench-pg-'));
const server = await startEmbeddedPostgres();
try {
  console.log(`bench:pg — the PostgreSQL store at ${MACHINES.toLocaleString('en')} machines, beside SQLite`);
  console.log(`machine: ${machineLine()}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  let t0 = performance.now();
  let scenario: Scenario | null = benchScenario(MACHINES, 0.02, {}, true);
  console.log(`fleet generated in ${s(performance.now() - t0)}: ${scenario.state.fleet.machines.size.toLocaleString('en')} machines`);

  const pgStore = await PgStore.open(server.url);
  t0 = performance.now();
  await pgStore.importState(scenario.state, { load: false });
  const pgImport = performance.now() - t0;
  const count = scenario.state.fleet.machines.size;
  const rate = (ms: number) => Math.round(count / (ms / 1000)).toLocaleString('en');
  console.log(`import into PostgreSQL: ${s(pgImport)} = ${rate(pgImport)} machines/s (one transaction; machines and instances by COPY)`);
  await pgStore.end();

  const sqliteFile = join(dir, 'bench.sqlite');
  const sqlite = SqliteStore.open(sqliteFile, { mode: 'new' });
  t0 = performance.now();
  sqlite.importState(scenario.state);
  const sqliteImport = performance.now() - t0;
  console.log(`import into SQLite:     ${s(sqliteImport)} = ${rate(sqliteImport)} machines/s`);
  sqlite.close();

  // The generated state goes before loading: the load is measured as a restarted serve would do it.
  const release = scenario.actions;
  scenario = null;
  await loadAndPlan(server.url, release);

  // Ticks: the rollout on each store, `TICKS` engine steps, each step's commits durable before the next.
  // BENCH_PG_TICK_MACHINES runs the ticks on a smaller fleet of their own (a commit's cost is the tick's rows).
  let tickUrl = server.url;
  let tickFile = sqliteFile;
  if (TICK_MACHINES !== MACHINES) {
    tickUrl = server.url.replace(/\/phasewise$/, '/ticks');
    tickFile = join(dir, 'ticks.sqlite');
    await importTickFleet(server.url, tickUrl, tickFile);
  }
  for (const kind of ['postgres', 'sqlite'] as const) await ticksOn(kind, tickUrl, tickFile);
  console.log(`peak RSS of the whole run: ${peakRssMiB().toFixed(0)} MiB`);
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
