/** A full disk for a real SQLite store: tests of what the server does when no write can be kept. */
import assert from 'node:assert/strict';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

/** Makes the database full: no page can be added until `lift`, and the free space in its pages is taken. */
export function fill(store: SqliteStore): void {
  const db = store.database;
  db.exec('CREATE TABLE IF NOT EXISTS test_filler (b BLOB)');
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.pragma(`max_page_count = ${pages}`);
  const put = db.prepare('INSERT INTO test_filler VALUES (?)');
  for (const size of [4096, 512, 64, 8]) {
    try {
      for (let i = 0; i < 100_000; i++) put.run(Buffer.alloc(size));
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'SQLITE_FULL');
    }
  }
}

/** Gives the database room again. */
export function lift(store: SqliteStore): void {
  store.database.pragma('max_page_count = 1073741823');
}
