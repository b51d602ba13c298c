/**
 * Webhooks: a POST to each configured URL for the events operators act on (a rollout stopped or
 * completed, a gate breached, a version withdrawn, a release held by its evidence). The body is JSON;
 * `X-Phasewise-Signature: sha256=<hex>` is the HMAC-SHA256 of the exact body bytes with the hook's
 * secret. Each hook has its own queue, sent in order, one request at a time, retried with exponential
 * backoff (bounded attempts, bounded queue). The engine only enqueues: a target that is down or slow
 * never holds the engine back. With an outbox (webhook-outbox.ts, the server's SQLite database) the
 * deliveries not yet delivered survive a restart and are sent after it; without one they live in memory.
 * On replicas the outbox and its cursor are mirrored into PostgreSQL: they survive a takeover as well.
 */
import { createHmac } from 'node:crypto';
import type { Engine } from '../engine/engine.js';
import type { EngineEvent } from '../model/events.js';
import type { OutboxRow, WebhookOutbox } from './webhook-outbox.js';

export const WEBHOOK_EVENTS = ['rollout.stopped', 'rollout.completed', 'gate.breached', 'version.withdrawn', 'release.held'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export interface WebhookConfig {
  url: string;
  secret: string;
  /** Which notifications this hook wants; all of them when absent. */
  events?: WebhookEvent[];
}

export interface WebhookOptions {
  /** Attempts per delivery, the first included. */
  maxAttempts: number;
  /** The wait before the first retry; doubled each time up to maxBackoffMs. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Per request. */
  timeoutMs: number;
  /** Deliveries waiting per hook beyond which the oldest is dropped (and logged). */
  maxQueue: number;
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = { maxAttempts: 6, initialBackoffMs: 1_000, maxBackoffMs: 60_000, timeoutMs: 5_000, maxQueue: 1_000 };

export interface WebhookLog {
  warn(obj: object, msg: string): void;
}

export interface Delivery {
  id: string;
  /** The engine event's seq: the delivery's key in the outbox. */
  seq: number;
  type: WebhookEvent;
  body: string;
  attempts: number;
}

/** The notification an engine event makes, or null. */
export function notificationOf(e: EngineEvent): WebhookEvent | null {
  switch (e.type) {
    case 'rollout.stopped': return 'rollout.stopped';
    case 'rollout.completed': return 'rollout.completed';
    case 'gate.breached': return 'gate.breached';
    case 'release.halted': return e.kind === 'withdrawn' ? 'version.withdrawn' : e.kind === 'evidence' ? 'release.held' : null;
    default: return null;
  }
}

/** The engine event types `notificationOf` turns into notifications. */
export const NOTIFYING_EVENT_TYPES = ['rollout.stopped', 'rollout.completed', 'gate.breached', 'release.halted'] as const;

export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

class HookQueue {
  private readonly queue: Delivery[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly hook: WebhookConfig,
    private readonly opts: WebhookOptions,
    private readonly log: WebhookLog,
    private readonly count: (result: 'delivered' | 'retried' | 'failed' | 'dropped') => void,
    private readonly outbox: WebhookOutbox | null,
    /** The hook's key in the outbox. */
    readonly key: string,
  ) {}

  push(d: Delivery): void {
    if (this.closed) return;
    if (this.queue.length >= this.opts.maxQueue) {
      const dropped = this.queue.shift()!;
      this.outbox?.remove(this.key, dropped.seq);
      this.count('dropped');
      this.log.warn({ url: this.hook.url, delivery: dropped.id }, 'webhook queue full: oldest notification dropped');
    }
    this.queue.push(d);
    this.pump();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private pump(): void {
    if (this.busy || this.timer || this.closed || this.queue.length === 0) return;
    this.busy = true;
    const d = this.queue[0]!;
    void this.send(d).then((ok) => {
      this.busy = false;
      if (this.closed) return;
      d.attempts++;
      if (ok || d.attempts >= this.opts.maxAttempts) {
        this.queue.shift();
        this.outbox?.remove(this.key, d.seq);
        this.count(ok ? 'delivered' : 'failed');
        if (!ok) this.log.warn({ url: this.hook.url, delivery: d.id, attempts: d.attempts }, 'webhook delivery failed; given up');
        this.pump();
        return;
      }
      this.outbox?.attempted(this.key, d.seq, d.attempts);
      this.count('retried');
      const wait = Math.min(this.opts.maxBackoffMs, this.opts.initialBackoffMs * 2 ** (d.attempts - 1));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
      this.timer.unref();
    });
  }

  /** True on a 2xx answer; a refused connection, a timeout or another status is retried. */
  private async send(d: Delivery): Promise<boolean> {
    try {
      const res = await fetch(this.hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'phasewise-webhook',
          'x-phasewise-event': d.type,
          'x-phasewise-delivery': d.id,
          'x-phasewise-signature': signatureOf(this.hook.secret, d.body),
        },
        body: d.body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        redirect: 'manual',
      });
      // Only the status counts: the body is never read, so a receiver that answers with gigabytes costs nothing.
      await res.body?.cancel().catch(() => undefined);
      return res.status >= 200 && res.status < 300;
    } catch {
      return false;
    }
  }
}

export class Webhooks {
  private readonly queues: Array<{ hook: WebhookConfig; queue: HookQueue }>;
  /** The engine's events that came while the recovery read the log: handled after it, in order. Null once recovered. */
  private waiting: Array<readonly EngineEvent[]> | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;
  /** Settles once the deliveries owed from before this start are queued (at once without an outbox). */
  readonly recovered: Promise<void>;

  constructor(
    private readonly engine: Engine,
    hooks: readonly WebhookConfig[],
    private readonly log: WebhookLog,
    opts: WebhookOptions = DEFAULT_WEBHOOK_OPTIONS,
    count: (result: 'delivered' | 'retried' | 'failed' | 'dropped') => void = () => {},
    private readonly outbox: WebhookOutbox | null = null,
  ) {
    const keys = new Set<string>();
    this.queues = hooks.map((hook) => {
      let key = hook.url;
      for (let n = 2; keys.has(key); n++) key = `${hook.url}#${n}`; // the same URL twice: two queues
      keys.add(key);
      return { hook, queue: new HookQueue(hook, opts, log, count, outbox, key) };
    });
    this.recovered = outbox ? this.recover(outbox) : Promise.resolve();
    if (this.queues.length > 0) engine.onEvents((events) => (this.waiting ? this.waiting.push(events) : this.onEvents(events)));
  }

  /**
   * After a restart (or a takeover on replicas): deliveries left in the outbox, then notifications of the
   * events committed after its cursor, up to the last one committed at this start; the engine's later
   * events wait until those are written, so the cursor only moves forward and nothing is skipped.
   */
  private recover(outbox: WebhookOutbox): Promise<void> {
    const byKey = new Map(this.queues.map((q) => [q.queue.key, q.queue]));
    const gone: OutboxRow[] = [];
    for (const row of outbox.pending()) {
      const queue = byKey.get(row.hook);
      if (queue) queue.push({ id: `phasewise-${row.seq}`, seq: row.seq, type: row.type as WebhookEvent, body: row.body, attempts: row.attempts });
      else gone.push(row);
    }
    for (const row of gone) outbox.remove(row.hook, row.seq);
    if (gone.length > 0) this.log.warn({ deliveries: gone.length, hooks: [...new Set(gone.map((r) => r.hook))] }, 'webhook deliveries for hooks no longer configured dropped');
    // Without hooks nothing is owed: a hook configured later starts from its own first start.
    if (this.queues.length === 0) {
      outbox.clearCursor();
      return Promise.resolve();
    }
    const cursor = outbox.cursor();
    const upTo = this.engine.state.eventSeq;
    // The first start with webhooks notifies from now on, not the history.
    if (cursor === null) outbox.add([], upTo);
    if (cursor === null || cursor >= upTo) return Promise.resolve();
    this.waiting = [];
    return new Promise<void>((resolve) => {
      const attempt = (): void => {
        outbox.eventsAfter(cursor, upTo, NOTIFYING_EVENT_TYPES).then((events) => {
          if (this.closed) return resolve();
          this.onEvents(events);
          const waiting = this.waiting!;
          this.waiting = null;
          for (const batch of waiting) this.onEvents(batch);
          resolve();
        }, (err: unknown) => {
          if (this.closed) return resolve();
          // The log cannot be read now (PostgreSQL away): try again; the engine's new events wait meanwhile.
          this.log.warn({ err: String(err), afterSeq: cursor }, 'webhooks: the event log could not be read for the notifications owed; retrying in 1 s');
          this.retry = setTimeout(attempt, 1_000);
          this.retry.unref();
        });
      };
      attempt();
    });
  }

  private onEvents(events: readonly EngineEvent[]): void {
    if (this.closed) return;
    const out: Array<{ queue: HookQueue; d: Delivery }> = [];
    let last = -1;
    for (const e of events) {
      const type = notificationOf(e);
      if (!type) continue;
      last = e.seq;
      const body = JSON.stringify({ id: `phasewise-${e.seq}`, type, time: e.time, ...this.context(e), event: e });
      for (const { hook, queue } of this.queues) {
        if (hook.events && !hook.events.includes(type)) continue;
        out.push({ queue, d: { id: `phasewise-${e.seq}`, seq: e.seq, type, body, attempts: 0 } });
      }
    }
    if (last < 0) return;
    // Written before the first send: a crash from here on leaves them in the outbox.
    this.outbox?.add(out.map(({ queue, d }) => ({ hook: queue.key, seq: d.seq, type: d.type, body: d.body, attempts: 0 })), last);
    for (const { queue, d } of out) queue.push(d);
  }

  /** The rollout an event concerns, so a receiver needs no second call. */
  private context(e: EngineEvent): Record<string, unknown> {
    if (!('rolloutId' in e)) return {};
    const r = this.engine.state.rollouts.get(e.rolloutId);
    return r ? { rollout: { id: r.id, artifact: r.artifact, toVersion: r.toVersion, status: r.status, reason: r.reason } } : {};
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    for (const { queue } of this.queues) queue.close();
  }
}
