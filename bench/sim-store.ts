/**
 * bench:sim-store — `sim --store sqlite:` against the same run in memory, on the 50,000-machine example
 * (examples/large.yaml; issue 15 asks for at most 2×). Rounds alternate memory and SQLite in this one
 * process, so both see the same machine load; each round prints its ratio, and the event logs' digests
 * must match (group commit must not change the log). `--ticks N`, `--ms N`: group commit settings;
 * `--rounds N` (default 3); `--ungrouped`: one more SQLite run with a transaction per commit, for contrast;
 * `--no-journal`: group commit in SQLite transactions rather than through the journal (docs/store.md).
 * The SQLite time includes `close()`, which waits for the journal's apply worker to finish.
 * PHASEWISE_SQLITE_SYNC=NORMAL measures SQLite without an fsync per commit (see docs/store.md).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { DEFAULT_GROUP_COMMIT } from '../src/store/sqlite/group-commit.js';
import type { GroupCommitSettings } from '../src/store/sqlite/group-commit.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { machineLine, median } from './machine.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' }, ticks: { type: 'string' }, ms: { type: 'string' },
    ungrouped: { type: 'boolean', default: false }, 'no-journal': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20) throw new Error(`--rounds: expected 1 to 20, got ${values.rounds}`);
const group: GroupCommitSettings = { ticks: Number(values.ticks ?? DEFAULT_GROUP_COMMIT.ticks), wallMs: Number(values.ms ?? DEFAULT_GROUP_COMMIT.wallMs) };
const file = join(import.meta.dirname, '../../examples/large.yaml');
const dir = mkdtempSync(join(tmpdir(), 'phasewise-bench-sim-store-'));
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

interface Run { wallMs: number; importMs: number; closeMs: number; events: number; ticks: number; digest: string; commits: number; journal: string }

/** One simulation as `phasewise sim` runs it; `group` null: memory; 'off': a transaction per commit. */
function run(kind: 'memory' | 'sqlite' | 'ungrouped', n: number): Run {
  const scenario = loadScenarioFile(file, {});
  let store: SqliteStore | null = null;
  let importMs = 0;
  if (kind !== 'memory') {
    store = SqliteStore.open(join(dir, `run-${n}.sqlite`), { mode: 'new' });
    const t = performance.now();
    store.importState(scenario.state);
    importMs = performance.now() - t;
    if (kind === 'sqlite') store.groupCommits(group, undefined, { journal: !values['no-journal'] });
  }
  const hash = createHash('sha256');
  let events = 0;
  const t0 = performance.now();
  const result = runSimulation(scenario, {
    ...(store ? { store } : {}),
    onEvents: (es) => {
      events += es.length;
      for (const e of es) hash.update(JSON.stringify(e) + '\n');
    },
  });
  const t1 = performance.now();
  const commits = store?.transactions ?? 0;
  const journal = store?.journalFigures();
  store?.close();
  const closeMs = performance.now() - t1;
  const turns = journal ? `, ${journal.emptied} turns (${secs(journal.turnWaitMs)} waiting)` : '';
  const zeros = journal ? `, ${secs(journal.zeroWaitMs)} waiting for the zeros ahead` : '';
  const figures = journal ? ` · journal ${(journal.bytes / 1e6).toFixed(1)} MB, ${secs(journal.syncMs)} waiting for fdatasync${zeros}${turns}` : '';
  return { wallMs: performance.now() - t0, importMs, closeMs, events, ticks: result.ticks, digest: hash.digest('hex').slice(0, 16), commits, journal: figures };
}

try {
  const how = values['no-journal'] ? 'in SQLite transactions' : 'through the journal';
  console.log(`bench:sim-store — sim examples/large.yaml in memory and on SQLite (group commit ${group.ticks} commits / ${group.wallMs} ms ${how}), alternating, ${rounds} rounds`);
  console.log(`machine: ${machineLine()} · synchronous=${process.env.PHASEWISE_SQLITE_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
  console.log(`load average at start: ${load()}`);
  const ratios: number[] = [];
  let n = 0;
  for (let r = 1; r <= rounds; r++) {
    const mem = run('memory', n++);
    const sql = run('sqlite', n++);
    const same = mem.digest === sql.digest && mem.events === sql.events;
    ratios.push(sql.wallMs / mem.wallMs);
    const logs = same ? 'identical' : `DIFFER (${mem.digest} vs ${sql.digest})`;
    console.log(`round ${r}: memory ${secs(mem.wallMs)}, sqlite ${secs(sql.wallMs)} (import ${secs(sql.importMs)} before it; close ${secs(sql.closeMs)} in it)`
      + ` = ${(sql.wallMs / mem.wallMs).toFixed(2)}×`
      + ` · ${sql.commits.toLocaleString('en')} groups${sql.journal} · ${mem.events.toLocaleString('en')} events in ${mem.ticks.toLocaleString('en')} ticks · logs ${logs} · load ${load()}`);
    if (!same) process.exitCode = 1;
  }
  console.log(`ratio sqlite/memory: median ${median(ratios).toFixed(2)}× (target ≤ 2×), rounds ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  if (values.ungrouped) {
    const mem = run('memory', n++);
    const off = run('ungrouped', n++);
    const ratio = (off.wallMs / mem.wallMs).toFixed(2);
    console.log(`a transaction per commit (no group): memory ${secs(mem.wallMs)}, sqlite ${secs(off.wallMs)} = ${ratio}× · ${off.commits.toLocaleString('en')} transactions · load ${load()}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
