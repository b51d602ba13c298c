/**
 * `phasewise db check | backup | restore`: inspect a database, copy it consistently while Phasewise runs, or put a copy back.
 * Exit codes: 0 fine, 2 bad input (missing file, existing backup target; for `check`, a file or database
 * with no Phasewise schema: empty, /dev/null), 3 corrupt, 4 newer than this Phasewise, 5 in use, 6 I/O failure.
 */
import { existsSync } from 'node:fs';
import { isPostgresUrl, redact } from '../store/postgres/connect.js';
import { backupPostgres, checkPostgres, restorePostgres } from '../store/postgres/maintenance.js';
import type { PgCheckReport } from '../store/postgres/maintenance.js';
import { checkDatabase, backupDatabase } from '../store/sqlite/maintenance.js';
import { restoreDatabase } from '../store/sqlite/restore.js';
import { UsageError } from './errors.js';

export const DEFAULT_DB = 'data/phasewise.sqlite';
/** Where `npm start` keeps the demo's database (serve --data-dir data/demo). */
export const DEMO_DB = 'data/demo/phasewise.sqlite';

/** The database named, else $PHASEWISE_DB, else serve's default, else the one `npm start` made. */
export function dbFile(opt: string | undefined): string {
  // An empty --db (an unset shell variable) must not quietly mean the default database.
  if (opt !== undefined && opt.trim() === '') throw new UsageError('--db: empty; name a database file or a postgres:// URL');
  const named = opt ?? process.env.PHASEWISE_DB;
  if (named) return named;
  return !existsSync(DEFAULT_DB) && existsSync(DEMO_DB) ? DEMO_DB : DEFAULT_DB;
}

/** `--db` may be a file or a postgres:// URL (then also $PHASEWISE_DB). */
export async function dbCheckCommand(opts: { db?: string; json?: boolean }): Promise<void> {
  const where = dbFile(opts.db);
  const report = isPostgresUrl(where) ? await checkPostgres(where) : checkDatabase(where);
  const ok = report.integrity.length === 1 && report.integrity[0] === 'ok';
  if (opts.json) {
    process.stdout.write(JSON.stringify({ ...report, ok }, null, 2) + '\n');
  } else {
    const lines = [
      `database ${report.file}`,
      `schema version ${report.schemaVersion} (this Phasewise: ${report.codeSchemaVersion})`,
      `integrity: ${ok ? 'ok' : report.integrity.slice(0, 10).join('; ')}`,
      ...Object.entries(report.counts).map(([k, v]) => `${k}: ${v.toLocaleString('en')}`),
      ...report.rollouts.map((r) => `rollout ${r.id}: ${r.artifact} → ${r.toVersion}, ${r.status}`),
    ];
    const pgReport = 'lease' in report ? (report as PgCheckReport) : null;
    if (pgReport?.lease) {
      const l = pgReport.lease;
      lines.push(`engine lease: ${l.holder ?? 'nobody'}, token ${l.token}, ${l.remainingMs > 0 ? `${Math.round(l.remainingMs)} ms left` : 'expired'}; commands waiting: ${pgReport.openCommands}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  // No schema at all is the wrong path (an empty file, /dev/null, a new database), not a damaged fleet: exit 2, as for another kind of file.
  if (!ok) process.exitCode = report.schemaVersion === 0 ? 2 : 3;
}

export async function dbBackupCommand(destination: string, opts: { db?: string }): Promise<void> {
  const source = dbFile(opts.db);
  if (isPostgresUrl(source)) {
    const { events } = await backupPostgres(source, destination);
    process.stdout.write(`backed up ${redact(source)} to ${destination} (a consistent snapshot as a Phasewise SQLite file; ${events} events)\n`);
    return;
  }
  const { pages } = await backupDatabase(source, destination);
  process.stdout.write(`backed up ${source} to ${destination} (${pages} pages)\n`);
}

/**
 * `db restore FILE --db postgres://…`: a backup (or a SQLite database) into an empty PostgreSQL database;
 * `db restore FILE --db DB.sqlite [--replace]`: a backup in place of a SQLite file (its serve stopped).
 * The target is never a default: restoring is the one `db` command that replaces what is there.
 */
export async function dbRestoreCommand(file: string, opts: { db?: string; replace?: boolean }): Promise<void> {
  if (opts.db !== undefined && opts.db.trim() === '') throw new UsageError('--db: empty; name a database file or a postgres:// URL');
  const target = opts.db ?? process.env.PHASEWISE_DB;
  if (!target) throw new UsageError('phasewise db restore: --db: name the database to restore into: a SQLite file (stop the serve using it first) or an empty PostgreSQL database (postgres://…)');
  if (!isPostgresUrl(target)) {
    const { pages, replaced } = await restoreDatabase(file, target, { replace: opts.replace === true });
    process.stdout.write(`restored ${file} to ${target} (${pages} pages${replaced ? '; the database there and its WAL and journal files were replaced' : ''})\n`);
    return;
  }
  if (opts.replace) throw new UsageError('phasewise db restore: --replace is for a SQLite file; a PostgreSQL database is restored only when it is empty');
  const { rows } = await restorePostgres(file, target);
  process.stdout.write(`restored ${file} into ${redact(target)} (${rows.toLocaleString('en')} rows)\n`);
}
