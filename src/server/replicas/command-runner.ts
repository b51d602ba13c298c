/**
 * The leader's side of API writes as commands (api-commands.ts): runs the queued requests one at a
 * time, in the order they were queued, through the API's own handlers (`app.inject`, as the principal
 * that sent them), and commits each one's effects (the engine's commits and the changed rows of the
 * API's tables) with its response and done mark as one transaction. A leader that dies before that
 * commit leaves the command for the next one; after it, the command never runs again.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { literal } from '../../store/postgres/sql-batch.js';
import { markDoneSql, openCommands } from '../../store/postgres/commands.js';
import type { PgStore } from '../../store/postgres/pg-store.js';
import { API_REQUEST, COMMANDS_CHANNEL, DONE_CHANNEL, INTERNAL_HEADER, PRINCIPAL_HEADER, pruneDone, responseHeaders } from './api-commands.js';
import type { ApiRequest, ApiResponse, CommandSeal } from './api-commands.js';

const POLL_MS = 100;
const PRUNE_MS = 10 * 60_000;
/** A handler that has not answered by then gets its command answered 504 (the runner must move on). */
const INJECT_TIMEOUT_MS = 60_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

export interface RunnerLog {
  error(obj: object, msg: string): void;
}

export class CommandRunner {
  private timer: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private running = false;
  private again = false;
  private stopped = false;
  private after = 0;

  constructor(
    private readonly store: PgStore,
    private readonly app: FastifyInstance,
    /** Known only to this process: the requests it injects bear it (see write-path.ts, injectedPrincipal). */
    private readonly secret: string,
    /** The API tables' changes since the last call, as SQL for PostgreSQL (null: none). */
    private readonly sideChanges: () => string | null,
    private readonly log: RunnerLog,
    private readonly seal: CommandSeal,
  ) {}

  async start(listener: pg.Client | null): Promise<void> {
    if (listener) {
      listener.on('notification', (n) => {
        if (n.channel === COMMANDS_CHANNEL) this.kick();
      });
      await listener.query(`LISTEN ${COMMANDS_CHANNEL}`);
    }
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.timer.unref();
    this.pruneTimer = setInterval(() => void pruneDone(this.store.connection).catch(() => {}), PRUNE_MS);
    this.pruneTimer.unref();
    this.kick();
  }

  /** Looks for queued commands now (a write was just queued here, or NOTIFY said so). */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.drain().finally(() => {
      this.running = false;
      if (this.again && !this.stopped) {
        this.again = false;
        this.kick();
      }
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
  }

  /** True while a command's effects are being gathered (nothing else may commit the API tables then). */
  get busy(): boolean {
    return this.store.holding;
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped || this.store.broken) return;
      let batch;
      try {
        batch = await openCommands(this.store.connection, this.after, 50);
      } catch (err) {
        this.log.error({ err }, 'reading queued commands failed');
        return;
      }
      if (batch.length === 0) return;
      for (const c of batch) {
        if (this.stopped || this.store.broken) return;
        this.after = c.id;
        if (c.kind !== API_REQUEST) {
          // Another kind (an older tool's): not this runner's to apply; marked so it is not waited on forever.
          await this.store.commitAlone(markDoneSql(c.id, { status: 400, headers: {}, body: `unknown command kind ${c.kind}` }));
          continue;
        }
        let req: ApiRequest;
        try {
          req = this.seal.openRequest(c.body);
        } catch (err) {
          // Not sealed with the replicas' key: never run (it could carry any principal); answered so nobody waits.
          this.log.error({ err, command: c.id }, 'a queued request is not sealed with this replica\'s secretKey; refused');
          const body = JSON.stringify({ error: { code: 'InvalidCommand', message: 'The queued request was not sealed by a replica with this secretKey; it was not run.' } });
          await this.store.commitAlone(markDoneSql(c.id, { status: 400, headers: { 'content-type': 'application/json' }, body }));
          continue;
        }
        await this.runOne(c.id, req);
      }
    }
  }

  private async runOne(id: number, req: ApiRequest): Promise<void> {
    this.store.hold();
    let response: ApiResponse;
    try {
      const res = await withTimeout(this.app.inject({
        method: req.method as 'PUT',
        url: req.url,
        headers: { ...req.headers, [INTERNAL_HEADER]: this.secret, [PRINCIPAL_HEADER]: JSON.stringify(req.principal) },
        payload: req.body,
      }), INJECT_TIMEOUT_MS);
      response = { status: res.statusCode, headers: responseHeaders(res.headers as Record<string, unknown>), body: res.body };
    } catch (err) {
      this.log.error({ err, command: id }, 'a queued API request failed to run');
      response = {
        status: 500,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ error: { code: 'InternalServerError', message: 'The queued request failed to run; it is logged.' } }),
      };
    }
    const side = this.sideChanges();
    const sql = [side, markDoneSql(id, this.seal.response(response)), `SELECT pg_notify(${literal(DONE_CHANNEL)}, ${literal(String(id))})`].filter(Boolean).join(';\n');
    await this.store.release(sql);
  }
}
