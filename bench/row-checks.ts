/**
 * What `serve` pays at start for the size check of every row (src/store/sqlite/row-checks.ts), against
 * reading the same rows: N machines in the `machines` table's shape, in a temporary file.
 * node dist/bench/row-checks.js [N]   (default 2,000,000)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { findHugeValues } from '../src/store/sqlite/row-checks.js';

const n = Number(process.argv[2] ?? 2_000_000);
const dir = mkdtempSync(join(tmpdir(), 'phasewise-row-checks-'));
try {
  const db = new Database(join(dir, 'rows.sqlite'));
  db.exec(`CREATE TABLE machines (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, os TEXT NOT NULL, resource_group TEXT NOT NULL,
    region TEXT NOT NULL, zone TEXT, set_id TEXT, set_kind TEXT NOT NULL, update_domain INTEGER, fault_domain INTEGER, subscription TEXT NOT NULL,
    instance_id TEXT, ord INTEGER) WITHOUT ROWID`);
  const insert = db.prepare('INSERT INTO machines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(`vm-${i}`, `vm-${i}`, 'vmss', 'linux', `rg-${i % 100}`, 'eastus', '1', `ss-${i % 1000}`, 'vmss', i % 5, i % 3, 'sub-1', String(i), i);
  })();
  const cpu = (f: () => void): number => {
    const t = process.cpuUsage();
    f();
    const d = process.cpuUsage(t);
    return (d.user + d.system) / 1e6;
  };
  const read = cpu(() => {
    for (const _ of db.prepare('SELECT * FROM machines').iterate()) void _;
  });
  let found = -1;
  const scan = cpu(() => (found = findHugeValues(db, 1).length));
  db.close();
  console.log(`${n.toLocaleString('en')} machines: reading every row ${read.toFixed(2)} s CPU; the size check ${scan.toFixed(2)} s CPU `
    + `(${((scan / n) * 1e6).toFixed(2)} µs a row, ${((scan / read) * 100).toFixed(0)}% of the read); ${found} found`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
