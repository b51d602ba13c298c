/**
 * What the ARM surface stores beside the engine's model: the parts of a resource the engine has no use
 * for (tags, the raw properties a client sent, sealed protected settings, operation records). One table
 * in the engine's database, so a resource and the engine's view of it live and are backed up together.
 */
import type Database from 'better-sqlite3';
import { ARM_DOCUMENTS_DDL } from '../../store/sqlite/side-schema.js';
import { keyOf } from './ids.js';
import { badRequest } from './errors.js';

export type DocKind =
  | 'resourceGroup' | 'virtualMachine' | 'scaleSet' | 'scaleSetVm' | 'availabilitySet' | 'arcMachine'
  | 'extension' | 'operation' | 'feature' | 'setting'
  | 'maintenanceConfiguration' | 'configurationAssignment' | 'applyUpdate'
  | 'patchStatus' | 'dynamicScopeAssignment' | 'patchSchedule';

export interface Doc<T = Record<string, unknown>> {
  /** The resource id as first written (its casing is echoed back). */
  id: string;
  kind: DocKind;
  body: T;
}

/**
 * The longest resource id (and parent id) stored, in UTF-8 bytes: PostgreSQL's indexes take keys of at
 * most about 2,700 bytes, and a row replicas could not ship would block every later one (docs/api.md#limits).
 */
export const MAX_ID_BYTES = 2_048;

export class Documents {
  private readonly getStmt: Database.Statement;
  private readonly putStmt: Database.Statement;
  private readonly delStmt: Database.Statement;
  private readonly childrenStmt: Database.Statement;
  private readonly kindStmt: Database.Statement;
  private readonly underStmt: Database.Statement;
  private readonly countStmt: Database.Statement;
  private readonly operationsStmt: Database.Statement;
  private readonly sealedStmts: Database.Statement[];

  /**
   * `runInTransaction` is the store's transaction when there is one (SqliteStore.transaction), so the
   * engine's actions inside `atomically` leave after the outer COMMIT, not at their savepoint.
   */
  constructor(db: Database.Database, private readonly runInTransaction: <T>(fn: () => T) => T = (fn) => db.transaction(fn)()) {
    // The API's own table, created beside the engine's schema; it has no migrations of its own yet.
    db.exec(ARM_DOCUMENTS_DDL);
    this.getStmt = db.prepare('SELECT id, kind, body FROM arm_documents WHERE key = ?');
    this.putStmt = db.prepare('INSERT INTO arm_documents (key, parent, kind, id, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET body = excluded.body');
    this.delStmt = db.prepare('DELETE FROM arm_documents WHERE key = ? OR parent = ?');
    this.childrenStmt = db.prepare('SELECT id, kind, body FROM arm_documents WHERE parent = ? AND kind = ? ORDER BY key');
    this.kindStmt = db.prepare('SELECT id, kind, body FROM arm_documents WHERE kind = ? ORDER BY key');
    this.underStmt = db.prepare('SELECT id, kind, body FROM arm_documents WHERE key >= ? AND key < ? AND kind = ? ORDER BY key');
    this.countStmt = db.prepare('SELECT count(*) AS n FROM arm_documents WHERE kind = ?');
    this.operationsStmt = db.prepare(`SELECT id, json_extract(body, '$.status') AS status, json_extract(body, '$.finishedAtMs') AS finishedAtMs
      FROM arm_documents WHERE kind = 'operation'`);
    // Where sealed values live: an extension's protected settings, a VM's and a scale set's write-only osProfile fields.
    this.sealedStmts = [
      db.prepare(`SELECT id, json_extract(body, '$.protectedSettings') AS sealed FROM arm_documents
        WHERE kind = 'extension' AND json_type(body, '$.protectedSettings') = 'text' LIMIT 1`),
      db.prepare(`SELECT id, json_extract(body, '$.sealedOsProfile') AS sealed FROM arm_documents
        WHERE kind = 'virtualMachine' AND json_type(body, '$.sealedOsProfile') = 'text' LIMIT 1`),
      db.prepare(`SELECT d.id AS id, s.value AS sealed FROM arm_documents d, json_each(d.body, '$.sealed') s
        WHERE d.kind = 'scaleSet' AND s.type = 'text' LIMIT 1`),
    ];
  }

  get<T = Record<string, unknown>>(id: string): Doc<T> | undefined {
    const row = this.getStmt.get(keyOf(id)) as { id: string; kind: DocKind; body: string } | undefined;
    return row ? { id: row.id, kind: row.kind, body: JSON.parse(row.body) as T } : undefined;
  }

  put(id: string, parent: string, kind: DocKind, body: unknown): void {
    for (const [what, v] of [['resource id', id], ['parent id', parent]] as const) {
      const bytes = Buffer.byteLength(v);
      if (bytes > MAX_ID_BYTES) throw badRequest('InvalidResourceId', `The ${what} is ${bytes} bytes long; at most ${MAX_ID_BYTES} are accepted (limit maxResourceIdBytes).`);
    }
    this.putStmt.run(keyOf(id), keyOf(parent), kind, id, JSON.stringify(body));
  }

  /** Deletes a document and its direct children. */
  delete(id: string): void {
    this.delStmt.run(keyOf(id), keyOf(id));
  }

  children<T = Record<string, unknown>>(parent: string, kind: DocKind): Array<Doc<T>> {
    return (this.childrenStmt.all(keyOf(parent), kind) as Array<{ id: string; kind: DocKind; body: string }>).map((r) => ({ id: r.id, kind: r.kind, body: JSON.parse(r.body) as T }));
  }

  ofKind<T = Record<string, unknown>>(kind: DocKind): Array<Doc<T>> {
    return (this.kindStmt.all(kind) as Array<{ id: string; kind: DocKind; body: string }>).map((r) => ({ id: r.id, kind: r.kind, body: JSON.parse(r.body) as T }));
  }

  countOfKind(kind: DocKind): number {
    return (this.countStmt.get(kind) as { n: number }).n;
  }

  /**
   * Every operation record's status and when it finished (wall clock), without its body: a sweep reads all of them, and a body can be
   * large (a scale set's lists every instance it waits for).
   */
  operationSummaries(): Array<{ id: string; status: string; finishedAtMs: number | null }> {
    return this.operationsStmt.all() as Array<{ id: string; status: string; finishedAtMs: number | null }>;
  }

  /** The documents of a kind anywhere below `scope` (a subscription's, at any depth): a range of the key index, not a pass over the kind. */
  under<T = Record<string, unknown>>(scope: string, kind: DocKind): Array<Doc<T>> {
    const from = `${keyOf(scope)}/`;
    const to = `${keyOf(scope)}0`; // '0' follows '/': the first key past every one that starts with `from`
    return (this.underStmt.all(from, to, kind) as Array<{ id: string; kind: DocKind; body: string }>).map((r) => ({ id: r.id, kind: r.kind, body: JSON.parse(r.body) as T }));
  }

  /** One stored sealed value of each place secrets are kept (none where nothing is sealed), for the secret key's check at start. */
  sealedSamples(): Array<{ id: string; sealed: string }> {
    return this.sealedStmts.flatMap((st) => (st.all() as Array<{ id: string; sealed: string }>));
  }

  /** Runs `fn` in one transaction (nested engine commits become savepoints of it). */
  atomically<T>(fn: () => T): T {
    return this.runInTransaction(fn);
  }
}
