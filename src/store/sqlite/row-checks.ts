/**
 * Rows SQLite's integrity check passes but Phasewise could not use: a JSON column holding text that is
 * not JSON (edited by hand, written by another program), and a value far larger than any Phasewise
 * writes. `db check` lists them; `serve` names the first when its load fails on one. Each is named by its
 * table, column and primary key, so it can be found and mended (or the file restored).
 */
import type Database from 'better-sqlite3';

/** The JSON columns of the engine's tables, as load.ts parses them (of meta, the keys it reads). */
const JSON_COLUMNS: ReadonlyArray<{ table: string; column: string; where?: string }> = [
  { table: 'meta', column: 'value', where: "key IN ('counters', 'enrollment', 'images', 'hostMaintenance', 'releases')" },
  { table: 'regions', column: 'zones' },
  { table: 'scale_sets', column: 'body' },
  { table: 'availability_sets', column: 'body' },
  { table: 'instances', column: 'settings' },
  { table: 'machine_health', column: 'signals' },
  { table: 'catalog_versions', column: 'os' },
  { table: 'catalog_versions', column: 'regions' },
  { table: 'rollouts', column: 'artifact' },
  { table: 'rollout_plans', column: 'plan' },
  { table: 'rollout_units', column: 'retry_ready' },
  { table: 'rollout_units', column: 'inflight' },
  { table: 'timers', column: 'token' },
  { table: 'actions', column: 'body' },
  { table: 'maintenance_configs', column: 'body' },
];

/**
 * The largest value Phasewise writes outside a rollout's plan: twice the largest request body `serve`
 * accepts (maxBodyBytes, at most 64 MiB). A 200 MB text in a machine's name passed every check.
 */
export const MAX_VALUE_BYTES = 128 * 1024 * 1024;
/** A plan lists every machine of its rollout; it is bounded only by the longest string Node can hold. */
export const MAX_PLAN_BYTES = 512 * 1024 * 1024;

export interface BadRow {
  table: string;
  column: string;
  /** The row's primary key, as `name 'value'` pairs. */
  row: string;
  problem: string;
}

/** The event log's tables: as long as the history, read on demand, never loaded whole; `serve` does not scan them at start. */
export const EVENT_TABLES: ReadonlySet<string> = new Set(['events', 'event_shapes', 'event_machines', 'event_values']);

/** Up to `limit` bad rows: text that is not JSON, then values too large. What `db check` lists. */
export function findBadRows(db: Database.Database, limit = 20): BadRow[] {
  const found = findInvalidJson(db, limit);
  return found.length >= limit ? found : [...found, ...findHugeValues(db, limit - found.length)];
}

/** Rows of a JSON column whose text is not JSON (parsed by SQLite: nothing is brought into JavaScript). */
export function findInvalidJson(db: Database.Database, limit: number): BadRow[] {
  const found: BadRow[] = [];
  const present = new Set(tablesOf(db));
  for (const { table, column, where } of JSON_COLUMNS) {
    if (!present.has(table) || !columnsOf(db, table).some((c) => c.name === column)) continue;
    const key = keyOf(db, table);
    const sql = `SELECT ${key.select} FROM ${quote(table)} WHERE ${quote(column)} IS NOT NULL AND octet_length(${quote(column)}) <= ${MAX_PLAN_BYTES}`
      + ` AND NOT json_valid(${quote(column)})${where ? ` AND ${where}` : ''} LIMIT ${limit - found.length}`;
    for (const r of db.prepare(sql).raw().all() as unknown[][]) found.push({ table, column, row: key.label(r), problem: 'not valid JSON' });
    if (found.length >= limit) break;
  }
  return found;
}

/**
 * Rows holding a value larger than Phasewise writes there, one pass per table. octet_length of a column
 * reads only the row's header, not the value: about 0.5 µs a row (bench/row-checks.ts).
 */
export function findHugeValues(db: Database.Database, limit: number, opts: { skip?: ReadonlySet<string> } = {}): BadRow[] {
  const found: BadRow[] = [];
  for (const table of tablesOf(db)) {
    if (opts.skip?.has(table)) continue;
    const key = keyOf(db, table);
    const columns = columnsOf(db, table).map((c) => ({ name: c.name, max: table === 'rollout_plans' && c.name === 'plan' ? MAX_PLAN_BYTES : MAX_VALUE_BYTES }));
    if (columns.length === 0) continue;
    const sizes = columns.map((c) => `octet_length(${quote(c.name)})`);
    const sql = `SELECT ${key.select}, ${sizes.join(', ')} FROM ${quote(table)} WHERE ${columns.map((c, i) => `${sizes[i]} > ${c.max}`).join(' OR ')}`
      + ` LIMIT ${limit - found.length}`;
    for (const r of db.prepare(sql).raw().all() as unknown[][]) {
      const lengths = r.slice(r.length - columns.length);
      columns.forEach((c, i) => {
        const bytes = Number(lengths[i] ?? 0);
        const problem = `${bytes.toLocaleString('en')} bytes, more than the ${c.max / 1024 / 1024} MiB Phasewise ever writes there`;
        if (bytes > c.max) found.push({ table, column: c.name, row: key.label(r), problem });
      });
    }
    if (found.length >= limit) return found.slice(0, limit);
  }
  return found;
}

/** One line for a bad row: `table instances, row (artifact_key 'x', machine_id 'y'), column settings: not valid JSON`. */
export function describeBadRow(b: BadRow): string {
  return `table ${b.table}, row (${b.row}), column ${b.column}: ${b.problem}`;
}

function tablesOf(db: Database.Database): string[] {
  return db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
}

function columnsOf(db: Database.Database, table: string): Array<{ name: string; pk: number }> {
  return db.prepare(`SELECT name, pk FROM pragma_table_info(?)`).all(table) as Array<{ name: string; pk: number }>;
}

/** How to select and print a row's primary key (its rowid when it has none). */
function keyOf(db: Database.Database, table: string): { select: string; label: (r: unknown[]) => string } {
  const pk = columnsOf(db, table).filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const names = pk.length > 0 ? pk : ['rowid'];
  return {
    select: names.map(quote).join(', '),
    label: (r) => names.map((n, i) => `${n} ${short(r[i])}`).join(', '),
  };
}

/** A key value as it can be typed back into sqlite3 (cut at 80 characters: a key may be huge too). */
function short(v: unknown): string {
  if (typeof v !== 'string') return String(v);
  const text = v.length > 80 ? `${v.slice(0, 80)}…` : v;
  return `'${text.replace(/'/g, "''")}'`;
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
