/**
 * The side tables as the PostgreSQL mirror sees them: their columns, primary key and PostgreSQL types,
 * read from the SQLite database itself (PRAGMA table_info), so the owners' DDL (`../sqlite/side-schema.ts`)
 * stays the one description. test/side-tables.test.ts checks PostgreSQL's migration agrees with it.
 */
import type Database from 'better-sqlite3';
import { SIDE_TABLES } from '../sqlite/side-schema.js';
import { quote } from './quote.js';

export { quote };

export type PgType = 'TEXT' | 'BIGINT' | 'DOUBLE PRECISION' | 'BYTEA';

export interface SideColumn {
  name: string;
  type: PgType;
  notNull: boolean;
}

export interface SideTable {
  name: string;
  columns: SideColumn[];
  /** The primary key's columns, in key order. */
  key: string[];
  /** Another UNIQUE constraint besides the key: changed rows are deleted before they are inserted again (see side-capture.ts). */
  otherUnique: boolean;
}

/** Creates the side tables that are missing (with their owners' DDL). */
export function ensureSideTables(db: Database.Database): void {
  for (const ddl of new Set(SIDE_TABLES.map((t) => t.ddl))) db.exec(ddl);
}

const TYPES: Record<string, PgType> = { TEXT: 'TEXT', INTEGER: 'BIGINT', REAL: 'DOUBLE PRECISION', BLOB: 'BYTEA' };

export function describeSideTables(db: Database.Database): SideTable[] {
  return SIDE_TABLES.map(({ name }) => {
    const info = db.pragma(`table_info(${name})`) as Array<{ name: string; type: string; notnull: number; pk: number }>;
    if (info.length === 0) throw new Error(`the side table ${name} is missing from the SQLite database`);
    const columns = info.map((c) => {
      const type = TYPES[c.type.toUpperCase()];
      if (!type) throw new Error(`${name}.${c.name}: no PostgreSQL type for SQLite's ${c.type}`);
      return { name: c.name, type, notNull: c.notnull === 1 || c.pk > 0 };
    });
    const key = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    if (key.length === 0 || key.length > 2) throw new Error(`${name}: the mirror handles primary keys of one or two columns, not ${key.length}`);
    const indexes = db.pragma(`index_list(${name})`) as Array<{ unique: number; origin: string }>;
    return { name, columns, key, otherUnique: indexes.some((i) => i.unique === 1 && i.origin !== 'pk') };
  });
}

/**
 * A value read from SQLite (integers as bigint: read with safeIntegers) as a PostgreSQL literal of
 * the column's type. Throws for what PostgreSQL cannot hold as the same value: a NUL character in
 * text, a fraction in an integer column, a value of another type than the column's.
 */
export function pgLiteral(v: unknown, col: SideColumn, where: () => string): string {
  if (v === null || v === undefined) {
    if (col.notNull) throw new Error(`${where()}: ${col.name} is NULL, which PostgreSQL refuses there`);
    return 'NULL';
  }
  switch (col.type) {
    case 'TEXT':
      if (typeof v !== 'string') throw new Error(`${where()}: ${col.name} holds a ${typeName(v)}, not text`);
      if (v.includes('\u0000')) throw new Error(`${where()}: ${col.name} holds a NUL character, which PostgreSQL text cannot`);
      return quote(v);
    case 'BIGINT':
      if (typeof v !== 'bigint') throw new Error(`${where()}: ${col.name} holds a ${typeName(v)}, not an integer`);
      return v.toString();
    case 'DOUBLE PRECISION':
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`${where()}: ${col.name} holds a ${typeName(v)}, not a number`);
      if (typeof v === 'number' && !Number.isFinite(v)) return `'${v}'::float8`;
      return typeof v === 'number' ? `${v.toPrecision(17)}::float8` : v.toString();
    case 'BYTEA':
      if (!Buffer.isBuffer(v)) throw new Error(`${where()}: ${col.name} holds a ${typeName(v)}, not bytes`);
      return `'\\x${v.toString('hex')}'::bytea`;
  }
}

function typeName(v: unknown): string {
  if (Buffer.isBuffer(v)) return 'blob';
  if (typeof v === 'number') return `fractional number (${v})`;
  return typeof v === 'bigint' ? 'integer' : typeof v;
}
