/**
 * `phasewise serve` on SQLite: the engine in real time on one SQLite file, real machines (agents) and the
 * simulated fleet as its drivers, the ARM-compatible API and the agent channel over HTTPS in front of it.
 * With `store: postgres://…` the CLI starts a replica instead (replicas/replica.ts).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Catalog } from '../catalog/catalog.js';
import type { SimDriver } from '../drivers/sim/sim-driver.js';
import { emptyFleet, newEngineState } from '../engine/state.js';
import type { Scenario } from '../sim/scenario.js';
import { loadScenarioFile } from '../sim/scenario.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { AgentServices } from '../api/agent/services.js';
import type { ServeConfig } from './config.js';
import type { EngineRuntime } from './runtime.js';
import { loadOrCreateTls } from './tls.js';
import { buildStack } from './stack.js';
import type { StackExtra } from './stack.js';
import { registerHealthRoutes } from './replicas/health-routes.js';
import { httpsListenText } from '../api/arm/server.js';

export interface RunningServer {
  url: string;
  token: string | null;
  certPath: string;
  app: FastifyInstance;
  runtime: EngineRuntime;
  store: SqliteStore;
  /** The simulated fleet (its state is saved beside the engine's and restored on the next start). */
  driver: SimDriver;
  agents: AgentServices;
  close(): Promise<void>;
}

export async function startServer(config: ServeConfig, extra: StackExtra = {}): Promise<RunningServer> {
  if (config.store) throw new Error('startServer runs on SQLite; a postgres:// store runs as a replica (startReplica)');
  const scenario: Scenario | null = config.scenario ? loadScenarioFile(config.scenario, { seed: config.seed }) : null;
  // A first start that fails (a port taken meanwhile, a bad certificate) leaves no half-made data folder.
  const freshDir = !existsSync(config.dataDir);
  mkdirSync(config.dataDir, { recursive: true });
  const dbFile = config.database ?? join(config.dataDir, 'phasewise.sqlite');
  let store: SqliteStore;
  try {
    store = SqliteStore.open(dbFile, { mode: 'either' });
  } catch (err) {
    if (freshDir) rmSync(config.dataDir, { recursive: true, force: true });
    throw err;
  }
  try {
    const resumed = store.isInitialised();
    const fresh = resumed ? null : scenario ? scenario.state : newEngineState(emptyFleet(), new Catalog());
    if (fresh) store.importState(fresh);
    // A new database holds what was just imported: the state in hand is used, not read back (a million machines take a minute).
    const state = fresh ?? store.load()!;
    const tls = await loadOrCreateTls(config.tls, config.dataDir, config.host);
    const stack = buildStack({
      config, scenario, tls, store, state, resumed, pendingActions: resumed ? store.pendingActions() : [],
      db: store.database, dbFile, eventLog: store.eventLog, transaction: (fn) => store.transaction(fn),
      // After a failed commit (a full disk, an I/O error) the store is the truth: read it back, as a restart would.
      resyncFromStore: ({ engine, index, goalStates }) => {
        store.reopen();
        engine.resync(store.load()!, store.pendingActions());
        index.rebuild();
        goalStates.invalidateAll();
      },
      extra,
    });
    const { app } = stack;
    registerHealthRoutes(app, () => {
      const halted = stack.engine.haltedBecause;
      return { store: 'sqlite', leader: true, ready: halted === null, ...(halted === null ? {} : { reason: halted }) };
    });
    await app.listen({ host: config.host, port: config.port, listenTextResolver: httpsListenText });
    const serverUrl = config.publicUrl ?? listeningUrl(app, config);
    stack.setServerUrl(serverUrl);
    stack.start();
    let closed = false;
    return {
      url: serverUrl,
      token: stack.token,
      certPath: tls.certPath,
      app, runtime: stack.runtime, store, driver: stack.simDriver, agents: stack.agents,
      async close() {
        if (closed) return;
        closed = true;
        await stack.close();
        store.close();
      },
    };
  } catch (err) {
    store.close();
    if (freshDir) rmSync(config.dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** https://host:port of a listening app (a wildcard host answers as localhost). */
export function listeningUrl(app: FastifyInstance, config: ServeConfig): string {
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `https://${host}:${port}`;
}
