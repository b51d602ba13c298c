/**
 * A follower's read model: a snapshot of what the store holds (the engine's state and the API's tables,
 * read from PostgreSQL), with the same API handlers as the leader's over it, refreshed whenever the store's
 * commit version moves. So reads on every replica show only what is durable, and go on while no replica
 * leads. A read the snapshot cannot answer as the leader would (no such route here, a read that writes,
 * such as an operation's first final status, a failure, a stream, metrics) goes to the leader; so do a
 * replica's reads until its snapshot holds the commit version of the last write it answered (each replica
 * reads its own writes).
 * The engine's state and the API's tables are kept by a ReadModel (store/postgres/read-model.ts): loaded
 * whole once, then each refresh applies only the rows changed since its version, in one REPEATABLE READ
 * transaction with the version. Snapshots share the model's objects and its API tables' database, changed
 * in place: reads wait while a refresh applies (`applying`). A refresh waits at least four times as long
 * as the last took (≤ 20% of a core); above `maxMachines` (snapshotReadsMaxMachines, a memory bound) reads
 * are all forwarded.
 */
import type Database from 'better-sqlite3';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { Authenticator } from '../../api/arm/auth.js';
import type { ArmContext } from '../../api/arm/context.js';
import { Documents } from '../../api/arm/documents.js';
import { FleetIndex } from '../../api/arm/fleet-index.js';
import { ImageStore } from '../../api/arm/image-store.js';
import { Operations } from '../../api/arm/operations.js';
import type { SecretBox } from '../../api/arm/secrets.js';
import { buildArmServer, UNROUTED_HEADER } from '../../api/arm/server.js';
import { registerFleetViewRoutes } from '../../api/arm/routes/fleet-views.js';
import { PackageStore } from '../../api/agent/package-store.js';
import { registerDashboard } from '../../dashboard/dashboard-routes.js';
import type { Driver } from '../../engine/driver.js';
import { Engine } from '../../engine/engine.js';
import type { Scenario } from '../../sim/scenario.js';
import { AcceleratedClock } from '../../sim/realtime/accelerated-clock.js';
import { ReadModel } from '../../store/postgres/read-model.js';
import type { Refreshed } from '../../store/postgres/read-model.js';
import type { EngineState } from '../../engine/state.js';
import type { Store } from '../../store/store.js';
import type { EventLogReader } from '../../store/event-log-reader.js';
import type { ServeConfig } from '../config.js';
import { EngineRuntime } from '../runtime.js';

/** How often a follower looks at the commit version. */
export const REFRESH_MS = 500;
/** How long a read waits for a snapshot holding this replica's own last write before it goes to the leader. */
const CATCH_UP_MS = 3_000;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Reads of these go to the leader whatever the snapshot holds: live streams and the leader's own metrics. */
const LEADER_ONLY = /^\/(metrics|phasewise\/stream)\/?(\?|$)/i;
/** On a read a follower answered from its snapshot: the commit version the snapshot holds. */
export const SNAPSHOT_HEADER = 'x-phasewise-snapshot-version';
const DROPPED = new Set(['content-length', 'connection', 'transfer-encoding', 'keep-alive']);

interface Snapshot {
  app: FastifyInstance;
  db: Database.Database;
  /** The commit version read with the snapshot, in its transaction: the snapshot holds exactly it. */
  version: number;
}

/** Nothing on a snapshot may commit or send: a handler that tries has found a write path, which is the leader's. */
const READ_ONLY_STORE: Store = {
  tracksChanges: false,
  load: () => null,
  commit: () => {
    throw new Error('a read snapshot does not commit');
  },
  close: () => {},
};
const READ_ONLY_DRIVER: Driver = {
  send: () => {
    throw new Error('a read snapshot sends nothing');
  },
};

export interface SnapshotOptions {
  url: string;
  client: pg.Client;
  config: ServeConfig;
  scenario: Scenario | null;
  auth: Authenticator;
  secrets: SecretBox;
  maxMachines: number;
  /** The event log on PostgreSQL, read live (a snapshot of events would be out of date at once and large). */
  eventLog: EventLogReader;
  log: { info(msg: string): void; error(msg: string): void };
}

export class SnapshotReads {
  private current: Snapshot | null = null;
  private loading = false;
  /** A refresh was asked for while one ran: run once more after it. */
  private again = false;
  private nextLoadAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private disabled: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The commit version of the last write this replica answered: reads wait for a snapshot that holds it. */
  private lastWrite = 0;
  private closed = false;
  private readonly model = new ReadModel({ side: true });
  /** The API's index of the fleet, kept in step with the model's fleet (rebuilt after a whole load). */
  private index: FleetIndex | null = null;
  /** While a refresh changes the fleet the current snapshot reads in place: reads wait for the new snapshot. */
  private applying = false;

  constructor(private readonly opts: SnapshotOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
    void this.refresh();
  }

  /** The version of the snapshot in use (-1 before the first). */
  get version(): number {
    return this.current?.version ?? -1;
  }

  get reason(): string | null {
    return this.disabled;
  }

  /** This replica answered a write, held by this commit version: its reads go to the leader until a snapshot holds it. */
  wrote(version: number): void {
    this.lastWrite = Math.max(this.lastWrite, version);
    void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this.disabled || this.closed) return;
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    try {
      if (Date.now() < this.nextLoadAt) return void this.retryAt(this.nextLoadAt);
      const started = Date.now();
      const next = await this.load();
      // The next refresh waits at least four times as long as this one took (≤ 20% of a core).
      if (next) this.nextLoadAt = Date.now() + Math.max(REFRESH_MS, 4 * (Date.now() - started));
      if (!next) return;
      const old = this.current;
      this.current = next;
      this.applying = false;
      if (old) await this.dispose(old);
    } catch (err) {
      this.opts.log.error(`read snapshot not refreshed: ${(err as Error).message}`);
    } finally {
      this.loading = false;
      this.applying = false;
    }
    if (this.again) {
      this.again = false;
      await this.refresh();
    }
  }

  /** Answers a read from the snapshot; false when it is the leader's to answer. */
  async answer(req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    if (LEADER_ONLY.test(req.url) || this.disabled) return false;
    // This replica's own last write first: a reload that holds it is on its way (wrote() started one).
    const until = Date.now() + CATCH_UP_MS;
    while (this.current && (this.applying || this.current.version < this.lastWrite) && Date.now() < until && !this.closed) await sleep(this.applying ? 1 : 10);
    const snap = this.current;
    if (!snap || this.applying || snap.version < this.lastWrite) return false;
    const before = totalChanges(snap.db);
    const res = await snap.app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers as Record<string, string> });
    if (res.statusCode >= 500 || res.headers[UNROUTED_HEADER] !== undefined || totalChanges(snap.db) !== before) return false;
    reply.status(res.statusCode);
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !DROPPED.has(k)) reply.header(k, v);
    reply.header(SNAPSHOT_HEADER, String(snap.version));
    await reply.send(res.rawPayload);
    return true;
  }

  /** A refresh asked for too soon runs when it may (a replica waiting to read its own write needs it). */
  private retryAt(at: number): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.refresh();
    }, Math.max(1, at - Date.now()));
    this.retryTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.current) await this.dispose(this.current);
    this.current = null;
    this.model.close();
  }

  /** A snapshot's database is the model's, unless a whole load replaced it: then it goes with the snapshot. */
  private async dispose(s: Snapshot): Promise<void> {
    await s.app.close().catch(() => {});
    if (s.db !== this.model.sideDb) s.db.close();
  }

  /** Brings the model to the store's version and builds a snapshot over it; null when there is nothing new (or no fleet yet). */
  private async load(): Promise<Snapshot | null> {
    const { config, scenario } = this.opts;
    const r = await this.model.refresh(this.opts.client, {
      applying: (whole) => {
        if (!whole) this.applying = true; // the current snapshot reads the objects and API tables changed in place: no read until the new one is in place
      },
    });
    if (r.retired && this.current?.db !== r.retired) r.retired.close(); // no snapshot reads it
    const state = this.model.state;
    const db = this.model.sideDb;
    // Nothing new (a snapshot whose build failed after the model moved is built again); no fleet yet: the first leader is importing it.
    if (this.current?.version === r.version || !state || !db) return null;
    if (state.fleet.machines.size > this.opts.maxMachines) {
      this.disabled = `the fleet has ${state.fleet.machines.size} machines, more than ${this.opts.maxMachines}: reads are forwarded to the leader`;
      this.opts.log.info(this.disabled);
      return null;
    }
    const index = this.indexOf(state, r);
    // The owners create their tables if missing (they are there): writable only while they are made, before any read.
    db.pragma('query_only = OFF');
    let ctx: ArmContext;
    try {
      const docs = new Documents(db, (fn) => db.transaction(fn)());
      const origin = docs.get<{ simStartMs: number; realStartMs: number; factor: number }>('/phasewise/clock')?.body
        ?? { simStartMs: Date.now(), realStartMs: Date.now(), factor: config.clockFactor };
      const clock = new AcceleratedClock(origin);
      const engine = new Engine({
        clock,
        driver: READ_ONLY_DRIVER,
        store: READ_ONLY_STORE,
        state,
        profiles: scenario?.profiles ?? {},
        ...(scenario?.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}),
      });
      const quiet = { error: () => {}, info: () => {} };
      ctx = {
        engine, runtime: new EngineRuntime(engine, clock, origin.factor, null, [], quiet, null), db, eventLog: this.opts.eventLog, docs, ops: new Operations(docs),
        secrets: this.opts.secrets, index, images: new ImageStore(engine), auth: this.opts.auth,
        publicUrl: config.publicUrl ?? null, retryAfterSeconds: config.retryAfterSeconds, pageSize: config.pageSize,
        packages: new PackageStore(db, config.dataDir),
      };
    } finally {
      db.pragma('query_only = ON');
    }
    const app = buildArmServer(ctx, { maxBodyBytes: config.maxBodyBytes, logger: false, markUnrouted: true });
    registerFleetViewRoutes(app, ctx);
    registerDashboard(app, ctx);
    await app.ready();
    return { app, db, version: r.version };
  }

  /** The fleet index, changed by the refresh's machines (O(change)); built anew after a whole load (a new fleet). */
  private indexOf(state: EngineState, r: Refreshed): FleetIndex {
    if (r.kind === 'whole' || !this.index) return (this.index = new FleetIndex(state, this.opts.config.subscriptions));
    const index = this.index;
    index.sortedKeys.invalidate(); // sets are read back whole: one removed is gone from the paged lists too
    for (const m of r.machines.removed) index.removeMachine(m);
    for (const m of r.machines.added) index.addMachine(m);
    for (const s of state.fleet.scaleSets.values()) index.addSet(s);
    for (const a of state.fleet.availabilitySets.values()) index.addGroup(a.subscription, a.resourceGroup);
    return index;
  }
}

function totalChanges(db: Database.Database): number {
  return (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
}
