/**
 * Statements recorded as one text of literal SQL, sent in one round trip. PostgreSQL runs a
 * multi-statement query as one transaction, so a commit is atomic without BEGIN and COMMIT and costs
 * one round trip however many rows it writes. The statements are SQLite's (`../sqlite/rows.ts`).
 */
import { SQL } from '../sqlite/rows.js';
import type { StatementName, Writers } from '../sqlite/rows.js';
import { quote } from './quote.js';

/** A value as an SQL literal; the strings are escaped as PostgreSQL's own client does (quote.ts: the same text, faster). */
export function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot store the number ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'bigint') return v.toString();
  return quote(String(v));
}

interface Shape {
  pieces: string[];
  /** For a multi-row INSERT: the text before the tuple, the tuple's pieces, the text after. */
  insert: { head: string; tuple: string[]; tail: string } | null;
}

const SHAPES = new Map<StatementName, Shape>(
  (Object.keys(SQL) as StatementName[]).map((name) => {
    const sql = SQL[name];
    const m = /^([\s\S]*?VALUES\s*)(\([?,\s]+\))([\s\S]*)$/.exec(sql);
    return [name, { pieces: sql.split('?'), insert: m && /^INSERT/.test(sql) ? { head: m[1]!, tuple: m[2]!.split('?'), tail: m[3]! } : null }];
  }),
);

function fill(pieces: string[], args: unknown[]): string {
  if (args.length !== pieces.length - 1) throw new Error(`expected ${pieces.length - 1} values, got ${args.length}`);
  let out = pieces[0]!;
  for (let i = 0; i < args.length; i++) out += literal(args[i]) + pieces[i + 1]!;
  return out;
}

export class SqlBatch {
  private readonly parts: string[] = [];
  private readonly rows = new Map<StatementName, string[]>();
  readonly writers: Writers;

  /** `groupInserts`: INSERTs of one statement become multi-row INSERTs (for imports: no key repeats). */
  constructor(private readonly groupInserts = false, private readonly rowsPerInsert = 1000) {
    this.writers = Object.fromEntries((Object.keys(SQL) as StatementName[]).map((name) => [name, { run: (...args: unknown[]) => this.add(name, args) }])) as Writers;
  }

  raw(sql: string): void {
    this.parts.push(sql);
  }

  /** A statement of this store's own (not one of SQLite's shared ones), with `?` for its values. */
  statement(sql: string, args: unknown[]): void {
    this.parts.push(fill(sql.split('?'), args));
  }

  private add(name: StatementName, args: unknown[]): void {
    const shape = SHAPES.get(name)!;
    if (!this.groupInserts || !shape.insert) {
      this.parts.push(fill(shape.pieces, args));
      return;
    }
    let rows = this.rows.get(name);
    if (!rows) this.rows.set(name, (rows = []));
    rows.push(fill(shape.insert.tuple, args));
    if (rows.length >= this.rowsPerInsert) this.flush(name);
  }

  private flush(name: StatementName): void {
    const rows = this.rows.get(name);
    if (!rows || rows.length === 0) return;
    const { head, tail } = SHAPES.get(name)!.insert!;
    this.parts.push(head + rows.join(',') + tail);
    this.rows.set(name, []);
  }

  /** The statements so far, and forgets them (a long import is sent in several texts). */
  take(): string {
    for (const name of this.rows.keys()) this.flush(name);
    const text = this.parts.join(';\n');
    this.parts.length = 0;
    return text;
  }

  /** The statements so far as texts of about `maxChars` each (an import of millions of rows), and forgets them. */
  takeChunks(maxChars = 8_000_000): string[] {
    for (const name of this.rows.keys()) this.flush(name);
    const out: string[] = [];
    let current: string[] = [];
    let size = 0;
    for (const p of this.parts) {
      current.push(p);
      size += p.length;
      if (size >= maxChars) {
        out.push(current.join(';\n'));
        current = [];
        size = 0;
      }
    }
    if (current.length > 0) out.push(current.join(';\n'));
    this.parts.length = 0;
    return out;
  }
}
