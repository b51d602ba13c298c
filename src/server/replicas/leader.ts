/**
 * A replica that took the engine lease: opens the PostgreSQL store with its fencing token, the API's
 * tables as a local working copy (side-db.ts), and builds the same stack as `serve` on SQLite around
 * them. Every write that reaches it from the network is queued as a command like anywhere else and run
 * by its CommandRunner, so a write's effects, its response and its done mark commit together.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type pg from 'pg';
import { Catalog } from '../../catalog/catalog.js';
import { emptyFleet, newEngineState } from '../../engine/state.js';
import type { Scenario } from '../../sim/scenario.js';
import type { Fence } from '../../store/postgres/pg-store.js';
import { PgStore } from '../../store/postgres/pg-store.js';
import { connect } from '../../store/postgres/connect.js';
import type { StoreError } from '../../store/sqlite/database.js';
import { isOpenPath } from '../../api/arm/open-paths.js';
import { ArmError } from '../../api/arm/errors.js';
import { isAgentPath, PACKAGE_PATH } from '../../api/arm/server.js';
import type { ServeConfig } from '../config.js';
import type { EventLogReader } from '../../store/event-log-reader.js';
import type { TlsMaterial } from '../tls.js';
import { buildStack } from '../stack.js';
import type { Stack, StackExtra, StackInput } from '../stack.js';
import { CommandRunner } from './command-runner.js';
import type { CommandSeal, ResponseWaiter } from './api-commands.js';
import { registerHealthRoutes } from './health-routes.js';
import type { HealthView } from './health-routes.js';
import { openSideDb } from './side-db.js';
import { materialisePackageFiles, savePackageFile } from '../../store/postgres/package-files.js';
import type { SideDb } from './side-db.js';
import { injectedPrincipal, isWrite, registerCommandRoute, takeWrite } from './write-path.js';
import type { WritePath } from './write-path.js';

/** How often the API tables' changes made outside commands (agents' reports, the fleet's snapshot) are shipped. */
const SHIP_SIDE_MS = 200;

export interface Leader {
  stack: Stack;
  store: PgStore;
  side: SideDb;
  runner: CommandRunner;
  start(listener: pg.Client | null): Promise<void>;
  close(): Promise<void>;
}

export interface LeaderInput {
  config: ServeConfig;
  url: string;
  scenario: Scenario | null;
  tls: TlsMaterial;
  fence: Fence;
  /** The connection writes are queued on (the replica's API client). */
  client: pg.Client;
  waiter: ResponseWaiter;
  /** Seals queued requests and their responses with the replicas' shared secretKey. */
  seal: CommandSeal;
  extra: StackExtra;
  health: () => HealthView;
  /** The agent CA the replicas share, and who vouches for agents a follower forwards. */
  agents: NonNullable<StackInput['agents']>;
  onWarning: (message: string) => void;
  /** The event log on PostgreSQL (a connection of its own: reads must not wait behind commits). */
  eventLog: EventLogReader;
  /** A commit failed (the lease lost, the database gone): the replica must step down. */
  onBroken: (err: StoreError) => void;
}

export async function openLeader(input: LeaderInput): Promise<Leader> {
  const { config, scenario } = input;
  const store = await PgStore.open(input.url, { fence: input.fence, onBroken: input.onBroken });
  let side: SideDb | null = null;
  try {
    const resumed = store.isInitialised();
    if (!resumed) await store.importState(scenario ? scenario.state : newEngineState(emptyFleet(), new Catalog()));
    const state = store.load()!;
    // The predecessor's last event: this replica's clock may be behind that replica's (the stack's clock starts no earlier).
    const last = resumed ? (await input.eventLog.read({ order: 'desc', limit: 1 }))[0] : undefined;
    side = await openSideDb(store.connection, config.dataDir);
    const db = side.db;
    // Package files a former leader received: written back into this replica's folder, checked against their hash.
    const files = await materialisePackageFiles(store.connection, join(config.dataDir, 'packages'));
    if (files.missing.length > 0) input.onWarning(`package files PostgreSQL does not hold (upload them again): ${files.missing.join(', ')}`);
    let runner: CommandRunner | null = null;
    const writes: WritePath = {
      client: input.client, waiter: input.waiter, seal: input.seal, publicUrl: config.publicUrl ?? null, retryAfterSeconds: config.retryAfterSeconds,
      queued: () => runner?.kick(),
    };
    // Known only to this process: a request bearing it was injected by the command runner, never sent from the network.
    const secret = randomBytes(24).toString('base64url');
    const injected = injectedPrincipal(secret);
    const stack = buildStack({
      config, scenario, tls: input.tls, store, state, resumed, ...(last ? { timeFloorMs: Date.parse(last.time) } : {}), pendingActions: resumed ? store.pendingActions() : [],
      db, dbFile: side.file, eventLog: input.eventLog, transaction: (fn) => db.transaction(fn)(),
      // A failed commit means a lost lease or database: the replica steps down and another takes over from the store.
      resyncFromStore: null,
      extra: input.extra,
      agents: { ...input.agents, replicateFile: (path, sha256) => replicateFile(input.url, path, sha256) },
      server: {
        injectedPrincipal: injected,
        // Writes from the network become commands; the runner's injected copies, the agent channel and
        // package uploads (streamed files) run here directly.
        beforeHandler: async (req, reply) => {
          if (!isWrite(req.method)) {
            // A read shows only what is durable: the commits queued so far land first (the leader's memory is a step ahead).
            if (!isAgentPath(req.url)) await store.settled().catch(() => {
              throw new ArmError(503, 'ServiceUnavailable', 'The store refused a commit; this replica is stepping down; retry.');
            });
            return;
          }
          if (injected(req) || runsDirectly(req.url)) return;
          if (!req.routeOptions.url) return; // no such route: its 404 needs no command
          return takeWrite(writes, req, reply, req.body === undefined ? '' : JSON.stringify(req.body), req.principal);
        },
      },
    });
    const sideDb = side;
    // A row PostgreSQL cannot hold (refused by name before anything is sent) stays recorded and is logged;
    // it must neither crash the replica nor stop a command's commit.
    const takeChanges = () => {
      try {
        return sideDb.takeChanges();
      } catch (err) {
        stack.app.log.error({ err }, 'a change to the API tables cannot be shipped to PostgreSQL');
        return null;
      }
    };
    runner = new CommandRunner(store, stack.app, secret, takeChanges, { error: (o, m) => stack.app.log.error(o, m) }, input.seal);
    // Writes that run here directly (the agent channel's enrollment, package uploads) are answered only
    // once what they changed in the API's tables is in PostgreSQL, as a command's are.
    const shipNow = async () => {
      while (store.holding) await sleep(2);
      const sql = takeChanges();
      if (!(await (sql ? store.commitAlone(sql) : store.settled().then(() => true, () => false)))) {
        throw new ArmError(503, 'ServiceUnavailable', 'The change could not be stored in PostgreSQL; this replica is stepping down; retry.');
      }
    };
    stack.app.addHook('onSend', async (req, _reply, payload) => {
      if (isWrite(req.method) && runsDirectly(req.url) && !injected(req)) await shipNow();
      return payload;
    });
    registerHealthRoutes(stack.app, input.health);
    registerCommandRoute(stack.app, writes, (req) => stack.ctx.auth.authenticate(req.headers.authorization));
    let shipTimer: NodeJS.Timeout | null = null;
    const leader: Leader = {
      stack, store, side: sideDb, runner,
      async start(listener) {
        stack.start();
        await runner!.start(listener);
        // Changes made outside a command (agents' reports, the simulated fleet's snapshot, webhooks) ship on their own.
        shipTimer = setInterval(() => {
          if (store.holding || store.broken) return;
          const sql = takeChanges();
          if (sql) void store.commitAlone(sql);
        }, SHIP_SIDE_MS);
        shipTimer.unref();
      },
      async close() {
        runner!.stop();
        if (shipTimer) clearInterval(shipTimer);
        await stack.close();
        if (!store.holding && !store.broken) {
          const sql = takeChanges();
          if (sql) await store.commitAlone(sql);
        }
        await store.end();
        sideDb.close();
      },
    };
    return leader;
  } catch (err) {
    side?.close();
    await store.end();
    throw err;
  }
}

/** An uploaded package file into PostgreSQL, on a connection of its own (its transaction must hold nothing else). */
async function replicateFile(url: string, path: string, sha256: string): Promise<void> {
  const client = await connect(url);
  try {
    await savePackageFile(client, path, sha256);
  } finally {
    await client.end().catch(() => {});
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writes that run in the leader's process instead of as commands: the agent channel, package uploads, open paths. */
function runsDirectly(url: string): boolean {
  return isAgentPath(url) || isOpenPath(url) || PACKAGE_PATH.test(url);
}
