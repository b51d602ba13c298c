/**
 * The event log's compact rows (schema v5). An event is stored as its `seq` (the rowid), its time in
 * milliseconds, a shape (its type and the order of its keys, shared by every event of that form), its
 * rollout, its machine (an id into `event_machines`), and a JSON array holding only the other values.
 * Values that repeat across events — placement, artifact, batch scope, batch id, versions, reasons,
 * callers — are stored once in `event_values` and referred to by id; the machine ids a batch lists
 * are ids into `event_machines`. Decoding rebuilds the object key by key in the original order, so
 * `JSON.stringify` of a decoded event is byte for byte the line the engine wrote (docs/store.md).
 */
import type Database from 'better-sqlite3';
import type { EngineEvent } from '../../model/events.js';

/** Keys whose values repeat across many events: stored once in `event_values`. */
const INTERNED = new Set(['placement', 'artifact', 'scope', 'batchId', 'fromVersion', 'toVersion', 'version', 'caller', 'reason', 'profile', 'gate', 'rule']);
/**
 * Interned keys whose objects the engine shares and replaces rather than changes (a machine's placement,
 * a rollout's artifact): looked up by identity first.
 */
const BY_IDENTITY = new Set(['placement', 'artifact']);
/** Keys holding machine ids (a batch's instances): ids into `event_machines`. */
const MACHINE_LISTS = new Set(['instances']);
/** Bounds the writer's and the reader's dictionaries in memory (a miss reads the table). */
const CACHE_LIMIT = 200_000;

/**
 * A shape is stored as the JSON array [type, ...keys]. A key is written as `@key` (from its own column), `%key` (an id into event_values),
 * `#key` (an array of ids into event_machines), or bare (the next value of the row's JSON array; `=key`
 * when the key itself starts with one of these marks).
 */
interface Shape { type: string; keys: string[] }

const TAGS = new Set(['@', '%', '#', '=']);

export interface EventRow { seq: number; time: number; shape: number; rollout_id: string | null; machine: number | null; vals: string | null }

/** The columns a reader selects to decode events (`e` is the events table). */
export const EVENT_COLUMNS = 'e.seq, e.time, e.shape, e.rollout_id, e.machine, e.vals';

/** A condition on the event's type: `types.length` parameters follow. */
export function typeIn(types: readonly string[]): string {
  return `e.shape IN (SELECT id FROM event_shapes WHERE type IN (${types.map(() => '?').join(', ')}))`;
}

/** A condition on the machine an event concerns (one parameter, the machine id); uses the index events_machine. */
export const MACHINE_IS = 'e.machine = (SELECT id FROM event_machines WHERE machine_id = ?)';

/** A dictionary of one table (text → id), bounded in memory; ids are assigned here, in order. */
class Dictionary {
  private readonly cache = new Map<string, number>();
  /**
   * Ids of values that are objects, by identity: events of one machine or rollout share their placement
   * and artifact objects, so most lookups skip turning them into JSON (and hashing that text) again.
   */
  private byObject = new WeakMap<object, number>();
  private next = 1;
  /**
   * The table holds no text the cache lacks (it was empty at the last sync and the cache was never
   * cleared since): a miss is then a new value, inserted without looking it up first (the example's
   * events add 34,680 values and 49,423 machines, each looked up in vain before).
   */
  private complete = false;
  private readonly find: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly max: Database.Statement;

  constructor(db: Database.Database, table: string, column: string, extra: string[] = []) {
    this.find = db.prepare(`SELECT id FROM ${table} WHERE ${column} = ?`).pluck();
    this.insert = db.prepare(`INSERT INTO ${table} (id, ${[column, ...extra].join(', ')}) VALUES (?, ${[column, ...extra].map(() => '?').join(', ')})`);
    this.max = db.prepare(`SELECT max(id) FROM ${table}`).pluck();
  }

  /**
   * Called at the start of every commit: a rolled-back transaction may have taken back ids this
   * dictionary handed out; then it forgets what it knew and continues after the table's largest id
   * (and says so: true).
   */
  sync(): boolean {
    const max = (this.max.get() as number | null) ?? 0;
    if (max === this.next - 1) {
      if (max === 0) this.complete = true;
      return false;
    }
    this.cache.clear();
    this.byObject = new WeakMap();
    this.next = max + 1;
    this.complete = max === 0;
    return true;
  }

  /** The id of a value's JSON text; objects are looked up by identity first (see `byObject`). */
  idOfValue(v: unknown): number {
    if (typeof v !== 'object' || v === null) return this.idOf(JSON.stringify(v));
    let id = this.byObject.get(v);
    if (id === undefined) this.byObject.set(v, (id = this.idOf(JSON.stringify(v))));
    return id;
  }

  idOf(text: string, ...extra: unknown[]): number {
    let id = this.cache.get(text);
    if (id !== undefined) return id;
    id = this.complete ? undefined : (this.find.get(text) as number | undefined);
    if (id === undefined) this.insert.run((id = this.next++), text, ...extra);
    if (this.cache.size >= CACHE_LIMIT) {
      this.cache.clear();
      this.complete = false;
    }
    this.cache.set(text, id);
    return id;
  }
}

/** How a key of an event is stored (see Shape): its mark in the shape. */
const enum Tag { Column, Value, Machines, Escaped, Bare }
const MARKS = ['@', '%', '#', '=', ''];

/** A node of the shapes' trie: the shape id of the keys so far (0: none yet), and the next key's nodes by tag. */
interface ShapeNode { id: number; next: Array<Map<string, ShapeNode> | undefined> }
const shapeNode = (): ShapeNode => ({ id: 0, next: [] });

/** Writes events as compact rows; one per store (its dictionaries follow the store's commits). */
export class EventWriter {
  private readonly machines: Dictionary;
  private readonly values: Dictionary;
  private readonly shapes: Dictionary;
  private readonly put: Database.Statement;
  /**
   * Shape ids by type and marked keys, walked key by key: an event's shape is found without making its
   * text (a JSON array) and hashing it. Forgotten with the shapes' dictionary (a rolled-back id).
   */
  private shapeIds = new Map<string, ShapeNode>();

  constructor(db: Database.Database) {
    this.machines = new Dictionary(db, 'event_machines', 'machine_id');
    this.values = new Dictionary(db, 'event_values', 'value');
    this.shapes = new Dictionary(db, 'event_shapes', 'shape', ['type']);
    this.put = db.prepare('INSERT INTO events (seq, time, shape, rollout_id, machine, vals) VALUES (?, ?, ?, ?, ?, ?)');
  }

  /** Before the first event of a commit (inside its transaction). */
  sync(): void {
    this.machines.sync();
    this.values.sync();
    if (this.shapes.sync()) this.shapeIds = new Map();
  }

  /** The last event's time and what it gave: the events of one tick share their time. */
  private lastTime = '';
  private lastMs = Number.NaN;
  private lastLifted = false;

  write(e: EngineEvent): void {
    const vals: unknown[] = [];
    if (e.time !== this.lastTime) {
      this.lastTime = e.time;
      this.lastMs = Date.parse(e.time);
      // A time the column cannot give back exactly (not toISOString's form) stays among the values.
      this.lastLifted = Number.isFinite(this.lastMs) && new Date(this.lastMs).toISOString() === e.time;
    }
    const ms = this.lastMs;
    const timeLifted = this.lastLifted;
    let rolloutId: string | null = null;
    let machine: number | null = null;
    let node: ShapeNode | undefined = this.shapeIds.get(e.type);
    if (!node) this.shapeIds.set(e.type, (node = shapeNode()));
    const event = e as unknown as Record<string, unknown>;
    // for…in: an event is a plain object (its keys in the order JSON writes them), no Object.entries array per event.
    for (const k in event) {
      const v = event[k];
      if (v === undefined) continue; // JSON leaves it out too
      const tag = tagOf(k, v, timeLifted);
      const next: Map<string, ShapeNode> = (node.next[tag] ??= new Map());
      let child: ShapeNode | undefined = next.get(k);
      if (!child) next.set(k, (child = shapeNode()));
      node = child;
      if (tag === Tag.Column) {
        if (k === 'rolloutId') rolloutId = v as string;
        else if (k === 'machineId') machine = this.machines.idOf(v as string);
      } else if (tag === Tag.Value) vals.push(BY_IDENTITY.has(k) ? this.values.idOfValue(v) : this.values.idOf(JSON.stringify(v)));
      else if (tag === Tag.Machines) vals.push((v as string[]).map((x) => this.machines.idOf(x)));
      else vals.push(v);
    }
    if (node.id === 0) node.id = this.shapes.idOf(JSON.stringify([e.type, ...markedKeys(event, timeLifted)]), e.type);
    this.put.run(e.seq, timeLifted ? ms : Number.isFinite(ms) ? ms : 0, node.id, rolloutId, machine, vals.length > 0 ? JSON.stringify(vals) : null);
  }
}

/** How key `k` with value `v` is stored (`timeLifted`: the event's time goes to its column). */
function tagOf(k: string, v: unknown, timeLifted: boolean): Tag {
  if (k === 'seq' || k === 'type' || (k === 'time' && timeLifted)) return Tag.Column;
  if ((k === 'rolloutId' || k === 'machineId') && typeof v === 'string') return Tag.Column;
  if (INTERNED.has(k) && v !== null) return Tag.Value;
  if (MACHINE_LISTS.has(k) && Array.isArray(v) && v.every((x) => typeof x === 'string')) return Tag.Machines;
  return TAGS.has(k[0]!) ? Tag.Escaped : Tag.Bare;
}

/** An event's keys as its shape stores them (`@key`, `%key`, `#key`, `=key` or bare), in order. */
function markedKeys(event: Record<string, unknown>, timeLifted: boolean): string[] {
  const keys: string[] = [];
  for (const k in event) if (event[k] !== undefined) keys.push(MARKS[tagOf(k, event[k], timeLifted)] + k);
  return keys;
}

/** Decodes rows back into events; make one per read (its dictionaries are read as needed). */
export class EventDecoder {
  private readonly shapes = new Map<number, Shape>();
  private readonly machines = new Map<number, string>();
  private readonly values = new Map<number, string>();
  private readonly shapeStmt: Database.Statement;
  private readonly machineStmt: Database.Statement;
  private readonly valueStmt: Database.Statement;

  constructor(db: Database.Database) {
    this.shapeStmt = db.prepare('SELECT shape FROM event_shapes WHERE id = ?').pluck();
    this.machineStmt = db.prepare('SELECT machine_id FROM event_machines WHERE id = ?').pluck();
    this.valueStmt = db.prepare('SELECT value FROM event_values WHERE id = ?').pluck();
  }

  decode(row: EventRow): EngineEvent {
    const shape = this.shape(row.shape);
    const vals = row.vals === null ? [] : (JSON.parse(row.vals) as unknown[]);
    const out: Record<string, unknown> = {};
    let i = 0;
    for (const k of shape.keys) {
      const tag = k[0];
      const name = k.slice(1);
      if (tag === '@') out[name] = this.column(name, row, shape);
      else if (tag === '%') out[name] = JSON.parse(this.value(vals[i++] as number));
      else if (tag === '#') out[name] = (vals[i++] as number[]).map((id) => this.machine(id));
      else if (tag === '=') out[name] = vals[i++];
      else out[k] = vals[i++];
    }
    return out as unknown as EngineEvent;
  }

  private column(name: string, row: EventRow, shape: Shape): unknown {
    switch (name) {
      case 'seq': return row.seq;
      case 'time': return new Date(row.time).toISOString();
      case 'type': return shape.type;
      case 'rolloutId': return row.rollout_id;
      default: return row.machine === null ? null : this.machine(row.machine);
    }
  }

  private shape(id: number): Shape {
    let s = this.shapes.get(id);
    if (!s) {
      const text = this.shapeStmt.get(id) as string | undefined;
      if (text === undefined) throw new Error(`event log: no shape ${id}`);
      const [type, ...keys] = JSON.parse(text) as string[];
      this.shapes.set(id, (s = { type: type!, keys }));
    }
    return s;
  }

  private machine(id: number): string {
    return lookup(this.machines, id, this.machineStmt, 'machine');
  }

  private value(id: number): string {
    return lookup(this.values, id, this.valueStmt, 'value');
  }
}

function lookup(cache: Map<number, string>, id: number, stmt: Database.Statement, what: string): string {
  let text = cache.get(id);
  if (text === undefined) {
    text = stmt.get(id) as string | undefined;
    if (text === undefined) throw new Error(`event log: no ${what} ${id}`);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(id, text);
  }
  return text;
}

/** Rows read per query while iterating: better-sqlite3 cannot run the decoder's look-ups during an open iteration. */
const CHUNK = 10_000;

/** Every event after `afterSeq`, in `seq` order, read in chunks. */
export function* iterateEvents(db: Database.Database, afterSeq = 0): Generator<EngineEvent> {
  const stmt = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.seq > ? ORDER BY e.seq LIMIT ${CHUNK}`);
  const decoder = new EventDecoder(db);
  let after = afterSeq;
  for (;;) {
    const rows = stmt.all(after) as EventRow[];
    for (const r of rows) yield decoder.decode(r);
    if (rows.length < CHUNK) return;
    after = rows[rows.length - 1]!.seq;
  }
}

/** Reads and decodes events with a condition (`where`, SQL on `e`), an order and a limit. */
export function readEvents(db: Database.Database, where: string, params: unknown[], tail = 'ORDER BY e.seq'): EngineEvent[] {
  const rows = db.prepare(`SELECT ${EVENT_COLUMNS} FROM events e${where ? ` WHERE ${where}` : ''} ${tail}`).all(...params) as EventRow[];
  const decoder = new EventDecoder(db);
  return rows.map((r) => decoder.decode(r));
}

/** The v5 tables; the migration from v4 re-encodes every event (migrateEventsFromV4). */
export const EVENT_TABLES_SQL = `
  CREATE TABLE event_shapes (id INTEGER PRIMARY KEY, shape TEXT NOT NULL UNIQUE, type TEXT NOT NULL);
  CREATE INDEX event_shapes_type ON event_shapes (type);
  CREATE TABLE event_machines (id INTEGER PRIMARY KEY, machine_id TEXT NOT NULL UNIQUE);
  CREATE TABLE event_values (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, shape INTEGER NOT NULL, rollout_id TEXT, machine INTEGER, vals TEXT
  );
  CREATE INDEX events_rollout ON events (rollout_id, seq) WHERE rollout_id IS NOT NULL;
  CREATE INDEX events_machine ON events (machine, seq) WHERE machine IS NOT NULL;
`;

/** Schema v4 → v5: the old table (one JSON body per event) is re-encoded in `seq` order, then dropped. */
export function migrateEventsFromV4(db: Database.Database): void {
  db.exec('DROP INDEX IF EXISTS events_rollout; ALTER TABLE events RENAME TO events_v4;');
  db.exec(EVENT_TABLES_SQL);
  const writer = new EventWriter(db);
  writer.sync();
  const chunk = db.prepare(`SELECT seq, body FROM events_v4 WHERE seq > ? ORDER BY seq LIMIT ${CHUNK}`);
  for (let after = Number.MIN_SAFE_INTEGER; ;) {
    const rows = chunk.all(after) as Array<{ seq: number; body: string }>;
    for (const row of rows) writer.write(JSON.parse(row.body) as EngineEvent);
    if (rows.length < CHUNK) break;
    after = rows[rows.length - 1]!.seq;
  }
  db.exec('DROP TABLE events_v4');
}
