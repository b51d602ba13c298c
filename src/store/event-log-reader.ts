/**
 * Reading the event log, the same on SQLite and PostgreSQL (issue 15: the API reads through a read model
 * the store serves). Every query is bounded by a limit; the answers are the events as the engine wrote
 * them. Implementations: sqlite/event-log-reader.ts (the compact rows) and postgres/event-log-reader.ts.
 * The checks here are pure: a bad query is refused with a RangeError before any database is asked.
 */
import type { EngineEvent } from '../model/events.js';

/** The most events one query returns. */
export const MAX_EVENTS_PER_READ = 10_000;
/** The most types, or rollouts, one condition lists. */
export const MAX_LISTED = 1000;
/** The latest time a query may name: 9999-12-31T23:59:59.999Z, the last toISOString writes in four digits. */
export const LATEST_EVENT_MS = 253_402_300_799_999;

/** Which events, in which order, how many. Every condition given must hold; bounds on seq and time are as named. */
export interface EventQuery {
  /** `asc`: oldest first; `desc`: newest first. */
  order: 'asc' | 'desc';
  limit: number;
  /** seq > afterSeq */
  afterSeq?: number;
  /** seq < beforeSeq */
  beforeSeq?: number;
  /** The event's type is one of these (an empty list matches nothing). */
  types?: readonly string[];
  /** The event's `rolloutId`. */
  rolloutId?: string;
  /** The event's `machineId` (not the machines a batch lists). */
  machineId?: string;
  /** fromMs ≤ the event's time ≤ toMs, in milliseconds since the epoch. */
  fromMs?: number;
  toMs?: number;
  /**
   * The events of no rollout, of one of `rolloutIds`, or of one of `orTypes` (the activity log's caller
   * filter: a caller's rollouts, and operators' controls, which carry their own caller).
   */
  noRolloutOr?: { rolloutIds: readonly string[]; orTypes: readonly string[] };
}

/** How many events of a type fell in a minute counted from an origin (the rollout chart). */
export interface MinuteCount {
  /** trunc((floor(time in s) − originS) / 60), toward zero. */
  minute: number;
  type: string;
  count: number;
}

export interface EventLogReader {
  /** Events matching the query, in its order, at most `limit`. */
  read(q: EventQuery): Promise<EngineEvent[]>;
  /** The newest event's seq; 0 when the log is empty. */
  lastSeq(): Promise<number>;
  /**
   * Counts per minute since `originS` (whole seconds since the epoch) of one rollout's events of `types`,
   * up to and including `uptoSeq`; sorted by type (in the order given), then minute. Bounded by the
   * rollout's span: one row per type and minute.
   */
  countsPerMinute(rolloutId: string, types: readonly string[], originS: number, uptoSeq: number): Promise<MinuteCount[]>;
}

function fail(message: string): never {
  throw new RangeError(`event log query: ${message}`);
}

function seqBound(name: string, v: number | undefined): void {
  if (v !== undefined && !Number.isSafeInteger(v)) fail(`${name} must be a whole number, not ${String(v)}`);
}

function list(name: string, v: readonly string[] | undefined): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || v.length > MAX_LISTED || v.some((x) => typeof x !== 'string')) fail(`${name} must be a list of at most ${MAX_LISTED} strings`);
}

/** Refuses a query no store should run (an unbounded or malformed one); returns it unchanged. */
export function checkQuery(q: EventQuery): EventQuery {
  if (q.order !== 'asc' && q.order !== 'desc') fail(`order must be 'asc' or 'desc', not ${JSON.stringify(q.order)}`);
  if (!Number.isSafeInteger(q.limit) || q.limit < 1 || q.limit > MAX_EVENTS_PER_READ) fail(`limit must be a whole number from 1 to ${MAX_EVENTS_PER_READ}, not ${String(q.limit)}`);
  seqBound('afterSeq', q.afterSeq);
  seqBound('beforeSeq', q.beforeSeq);
  list('types', q.types);
  for (const k of ['rolloutId', 'machineId'] as const) if (q[k] !== undefined && typeof q[k] !== 'string') fail(`${k} must be a string`);
  // Times stay within what toISOString can write (the PostgreSQL reader compares ISO text).
  for (const k of ['fromMs', 'toMs'] as const) {
    const v = q[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0 || v > LATEST_EVENT_MS)) fail(`${k} must be milliseconds from 1970 to 9999, not ${String(v)}`);
  }
  if (q.noRolloutOr !== undefined) {
    list('noRolloutOr.rolloutIds', q.noRolloutOr.rolloutIds);
    list('noRolloutOr.orTypes', q.noRolloutOr.orTypes);
  }
  return q;
}

/** Checks countsPerMinute's arguments (see EventLogReader). */
export function checkCounts(rolloutId: string, types: readonly string[], originS: number, uptoSeq: number): void {
  if (typeof rolloutId !== 'string') fail('rolloutId must be a string');
  list('types', types);
  if (!Number.isSafeInteger(originS)) fail(`originS must be whole seconds, not ${String(originS)}`);
  if (!Number.isSafeInteger(uptoSeq)) fail(`uptoSeq must be a whole number, not ${String(uptoSeq)}`);
}
