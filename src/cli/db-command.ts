/**
 * `phasewise db check | backup`: inspect a database, or copy it consistently while Phasewise runs.
 * Exit codes: 0 fine, 2 bad input (missing file, existing backup target), 3 corrupt, 4 newer than
 * this Phasewise, 5 in use, 6 I/O failure.
 */
import { existsSync } from 'node:fs';
import { checkDatabase, backupDatabase } from '../store/sqlite/maintenance.js';

export const DEFAULT_DB = 'data/phasewise.sqlite';
/** Where `npm start` keeps the demo's database (serve --data-dir data/demo). */
export const DEMO_DB = 'data/demo/phasewise.sqlite';

/** The database named, else $PHASEWISE_DB, else serve's default, else the one `npm start` made. */
export function dbFile(opt: string | undefined): string {
  const named = opt ?? process.env.PHASEWISE_DB;
  if (named) return named;
  return !existsSync(DEFAULT_DB) && existsSync(DEMO_DB) ? DEMO_DB : DEFAULT_DB;
}

export function dbCheckCommand(opts: { db?: string; json?: boolean }): void {
  const report = checkDatabase(dbFile(opts.db));
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
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (!ok) process.exitCode = 3;
}

export async function dbBackupCommand(destination: string, opts: { db?: string }): Promise<void> {
  const source = dbFile(opts.db);
  const { pages } = await backupDatabase(source, destination);
  process.stdout.write(`backed up ${source} to ${destination} (${pages} pages)\n`);
}
