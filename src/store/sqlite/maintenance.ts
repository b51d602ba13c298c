/** Inspection and backup of a database file, safe while a Phasewise is running on it. */
import { existsSync } from 'node:fs';
import { asStoreError, lockOwner, openDatabase } from './database.js';
import { checkBackupTarget, writeBackup } from '../backup-target.js';
import { SCHEMA_VERSION } from './schema.js';
import { SIDE_TABLES } from './side-schema.js';
import { applyLeftJournal } from './sqlite-store.js';
import { describeBadRow, findBadRows } from './row-checks.js';
import { shownStatus } from '../../model/rollout-status.js';
import { mayWrite, needsPrivateCopy, privateCopy } from './read-only-folder.js';
import { journalPaths } from './journal-file.js';
import { readIfExists } from '../../util/atomic-file.js';
import { isRunning } from '../../util/process-identity.js';

export interface CheckReport {
  file: string;
  schemaVersion: number;
  codeSchemaVersion: number;
  integrity: string[];
  counts: Record<string, number>;
  /** `status` as users are shown it elsewhere (`superseded` for a rollout a newer plan replaced). */
  rollouts: Array<{ id: string; status: string; toVersion: string; artifact: string }>;
}

/** A stored rollout's row as `db check` reads it. */
export type RolloutRow = CheckReport['rollouts'][number] & { reason: string | null };

/** The row as the report shows it: the API's status (`rollout list` says `superseded`, so does `db check`), without the reason. */
export function shownRollout({ reason, ...r }: RolloutRow): CheckReport['rollouts'][number] {
  return { ...r, status: shownStatus({ status: r.status, reason }) };
}

/** A running Phasewise holds the database (its lock names a live process): a journal beside it is its own to apply. */
function inUse(file: string): boolean {
  const owner = lockOwner(readIfExists(`${file}.lock`) ?? '');
  return owner !== null && isRunning(owner);
}

/**
 * Opens the database to read it, as a journal a stopped Phasewise left beside it would leave it: the journal
 * applied in place when this user may write there, else to a private copy (it was opened for writing
 * and refused: exit 6); read in place, or from a private copy when its folder may not be written and
 * no program has it open (read-only-folder.ts). Messages name the file given, never the copy.
 */
function openForReading(file: string): { db: ReturnType<typeof openDatabase>['db']; close: () => void } {
  const journal = journalPaths(file).some((p) => existsSync(p));
  const applyToCopy = journal && !mayWrite(file) && !inUse(file);
  if (journal && !applyToCopy && mayWrite(file)) applyLeftJournal(file);
  if (!applyToCopy && !needsPrivateCopy(file)) return openDatabase(file, { mode: 'existing', readonly: true });
  const { copy, remove } = privateCopy(file, applyToCopy ? journalPaths('') : []);
  try {
    if (applyToCopy) applyLeftJournal(copy);
    const opened = openDatabase(copy, { mode: 'existing', readonly: true });
    return { db: opened.db, close: () => { try { opened.close(); } finally { remove(); } } };
  } catch (err) {
    remove();
    const e = asStoreError(err, copy);
    e.message = e.message.split(copy).join(file);
    throw e;
  }
}

const COUNTED = ['machines', 'instances', 'rollouts', 'attempts', 'timers', 'events'] as const;

/** Integrity check, schema version and what the file holds. Read-only; no lock needed. */
export function checkDatabase(file: string): CheckReport {
  const { db, close } = openForReading(file);
  try {
    const schemaVersion = db.pragma('user_version', { simple: true }) as number;
    // An empty file is a database to SQLite, not a Phasewise one (as `db check` on PostgreSQL says of an empty database).
    let integrity = schemaVersion === 0
      ? ['no Phasewise schema in this file']
      : (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    // SQLite's check passes rows Phasewise cannot load: text that is not JSON, a value of 200 MB.
    const bad = schemaVersion === 0 ? [] : findBadRows(db).map(describeBadRow);
    if (bad.length > 0) integrity = [...integrity.filter((line) => line !== 'ok'), ...bad];
    const counts: Record<string, number> = {};
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name));
    for (const t of [...COUNTED, ...SIDE_TABLES.map((s) => s.name)]) if (tables.has(t)) counts[t] = (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
    if (tables.has('actions')) counts.pendingActions = (db.prepare('SELECT count(*) AS n FROM actions WHERE answered_at IS NULL').get() as { n: number }).n;
    const rollouts = tables.has('rollouts')
      ? ((db.prepare('SELECT id, status, reason, to_version AS toVersion, artifact_key AS artifact FROM rollouts ORDER BY created_at, id').all() as RolloutRow[]).map(shownRollout))
      : [];
    return { file, schemaVersion, codeSchemaVersion: SCHEMA_VERSION, integrity, counts, rollouts };
  } finally {
    close();
  }
}

/**
 * A consistent copy of a live database (SQLite's online backup). Never overwrites a file; the copy
 * takes its name only once complete (backup-target.ts).
 */
export async function backupDatabase(file: string, destination: string): Promise<{ pages: number }> {
  checkBackupTarget(destination);
  const { db, close } = openForReading(file);
  try {
    return await writeBackup(destination, async (tmp) => ({ pages: (await db.backup(tmp)).totalPages }));
  } catch (err) {
    throw asStoreError(err, destination);
  } finally {
    close();
  }
}
