/**
 * One group's row writes, coalesced: inside a group commit (several engine commits in one SQLite
 * transaction) a row written by many ticks is written once, with its last value, when the group
 * commits; a timer or an action inserted and then deleted or answered in the same group costs one
 * statement or none. The group is one transaction, so what it commits is the same rows as writing every
 * tick's statements in turn: the same last values, the same insert-only columns (the first insert's,
 * e.g. an instance's `ord`), and a delete followed by an insert still replaces the row.
 *
 * Statements without a rule here (the catalog, machines, maintenance, a new rollout…) are rare: the
 * pending rows are written first, then the statement runs at once, so the order between tables holds.
 */
import type Database from 'better-sqlite3';
import type { Runner, StatementName, Writers } from './rows.js';

/** How a statement's rows coalesce: the table (slot) and key, and what kind of write it is. */
interface Rule {
  slot: Slot;
  /** Argument positions of the row's key. */
  key: readonly number[];
  op: 'upsert' | 'insert' | 'delete' | 'answer';
  /** Upserts: argument positions a conflict does not update, so the row keeps its first insert's. */
  keep?: readonly number[];
}

type Slot = 'instances' | 'health' | 'meta' | 'phases' | 'regions' | 'units' | 'gateRuns' | 'attempts' | 'timers' | 'actions' | 'rollouts';

/** Slots in the order their rows are written when the group commits (no table refers to another). */
const SLOTS: readonly Slot[] = ['actions', 'rollouts', 'phases', 'regions', 'units', 'gateRuns', 'attempts', 'timers', 'instances', 'health', 'meta'];
/** Rowid tables: their rows are appended in the order they came (an action's `seq` is the order it was sent). */
const IN_ORDER: ReadonlySet<Slot> = new Set(['actions', 'timers']);

const RULES: Partial<Record<StatementName, Rule>> = {
  // putInstance's ON CONFLICT leaves name, publisher, type and ord as first inserted.
  putInstance: { slot: 'instances', key: [0, 1], op: 'upsert', keep: [2, 3, 4, 16] },
  deleteInstance: { slot: 'instances', key: [0, 1], op: 'delete' },
  putHealth: { slot: 'health', key: [0], op: 'upsert' },
  deleteHealth: { slot: 'health', key: [0], op: 'delete' },
  putMeta: { slot: 'meta', key: [0], op: 'upsert' },
  putPhase: { slot: 'phases', key: [0, 1], op: 'upsert' },
  putRegionState: { slot: 'regions', key: [0, 1], op: 'upsert' },
  putUnit: { slot: 'units', key: [0, 1], op: 'upsert' },
  putGateRun: { slot: 'gateRuns', key: [0, 1], op: 'upsert' },
  putAttempt: { slot: 'attempts', key: [0, 1], op: 'upsert' },
  deleteAttempt: { slot: 'attempts', key: [0, 1], op: 'delete' },
  putTimer: { slot: 'timers', key: [0], op: 'insert' },
  deleteTimer: { slot: 'timers', key: [0], op: 'delete' },
  putAction: { slot: 'actions', key: [0], op: 'insert' },
  // answerAction(answered_at, ok, key)
  answerAction: { slot: 'actions', key: [2], op: 'answer' },
  // putRollout updates a row inserted by putRolloutNew (no rule: written at once, before it).
  putRollout: { slot: 'rollouts', key: [5], op: 'upsert' },
};

/** What one key's row becomes when the group commits. */
interface Pending {
  /** The row is deleted first (a delete in the group, before the put if any). */
  del: unknown[] | null;
  /** The statement and arguments that write the row last, insert-only columns from the first put. */
  put: { name: StatementName; args: unknown[] } | null;
  /** The put is a plain INSERT of a row that did not exist before the group: a delete cancels both. */
  fresh: boolean;
  /** answerAction's (answered_at, ok) for an action. */
  answer: [unknown, unknown] | null;
}

/** An action inserted and answered in the same group: one statement. */
const PUT_ANSWERED_ACTION = 'INSERT INTO actions (key, rollout_id, machine_id, kind, body, sent_at, answered_at, ok) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';

export class RowCoalescer {
  private readonly pending = new Map<Slot, Map<string, Pending>>(SLOTS.map((s) => [s, new Map()]));
  private readonly deleteOf: Partial<Record<Slot, StatementName>> = {};
  /** Null when recording for the journal: an action sent and answered in the group is then two statements. */
  private readonly putAnswered: Runner | null;
  private count = 0;
  /** Writers for writeCommit: statements with a rule are held, the others run after what is held. */
  readonly writers: Writers;

  /**
   * `db` null: the writes go to `st` only (the journal's recorder), and `sort` false leaves keyed rows in
   * the order they came (the apply worker sorts them when it writes).
   */
  constructor(db: Database.Database | null, private readonly st: Writers, private readonly sort = true) {
    this.putAnswered = db ? db.prepare(PUT_ANSWERED_ACTION) : null;
    for (const [name, rule] of Object.entries(RULES) as Array<[StatementName, Rule]>) if (rule.op === 'delete') this.deleteOf[rule.slot] = name;
    const writers = {} as Record<StatementName, { run(...args: unknown[]): unknown }>;
    for (const name of Object.keys(st) as StatementName[]) {
      const rule = RULES[name];
      writers[name] = rule
        ? { run: (...args: unknown[]) => this.hold(name, rule, args) }
        : {
            run: (...args: unknown[]) => {
              this.apply();
              return st[name].run(...args);
            },
          };
    }
    this.writers = writers;
  }

  /** Rows held (keys with a pending write). */
  get size(): number {
    return this.count;
  }

  private hold(name: StatementName, rule: Rule, args: unknown[]): void {
    const rows = this.pending.get(rule.slot)!;
    const key = rule.key.length === 1 ? String(args[rule.key[0]!]) : rule.key.map((k) => String(args[k])).join('\u0000');
    let p = rows.get(key);
    if (!p) {
      rows.set(key, (p = { del: null, put: null, fresh: false, answer: null }));
      this.count++;
    }
    switch (rule.op) {
      case 'upsert': {
        if (p.put && rule.keep) for (const k of rule.keep) args[k] = p.put.args[k];
        p.put = { name, args };
        break;
      }
      case 'insert':
        p.put = { name, args };
        p.fresh = p.del === null;
        break;
      case 'delete':
        if (p.fresh) {
          rows.delete(key);
          this.count--;
        } else {
          p.del = args;
          p.put = null;
          p.answer = null;
        }
        break;
      case 'answer':
        p.answer = [args[0], args[1]];
        break;
    }
  }

  /** Writes every held row (keyed tables sorted by key: neighbouring rows share pages), then forgets them. */
  apply(): void {
    if (this.count === 0) return;
    for (const slot of SLOTS) {
      const rows = this.pending.get(slot)!;
      if (rows.size === 0) continue;
      const keys = IN_ORDER.has(slot) || !this.sort ? [...rows.keys()] : [...rows.keys()].sort();
      const del = this.deleteOf[slot];
      for (const key of keys) {
        const p = rows.get(key)!;
        if (p.del && del) this.st[del].run(...p.del);
        if (p.put && p.answer && p.put.name === 'putAction' && this.putAnswered) this.putAnswered.run(...p.put.args, ...p.answer);
        else {
          if (p.put) this.st[p.put.name].run(...p.put.args);
          if (p.answer) this.st.answerAction.run(p.answer[0], p.answer[1], key);
        }
      }
      rows.clear();
    }
    this.count = 0;
  }

  /** Forgets what is held (the group rolled back). */
  discard(): void {
    for (const rows of this.pending.values()) rows.clear();
    this.count = 0;
  }
}
