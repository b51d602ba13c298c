/**
 * The status table's writer thread: commits groups of reports on its own connection to the database
 * (WAL lets it write while the server's thread keeps parsing requests; SQLite's lock orders it with
 * the engine's commits). synchronous=FULL as the store: a group answered is on disk.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { STATUS_UPSERT_BYTES } from '../../drivers/agent/agent-store.js';
import type { PackedGroup } from './status-writer.js';
import { unpackGroup } from './status-writer.js';

const db = new Database((workerData as { file: string }).file, { timeout: 10_000 });
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${process.env.PHASEWISE_SQLITE_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
const put = db.prepare(STATUS_UPSERT_BYTES);
const commit = db.transaction((rows: Array<[string, number, Buffer]>) => {
  for (const r of rows) put.run(r[0], r[1], r[2]);
});

parentPort!.on('message', (m: { id: number; group: PackedGroup } | 'close') => {
  if (m === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    commit.immediate(unpackGroup(m.group));
    parentPort!.postMessage({ id: m.id, ok: true });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, ok: false, error: (err as Error).message });
  }
});
