/**
 * The rollout page's chart of outcomes over time, kept up to date as events arrive instead of being
 * recounted from the event log on every view: a rollout of a million machines writes millions of events.
 * Counts are kept per minute since the rollout's creation (read once from the log the first time a rollout
 * is shown, then counted from the engine's events) and grouped into at most CHART_BUCKETS buckets of whole
 * minutes when asked.
 */
import type { EngineEvent } from '../model/events.js';
import type { EventLogReader } from '../store/event-log-reader.js';

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
  /** While the log is read: the events that arrived meanwhile (counted once fromSeq is known), and the reading. */
  arrived: EngineEvent[] | null;
  loading: Promise<void> | null;
}

export interface ChartValue {
  bucketSeconds: number;
  points: Array<{ bucket: number; type: string; count: number }>;
}

export class RolloutCharts {
  private readonly kept = new Map<string, Counts>();
  private readonly types = new Set(CHART_TYPES);

  constructor(private readonly log: EventLogReader) {}

  /** Counts the engine's new events for the rollouts being kept. */
  onEvents(events: readonly EngineEvent[]): void {
    for (const e of events) {
      if (!this.types.has(e.type) || !('rolloutId' in e) || typeof e.rolloutId !== 'string') continue;
      const c = this.kept.get(e.rolloutId);
      if (c?.arrived) c.arrived.push(e);
      else if (c) count(c, e);
    }
  }

  async chart(rolloutId: string, createdAtMs: number, endMs: number): Promise<ChartValue> {
    const c = this.countsOf(rolloutId, Math.floor(createdAtMs / 1000));
    if (c.loading) await c.loading;
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

  /** The rollout's counts, kept from now on (read from the log in the background the first time: await `loading`). */
  private countsOf(rolloutId: string, createdS: number): Counts {
    const have = this.kept.get(rolloutId);
    if (have) {
      // Most recently shown last: the first is the one to drop.
      this.kept.delete(rolloutId);
      this.kept.set(rolloutId, have);
      return have;
    }
    // Kept before the log is read, so that no event the engine commits meanwhile is missed (on PostgreSQL the read takes time).
    const c: Counts = { createdS, fromSeq: Number.MAX_SAFE_INTEGER, minutes: new Map(), arrived: [], loading: null };
    if (this.kept.size >= KEPT) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(rolloutId, c);
    c.loading = this.load(rolloutId, c).catch((err: unknown) => {
      // Read again next time rather than keep partial counts.
      if (this.kept.get(rolloutId) === c) this.kept.delete(rolloutId);
      throw err;
    });
    return c;
  }

  private async load(rolloutId: string, c: Counts): Promise<void> {
    const fromSeq = await this.log.lastSeq();
    for (const r of await this.log.countsPerMinute(rolloutId, CHART_TYPES, c.createdS, fromSeq)) add(c, r.minute, r.type, r.count);
    c.fromSeq = fromSeq;
    for (const e of c.arrived!) count(c, e);
    c.arrived = null;
    c.loading = null;
  }
}

/** One event the engine committed after the counts read from the log. */
function count(c: Counts, e: EngineEvent): void {
  if (e.seq > c.fromSeq) add(c, Math.floor((Date.parse(e.time) / 1000 - c.createdS) / 60), e.type, 1);
}

function add(c: Counts, minute: number, type: string, n: number): void {
  let types = c.minutes.get(minute);
  if (!types) c.minutes.set(minute, (types = new Map()));
  types.set(type, (types.get(type) ?? 0) + n);
}
