/**
 * bench:store — the durable store at a million machines: importing the fleet (target ≥ 100,000
 * machines/s), the database size per machine, and the 8-week rollout of bench:sim committed to SQLite
 * tick by tick, beside the same run in memory (each in its own process, for honest peak memory).
 */
import { spawnSync } from 'node:child_process';
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
} finally {
  rmSync(dir, { recursive: true, force: true });
}
