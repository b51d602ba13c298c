/** Database files as an older Phasewise left them, to test migrations. */
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/**
 * Rewrites a v5 database as the previous Phasewise left it: the events table of schema v1 (one JSON
 * body per event, as that version encoded them), no event dictionaries, user_version 4.
 */
export function downgradeToV4(file: string): number {
  const store = SqliteStore.open(file, { mode: 'existing' });
  const events = [...store.events()];
  store.close();
  const db = new Database(file);
  // What v6 added, then what v5 changed.
  db.exec('DROP TABLE webhook_outbox; ALTER TABLE instances DROP COLUMN previous_good;');
  db.exec('DROP TABLE events; DROP TABLE event_shapes; DROP TABLE event_machines; DROP TABLE event_values;');
  const v1 = MIGRATIONS[0]!.sql;
  db.exec(v1.slice(v1.indexOf('CREATE TABLE events')));
  const put = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)');
  db.transaction(() => {
    for (const e of events) put.run(e.seq, e.time, e.type, 'rolloutId' in e ? e.rolloutId : null, 'machineId' in e ? e.machineId : null, JSON.stringify(e));
  })();
  db.pragma('user_version = 4');
  db.close();
  return events.length;
}
