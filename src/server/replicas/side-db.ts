/**
 * The leader's working copy of the API's own tables (documents, agents, packages, tokens, webhooks): a
 * local SQLite file filled from PostgreSQL when the replica takes the lead, its changes captured and
 * shipped back in the leader's fenced commits (src/store/postgres/side-*.ts). The handlers keep their
 * synchronous reads and writes; PostgreSQL stays the truth the next leader starts from.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { installCapture, takeChanges } from '../../store/postgres/side-capture.js';
import { loadSideTables } from '../../store/postgres/side-load.js';
import { emptySqlite } from '../../store/postgres/snapshot.js';

export interface SideDb {
  db: Database.Database;
  file: string;
  /** The changes since the last call, as SQL for PostgreSQL; null when none. */
  takeChanges(): string | null;
  close(): void;
}

export async function openSideDb(client: pg.Client, dataDir: string): Promise<SideDb> {
  const file = join(dataDir, 'replica-side.sqlite');
  // Whatever an earlier leadership left is stale: PostgreSQL is the truth.
  for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
  // The whole SQLite schema, so code written against serve's one database finds every table it names
  // (the webhooks' cursor in `meta`); only the side tables are filled and mirrored.
  const db = emptySqlite(file);
  db.pragma('journal_mode = WAL');
  // Durability comes from PostgreSQL; this copy is rebuilt at every takeover.
  db.pragma('synchronous = OFF');
  await loadSideTables(client, db);
  installCapture(db);
  return { db, file, takeChanges: () => takeChanges(db), close: () => db.close() };
}
