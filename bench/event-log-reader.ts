/**
 * bench:event-log-reader — what reading the event log through SqliteEventLogReader costs beside the routes'
 * former direct SQL (readEvents), on the database `sim --store sqlite:` leaves for examples/large.yaml
 * (about 49,000 machines, 130,000 events). The same queries, alternated in one process, CPU time;
 * the median of 5. Usage: node dist/bench/event-log-reader.js [FILE.sqlite] (made when absent).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import Database from 'better-sqlite3';
import { ACTIVITY_EVENT_TYPES } from '../src/api/arm/activity-log.js';
import { AVAILABILITY_EVENT_TYPES } from '../src/model/availability.js';
import { MACHINE_IS, readEvents, typeIn } from '../src/store/sqlite/event-log.js';
import { SqliteEventLogReader } from '../src/store/sqlite/event-log-reader.js';
import { machineLine } from './machine.js';

const file = process.argv[2] ?? '/tmp/phasewise-bench-reader.sqlite';
if (!existsSync(file)) {
  const sim = spawnSync(process.execPath, ['dist/src/cli/main.js', 'sim', 'examples/large.yaml', '--store', `sqlite:${file}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (sim.status !== 0) throw new Error(`sim exited with ${sim.status}`);
}
const db = new Database(file, { readonly: true });
const reader = new SqliteEventLogReader(db);
const machines = db.prepare('SELECT machine_id FROM event_machines ORDER BY id LIMIT 3000').pluck().all() as string[];
const rollout = db.prepare('SELECT rollout_id FROM events WHERE rollout_id IS NOT NULL LIMIT 1').pluck().get() as string;
const maxSeq = db.prepare('SELECT max(seq) FROM events').pluck().get() as number;
const seqs = Array.from({ length: 200 }, (_, i) => Math.floor((i * maxSeq) / 200));
const GATES = ['gate.held', 'gate.breached', 'gate.cleared', 'gate.excluded', 'gate.released'];
const BATCHES = ['batch.started', 'batch.completed'];
const MAX_MS = 253_402_300_799_999;

type Work = () => unknown;
const cases: Array<[string, Work, Work]> = [
  ['a machine\'s history (200, newest first) × 3,000 machines',
    () => { for (const m of machines) readEvents(db, MACHINE_IS, [m, 200], 'ORDER BY e.seq DESC LIMIT ?'); },
    async () => { for (const m of machines) await reader.read({ machineId: m, order: 'desc', limit: 200 }); }],
  ['a machine\'s availability events (2,000) × 3,000 machines',
    () => {
      for (const m of machines) readEvents(db, `${MACHINE_IS} AND ${typeIn(AVAILABILITY_EVENT_TYPES)}`, [m, ...AVAILABILITY_EVENT_TYPES, 2000], 'ORDER BY e.seq DESC LIMIT ?');
    },
    async () => { for (const m of machines) await reader.read({ machineId: m, types: AVAILABILITY_EVENT_TYPES, order: 'desc', limit: 2000 }); }],
  ['the event export (1,001 after a seq) × 200',
    () => { for (const s of seqs) readEvents(db, 'e.seq > ?', [s, 1001], 'ORDER BY e.seq LIMIT ?'); },
    async () => { for (const s of seqs) await reader.read({ afterSeq: s, order: 'asc', limit: 1001 }); }],
  ['the activity log\'s chunk (500 before a seq, types, time range) × 200',
    () => {
      const where = `e.seq < ? AND e.time >= ? AND e.time <= ? AND ${typeIn(ACTIVITY_EVENT_TYPES)}`;
      for (const s of seqs) readEvents(db, where, [s, 0, MAX_MS, ...ACTIVITY_EVENT_TYPES, 500], 'ORDER BY e.seq DESC LIMIT ?');
    },
    async () => {
      for (const s of seqs) await reader.read({ beforeSeq: s, fromMs: 0, toMs: MAX_MS, types: ACTIVITY_EVENT_TYPES, order: 'desc', limit: 500 });
    }],
  ['the rollout page\'s last batches (50) and gates (100) × 50',
    () => {
      for (let i = 0; i < 50; i++) {
        readEvents(db, `e.rollout_id = ? AND ${typeIn(BATCHES)}`, [rollout, ...BATCHES, 50], 'ORDER BY e.seq DESC LIMIT ?');
        readEvents(db, `e.rollout_id = ? AND ${typeIn(GATES)}`, [rollout, ...GATES, 100], 'ORDER BY e.seq DESC LIMIT ?');
      }
    },
    async () => {
      for (let i = 0; i < 50; i++) {
        await reader.read({ rolloutId: rollout, types: BATCHES, order: 'desc', limit: 50 });
        await reader.read({ rolloutId: rollout, types: GATES, order: 'desc', limit: 100 });
      }
    }],
];

const cpuMs = async (work: Work): Promise<number> => {
  const start = process.cpuUsage();
  await work();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log('bench:event-log-reader — the event log read through SqliteEventLogReader beside direct SQL (readEvents)');
console.log(`machine: ${machineLine()}`);
console.log(`database: ${file}, ${maxSeq.toLocaleString('en')} events; load average at the start: ${loadavg().map((x) => x.toFixed(2)).join(', ')}`);
for (const [name, direct, viaReader] of cases) {
  await cpuMs(direct);
  await cpuMs(viaReader);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < 5; i++) {
    a.push(await cpuMs(direct));
    b.push(await cpuMs(viaReader));
  }
  console.log(`${name}: direct ${median(a).toFixed(0)} ms CPU, reader ${median(b).toFixed(0)} ms CPU: ratio ${(median(b) / median(a)).toFixed(2)}`);
}
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(', ')}`);
