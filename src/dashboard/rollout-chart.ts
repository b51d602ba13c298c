/**
 * The rollout page's chart of outcomes over time, kept up to date as events arrive instead of being
 * recounted from the event log on every view: a rollout of a million machines writes millions of events.
 * Counts are kept per minute since the rollout's creation (read once from the log the first time a rollout
 * is shown, then counted from the engine's events) and grouped into at most CHART_BUCKETS buckets of whole
 * minutes when asked.
 */
import type Database from 'better-sqlite3';
import type { EngineEvent } from '../model/events.js';
import { typeIn } from '../store/sqlite/event-log.js';

export const CHART_TYPES = ['instance.upgrade.succeeded', 'instance.upgrade.failed', 'instance.health.unhealthy', 'instance.rollback.succeeded', 'instance.skipped'];
export const CHART_BUCKETS = 60;
/** Rollouts whose counts are kept; the least recently shown is dropped beyond this. */
const KEPT = 50;

interface Counts {
  createdS: number;
  /** Events up to this sequence number came from the log; later ones are counted as they arrive. */
  fromSeq: number;
  /** Minute since creation → type → count. */
  minutes: Map<number, Map<string, number>>;
}

export interface ChartValue {
  bucketSeconds: number;
  points: Array<{ bucket: number; type: string; count: number }>;
}

export class RolloutCharts {
  private readonly kept = new Map<string, Counts>();
  private readonly types = new Set(CHART_TYPES);

  constructor(private readonly db: Database.Database) {}

  /** Counts the engine's new events for the rollouts being kept. */
  onEvents(events: readonly EngineEvent[]): void {
    for (const e of events) {
      if (!this.types.has(e.type) || !('rolloutId' in e) || typeof e.rolloutId !== 'string') continue;
      const c = this.kept.get(e.rolloutId);
      if (c && e.seq > c.fromSeq) add(c, Math.floor((Date.parse(e.time) / 1000 - c.createdS) / 60), e.type, 1);
    }
  }

  chart(rolloutId: string, createdAtMs: number, endMs: number): ChartValue {
    const c = this.countsOf(rolloutId, Math.floor(createdAtMs / 1000));
    const minutesPerBucket = Math.max(1, Math.ceil((endMs - createdAtMs) / 60_000 / CHART_BUCKETS));
    const byBucket = new Map<string, { bucket: number; type: string; count: number }>();
    for (const [minute, types] of c.minutes) {
      const bucket = Math.floor(minute / minutesPerBucket);
      for (const [type, n] of types) {
        const k = `${bucket} ${type}`;
        const p = byBucket.get(k);
        if (p) p.count += n;
        else byBucket.set(k, { bucket, type, count: n });
      }
    }
    const points = [...byBucket.values()].sort((a, b) => a.bucket - b.bucket || a.type.localeCompare(b.type));
    return { bucketSeconds: minutesPerBucket * 60, points };
  }

  private countsOf(rolloutId: string, createdS: number): Counts {
    const have = this.kept.get(rolloutId);
    if (have) {
      // Most recently shown last: the first is the one to drop.
      this.kept.delete(rolloutId);
      this.kept.set(rolloutId, have);
      return have;
    }
    const fromSeq = (this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM events').get() as { s: number }).s;
    const c: Counts = { createdS, fromSeq, minutes: new Map() };
    // One query per type, each on the (rollout_id, shape, seq) index; times are milliseconds; parameters bind as REAL, hence the casts.
    const q = this.db.prepare(`SELECT CAST((e.time / 1000 - ?) / 60 AS INTEGER) AS m, COUNT(*) AS n FROM events e
      WHERE e.rollout_id = ? AND ${typeIn(CHART_TYPES.slice(0, 1))} AND e.seq <= ? GROUP BY m`);
    for (const type of CHART_TYPES) {
      for (const row of q.all(createdS, rolloutId, type, fromSeq) as Array<{ m: number; n: number }>) add(c, row.m, type, row.n);
    }
    if (this.kept.size >= KEPT) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(rolloutId, c);
    return c;
  }
}

function add(c: Counts, minute: number, type: string, n: number): void {
  let types = c.minutes.get(minute);
  if (!types) c.minutes.set(minute, (types = new Map()));
  types.set(type, (types.get(type) ?? 0) + n);
}
