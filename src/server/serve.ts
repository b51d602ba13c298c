/**
 * `phasewise serve`: the engine in real time on the SQLite store, the simulated fleet as its driver,
 * and the ARM-compatible API over HTTPS in front of it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type Database from 'better-sqlite3';
import { Catalog } from '../catalog/catalog.js';
import { DEFAULT_FAILURE_MODEL } from '../drivers/sim/failure-model.js';
import type { FailureModel, FleetBehaviour } from '../drivers/sim/failure-model.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import type { SimDriverSnapshot } from '../drivers/sim/sim-driver.js';
import { Engine } from '../engine/engine.js';
import { emptyFleet, newEngineState } from '../engine/state.js';
import { AcceleratedClock } from '../sim/realtime/accelerated-clock.js';
import type { Scenario } from '../sim/scenario.js';
import { loadScenarioFile } from '../sim/scenario.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { TokenGrant } from '../api/arm/auth.js';
import { Authenticator } from '../api/arm/auth.js';
import { Documents } from '../api/arm/documents.js';
import { FleetIndex } from '../api/arm/fleet-index.js';
import { ImageStore } from '../api/arm/image-store.js';
import { Operations } from '../api/arm/operations.js';
import { SecretBox } from '../api/arm/secrets.js';
import { buildArmServer } from '../api/arm/server.js';
import type { ArmContext } from '../api/arm/context.js';
import { reconcileMaintenance } from '../api/arm/routes/maintenance.js';
import { ConfigError } from './config.js';
import type { ServeConfig } from './config.js';
import { EngineRuntime } from './runtime.js';
import { loadOrCreateTls } from './tls.js';
import { readOrCreate } from '../util/atomic-file.js';

export interface RunningServer {
  url: string;
  token: string | null;
  certPath: string;
  app: FastifyInstance;
  runtime: EngineRuntime;
  store: SqliteStore;
  /** The simulated fleet (its state is saved beside the engine's and restored on the next start). */
  driver: SimDriver;
  close(): Promise<void>;
}

interface ClockOrigin { simStartMs: number; realStartMs: number; factor: number }

/** Where the simulated fleet's own state is kept (see SimDriver.snapshot), and how often it is saved. */
const SIMULATOR_DOC = '/phasewise/simulator';
const SAVE_FLEET_MS = 2_000;

export async function startServer(config: ServeConfig, extra: { simulatedFailures?: Record<string, Partial<FailureModel>> } = {}): Promise<RunningServer> {
  const scenario: Scenario | null = config.scenario ? loadScenarioFile(config.scenario, { seed: config.seed }) : null;
  // A first start that fails (a port taken meanwhile, a bad certificate) leaves no half-made data folder.
  const freshDir = !existsSync(config.dataDir);
  mkdirSync(config.dataDir, { recursive: true });
  let store: SqliteStore;
  try {
    store = SqliteStore.open(config.database ?? join(config.dataDir, 'phasewise.sqlite'), { mode: 'either' });
  } catch (err) {
    if (freshDir) rmSync(config.dataDir, { recursive: true, force: true });
    throw err;
  }
  try {
    const resumed = store.isInitialised();
    if (!resumed) store.importState(scenario ? scenario.state : newEngineState(emptyFleet(), new Catalog()));
    const state = store.load()!;
    const db: Database.Database = store.database;
    const docs = new Documents(db, (fn) => store.transaction(fn));

    // Simulated time continues across restarts; a new factor takes effect from now on.
    const saved = docs.get<ClockOrigin>('/phasewise/clock')?.body;
    const realNow = Date.now();
    let origin: ClockOrigin = saved ?? { simStartMs: scenario?.startMs ?? realNow, realStartMs: realNow, factor: config.clockFactor };
    if (origin.factor !== config.clockFactor) origin = { simStartMs: new AcceleratedClock(origin).now(), realStartMs: realNow, factor: config.clockFactor };
    docs.put('/phasewise/clock', '/phasewise', 'setting', origin);
    const clock = new AcceleratedClock(origin);

    const behaviour: FleetBehaviour = scenario?.behaviour ?? { default: { ...DEFAULT_FAILURE_MODEL }, versions: {}, slowAgents: { share: 0, factor: 1 }, background: [] };
    for (const [v, model] of Object.entries(extra.simulatedFailures ?? {})) behaviour.versions[v] = { ...(behaviour.versions[v] ?? {}), ...model };
    const driver = new SimDriver(state.fleet, behaviour, () => clock.now(), config.seed);
    // The simulated fleet goes on where it stopped (its random stream, sick machines, deliveries in flight).
    const fleetSaved = resumed ? docs.get<SimDriverSnapshot>(SIMULATOR_DOC)?.body : undefined;
    if (fleetSaved && fleetSaved.seed === config.seed) driver.restore(fleetSaved);
    const engine = new Engine({ clock, driver, store, state, profiles: scenario?.profiles ?? {}, ...(scenario?.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}) });
    if (resumed) engine.recover(store.pendingActions());

    const tokens = config.tokens.length > 0 ? config.tokens : [generatedToken(config.dataDir)];
    const tls = await loadOrCreateTls(config.tls, config.dataDir, config.host);
    const logger = { level: config.logLevel };
    const subscriptions = new Set(config.subscriptions);
    const runtimeLog = { error: (o: object, m: string) => app.log.error(o, m), info: (o: object, m: string) => app.log.info(o, m) };
    const runtime = new EngineRuntime(engine, clock, config.clockFactor, driver, scenario?.actions ?? [], runtimeLog);
    const index = new FleetIndex(state, [...subscriptions]);
    const ctx: ArmContext = {
      engine, runtime, db, docs, ops: new Operations(docs), secrets: new SecretBox(secretKey(config)), index, images: new ImageStore(engine), auth: new Authenticator(tokens),
      publicUrl: config.publicUrl ?? null, retryAfterSeconds: config.retryAfterSeconds, pageSize: config.pageSize,
    };
    reconcileMaintenance(ctx, 'phasewise');
    const app = buildArmServer(ctx, { https: { cert: tls.cert, key: tls.key }, maxBodyBytes: config.maxBodyBytes, logger });
    await app.listen({ host: config.host, port: config.port });
    runtime.start();
    let lastSaved = '';
    const saveFleet = () => {
      const snap = driver.snapshot();
      const text = JSON.stringify(snap);
      if (text !== lastSaved) docs.put(SIMULATOR_DOC, '/phasewise', 'setting', snap); // an idle fleet costs no write
      lastSaved = text;
    };
    // Between two event-loop turns every commit is done and its actions sent: the snapshot matches the store.
    saveFleet();
    const fleetTimer = setInterval(saveFleet, SAVE_FLEET_MS);
    fleetTimer.unref();
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
    let closed = false;
    return {
      url: config.publicUrl ?? `https://${host}:${port}`,
      token: config.tokens.length > 0 ? null : tokens[0]!.token,
      certPath: tls.certPath,
      app, runtime, store, driver,
      async close() {
        if (closed) return;
        closed = true;
        runtime.stop();
        clearInterval(fleetTimer);
        await app.close();
        saveFleet();
        store.close();
      },
    };
  } catch (err) {
    store.close();
    if (freshDir) rmSync(config.dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** Without configured tokens: one operator token with every role, kept in DATA_DIR/token. */
function generatedToken(dataDir: string): TokenGrant {
  const file = join(dataDir, 'token');
  // Written whole (temp, fsync, rename); an empty file left by an older version is replaced.
  const text = readOrCreate(file, () => `${randomBytes(24).toString('base64url')}\n`, (t) => t.trim() !== '', { mode: 0o600 });
  return { token: text.trim(), name: 'operator', roles: ['reader', 'contributor', 'publisher'] };
}

function secretKey(config: ServeConfig): Buffer {
  if (config.secretKey) return Buffer.from(config.secretKey, 'hex');
  const file = join(config.dataDir, 'secret.key');
  // Only an empty file (a crash of an older version mid-write) is replaced; another key would lose the secrets.
  const text = readOrCreate(file, () => `${randomBytes(32).toString('hex')}\n`, (t) => t.trim() !== '', { mode: 0o600 }).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new ConfigError(`${file}: expected 64 hexadecimal characters (the key that seals protected settings)`);
  return Buffer.from(text, 'hex');
}
