/**
 * bench:store — the durable store at a million machines: importing the fleet (target ≥ 100,000
 * machines/s), the database size per machine, and the 8-week rollout of bench:sim committed to SQLite
 * tick by tick, beside the same run in memory (each in its own process, for honest peak memory).
 */
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { benchScenario } from './fleet.js';
import { machineLine } from './machine.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-bench-store-'));
try {
  console.log('bench:store — the SQLite store at 1,000,000 machines');
  console.log(`machine: ${machineLine()}`);
  const scenario = benchScenario();
  const machines = scenario.state.fleet.machines.size;
  const file = join(dir, 'import.sqlite');
  const store = SqliteStore.open(file, { mode: 'new' });
  const t0 = performance.now();
  store.importState(scenario.state);
  const importMs = performance.now() - t0;
  store.close();
  const bytes = statSync(file).size;
  console.log(`import: ${machines.toLocaleString('en')} machines with their extension instances in ${(importMs / 1000).toFixed(1)} s = ${Math.round(machines / (importMs / 1000)).toLocaleString('en')} machines/s (target ≥ 100,000)`);
  console.log(`size: ${(bytes / 2 ** 20).toFixed(0)} MiB, ${Math.round(bytes / machines)} bytes per machine (fleet, instances, catalog; before any rollout)`);

  const simScript = join(import.meta.dirname, 'sim.js');
  for (const [label, args] of [['memory', []], ['sqlite', [`--store=sqlite:${join(dir, 'rollout.sqlite')}`]]] as const) {
    const run = spawnSync(process.execPath, ['--max-old-space-size=800', simScript, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
    const keep = run.stdout.split('\n').filter((l) => /^(rollout|events|wall|peak)/.test(l));
    console.log(`rollout on ${label}: ${keep.join(' | ')}${run.status === 0 ? '' : ` (exit ${run.status}: ${run.stderr.trim().split('\n').pop()})`}`);
  }
  const rolloutBytes = statSync(join(dir, 'rollout.sqlite')).size;
  console.log(`size after the rollout: ${(rolloutBytes / 2 ** 20).toFixed(0)} MiB (${Math.round(rolloutBytes / machines)} bytes per machine, the event log included)`);
  eventLogSize(join(dir, 'rollout.sqlite'), machines);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The event log's size from SQLite's dbstat: the events table (target ≤ 300 bytes per machine per
 * rollout), and beside it its indexes and the dictionaries its rows refer to.
 */
function eventLogSize(file: string, machines: number): void {
  const db = new Database(file, { readonly: true });
  try {
    const rollouts = db.prepare('SELECT count(*) FROM rollouts').pluck().get() as number;
    const events = db.prepare('SELECT count(*) FROM events').pluck().get() as number;
    const sizes = db.prepare("SELECT name, sum(pgsize) AS bytes FROM dbstat WHERE name LIKE 'event%' GROUP BY name ORDER BY name").all() as Array<{ name: string; bytes: number }>;
    const per = (bytes: number) => (bytes / (machines * rollouts)).toFixed(0);
    const table = sizes.find((x) => x.name === 'events')?.bytes ?? 0;
    const rest = sizes.filter((x) => x.name !== 'events');
    const all = sizes.reduce((n, x) => n + x.bytes, 0);
    console.log(`event log: ${events.toLocaleString('en')} events; events table ${(table / 2 ** 20).toFixed(0)} MiB = ${per(table)} bytes per machine per rollout `
      + `(${machines.toLocaleString('en')} machines × ${rollouts} rollout${rollouts === 1 ? '' : 's'}; target ≤ 300), ${(table / events).toFixed(0)} bytes per event`);
    console.log(`  with its indexes and dictionaries: ${per(all)} bytes per machine per rollout (${rest.map((x) => `${x.name} ${per(x.bytes)}`).join(', ')})`);
  } finally {
    db.close();
  }
}
