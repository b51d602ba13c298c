/**
 * What `serve` runs around one engine, whatever store holds it: the simulated fleet and the real
 * machines' driver, the engine and its real-time loop, the ARM API's context and server, the agent
 * services and the operators' tools. The SQLite server (serve.ts) and a PostgreSQL replica that leads
 * (replicas/leader.ts) each open their store and side database, then build this; neither listens here.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type Database from 'better-sqlite3';
import { DEFAULT_FAILURE_MODEL } from '../drivers/sim/failure-model.js';
import { validateRegionPairs } from '../model/fleet.js';
import type { FailureModel, FleetBehaviour } from '../drivers/sim/failure-model.js';
import { SimDriver } from '../drivers/sim/sim-driver.js';
import type { SimDriverSnapshot } from '../drivers/sim/sim-driver.js';
import { Engine } from '../engine/engine.js';
import type { EngineState } from '../engine/state.js';
import type { DriverAction } from '../engine/driver.js';
import { AcceleratedClock } from '../sim/realtime/accelerated-clock.js';
import { isoOf } from '../engine/clock.js';
import type { Scenario } from '../sim/scenario.js';
import { SimPatchSchedules } from '../sim/patch-schedules.js';
import type { Store } from '../store/store.js';
import type { EventLogReader } from '../store/event-log-reader.js';
import type { TokenGrant } from '../api/arm/auth.js';
import { Authenticator } from '../api/arm/auth.js';
import { Documents } from '../api/arm/documents.js';
import { FleetIndex } from '../api/arm/fleet-index.js';
import { ImageStore } from '../api/arm/image-store.js';
import { Operations } from '../api/arm/operations.js';
import { SecretBox } from '../api/arm/secrets.js';
import { secretKeyMismatch } from '../api/arm/secret-key-check.js';
import { buildArmServer } from '../api/arm/server.js';
import type { ArmServerOptions } from '../api/arm/server.js';
import type { ArmContext } from '../api/arm/context.js';
import { reconcileMaintenance } from '../api/arm/routes/maintenance/index.js';
import { PatchScheduleRunner } from '../api/arm/patch-schedules.js';
import { PeriodicAssessment } from '../api/arm/patch-assessments.js';
import { PlatformPatching } from '../api/arm/platform-patching.js';
import { ConfigError } from './config.js';
import type { ServeConfig } from './config.js';
import { EngineRuntime } from './runtime.js';
import { AgentCa } from '../api/agent/agent-ca.js';
import { EnrollmentTokens } from '../api/agent/enrollment-tokens.js';
import { GoalStates } from '../api/agent/goal-states.js';
import { PackageStore } from '../api/agent/package-store.js';
import type { AgentServices } from '../api/agent/services.js';
import { AgentInstances, instanceLeaseMs } from '../api/agent/agent-instances.js';
import { StatusWriter } from '../api/agent/status-writer.js';
import type { ExtensionDoc } from '../api/arm/extensions.js';
import type { ScaleSetDoc } from '../api/arm/routes/scale-sets/index.js';
import { AgentDriver } from '../drivers/agent/agent-driver.js';
import { AgentStore } from '../drivers/agent/agent-store.js';
import { RoutingDriver } from '../drivers/routing-driver.js';
import type { TlsMaterial } from './tls.js';
import { installOperatorTools } from './operator-tools.js';
import type { OperatorTools } from './operator-tools.js';
import { readOrCreate } from '../util/atomic-file.js';

export interface StackExtra {
  simulatedFailures?: Record<string, Partial<FailureModel>>;
  wallNow?: () => number;
}

export interface StackInput {
  config: ServeConfig;
  scenario: Scenario | null;
  tls: TlsMaterial;
  store: Store;
  state: EngineState;
  /** True when the state was loaded (a restart or a takeover), false when just imported. */
  resumed: boolean;
  /** The latest instant the event log holds (a takeover): simulated time goes on from it, never before it. */
  timeFloorMs?: number;
  pendingActions: readonly DriverAction[];
  /** The database of the API's own tables (documents, agents, packages, tokens, webhooks). */
  db: Database.Database;
  /** Where the API reads the event log (the engine's store). */
  eventLog: EventLogReader;
  /** Its file, for the agent status writer's own connection. */
  dbFile: string;
  /** The transaction documents and engine commands share (`Documents.atomically`). */
  transaction: <T>(fn: () => T) => T;
  /** Reads the store back after a failed commit (SQLite); null: a halted engine stays halted. */
  resyncFromStore: ((parts: { engine: Engine; index: FleetIndex; goalStates: GoalStates }) => void) | null;
  extra: StackExtra;
  /** Replicas: how the API tells injected requests and takes writes as commands. */
  server?: Pick<ArmServerOptions, 'injectedPrincipal' | 'beforeHandler'>;
  /** Replicas: the agent CA they share (absent: DATA_DIR/agent-ca/), and who vouches for forwarded agents. */
  agents?: Pick<AgentServices, 'ca' | 'vouchedIdentity' | 'replicateFile'>;
}

export interface Stack {
  app: FastifyInstance;
  ctx: ArmContext;
  engine: Engine;
  runtime: EngineRuntime;
  simDriver: SimDriver;
  agentDriver: AgentDriver;
  agents: AgentServices;
  tools: OperatorTools;
  /** The operator token made on first start, when none is configured. */
  token: string | null;
  /** Sets the URL agents are given (known once the server listens). */
  setServerUrl(url: string): void;
  /** Starts the engine, the fleet's periodic save and the agents' sweep (after `app.listen`). */
  start(): void;
  /** Stops them and closes the app and the status writer (the store is the caller's). */
  close(): Promise<void>;
}

interface ClockOrigin { simStartMs: number; realStartMs: number; factor: number }

/** Where the simulated fleet's own state is kept (see SimDriver.snapshot), and how often it is saved. */
const SIMULATOR_DOC = '/phasewise/simulator';
const SAVE_FLEET_MS = 2_000;

export function buildStack(input: StackInput): Stack {
  const { config, scenario, store, state, resumed, db, extra } = input;
  const docs = new Documents(db, input.transaction);

  // Simulated time continues across restarts; a new factor takes effect from now on.
  const saved = docs.get<ClockOrigin>('/phasewise/clock')?.body;
  const realNow = Date.now();
  let origin: ClockOrigin = saved ?? { simStartMs: scenario?.startMs ?? realNow, realStartMs: realNow, factor: config.clockFactor };
  if (origin.factor !== config.clockFactor) origin = { simStartMs: new AcceleratedClock(origin).now(), realStartMs: realNow, factor: config.clockFactor };
  // A replica whose wall clock is behind its predecessor's would take time back (events before those logged): it goes on from the log's last.
  const floor = input.timeFloorMs;
  if (floor !== undefined && new AcceleratedClock(origin).now() < floor) origin = { simStartMs: floor, realStartMs: realNow, factor: config.clockFactor };
  docs.put('/phasewise/clock', '/phasewise', 'setting', origin);
  const clock = new AcceleratedClock(origin);

  const behaviour: FleetBehaviour = scenario?.behaviour ?? { default: { ...DEFAULT_FAILURE_MODEL }, versions: {}, slowAgents: { share: 0, factor: 1 }, background: [] };
  for (const [v, model] of Object.entries(extra.simulatedFailures ?? {})) behaviour.versions[v] = { ...(behaviour.versions[v] ?? {}), ...model };
  const simDriver = new SimDriver(state.fleet, behaviour, () => clock.now(), config.seed);
  // The simulated fleet goes on where it stopped (its random stream, sick machines, deliveries in flight).
  const fleetSaved = resumed ? docs.get<SimDriverSnapshot>(SIMULATOR_DOC)?.body : undefined;
  if (fleetSaved && fleetSaved.seed === config.seed) simDriver.restore(fleetSaved);
  // Real machines: the agent driver takes the machines bound to an agent, the simulated fleet the rest.
  const wallNow = extra.wallNow ?? (() => Date.now());
  // Leases are intervals: the monotonic clock, so a wall-clock step (NTP, `date -s`) neither ends nor stretches one (tests move their own clock).
  const leaseNow = extra.wallNow ?? (() => performance.now());
  const packages = new PackageStore(db, config.dataDir);
  const agentDriver = new AgentDriver({
    store: new AgentStore(db), fleet: () => state.fleet, engineNow: () => clock.now(), wallNow,
    statusIntervalSeconds: config.agentStatusIntervalSeconds, hasPackage: (key, version) => packages.has(key, version),
  });
  const driver = new RoutingDriver([{ driver: agentDriver, handles: (id) => agentDriver.handles(id) }], simDriver);
  // Real agents live in wall time: their action timeouts and health waits stretch with an accelerated clock.
  const wallScale = config.clockFactor === 1 ? undefined : (machineId: string) => (agentDriver.handles(machineId) ? config.clockFactor : 1);
  const engine = new Engine({
    clock,
    driver,
    store,
    state,
    profiles: scenario?.profiles ?? {},
    ...(wallScale ? { wallScale } : {}),
    ...(scenario?.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}),
  });
  if (resumed) engine.recover(input.pendingActions);

  const generated = config.tokens.length > 0 ? null : generatedToken(config.dataDir);
  const tokens = generated ? [generated] : config.tokens;
  const logger = { level: config.logLevel };
  const subscriptions = new Set(config.subscriptions);
  const runtimeLog = { error: (o: object, m: string) => app.log.error(o, m), info: (o: object, m: string) => app.log.info(o, m) };
  const resync = input.resyncFromStore;
  const runtime = new EngineRuntime(engine, clock, config.clockFactor, driver, scenario?.actions ?? [], runtimeLog,
    resync ? () => resync({ engine, index, goalStates }) : null);
  agentDriver.setWake(() => runtime.kick());
  const index = new FleetIndex(state, [...subscriptions]);
  const secrets = new SecretBox(secretKeyOf(config));
  const unopened = secretKeyMismatch(docs, secrets);
  if (unopened !== null) {
    const source = config.secretKey ? 'secretKey (PHASEWISE_SECRET_KEY)' : join(config.dataDir, 'secret.key');
    throw new ConfigError(`the secret key in ${source} does not open the secrets stored in this database (first: ${unopened}); `
      + 'give the key the database was written with (a restored backup needs the old data folder\'s secret.key, docs/deploy.md)');
  }
  let serverUrl = config.publicUrl ?? '';
  const goalStates = new GoalStates({
    driver: agentDriver, state: () => engine.state, packages,
    sealedProtectedSettings: (machineId, extensionName) => {
      const m = engine.state.fleet.machines.get(machineId);
      return m ? (docs.get<ExtensionDoc>(`${index.armIdOfMachine(m)}/extensions/${extensionName}`)?.body.protectedSettings ?? null) : null;
    },
    openSealed: (sealed) => secrets.open(sealed),
    provisionAfter: (machineId, extensionName) => {
      const m = engine.state.fleet.machines.get(machineId);
      if (!m) return [];
      const own = docs.get<ExtensionDoc>(`${index.armIdOfMachine(m)}/extensions/${extensionName}`)?.body.provisionAfterExtensions;
      if (own) return own;
      // A scale-set instance's extensions come from the set's model.
      const set = m.placement.setId ? engine.state.fleet.scaleSets.get(m.placement.setId) : undefined;
      const model = set ? docs.get<ScaleSetDoc>(index.armIdOfSet(set))?.body.properties.virtualMachineProfile?.extensionProfile?.extensions : undefined;
      return model?.find((e) => e.name.toLowerCase() === extensionName.toLowerCase())?.properties.provisionAfterExtensions ?? [];
    },
    baseUrl: () => serverUrl.replace(/\/+$/, ''),
    pollIntervalSeconds: config.agentPollIntervalSeconds, statusIntervalSeconds: config.agentStatusIntervalSeconds, wallNow,
  });
  // Whatever the engine does to a bound machine (installs, notices) may change its goal state.
  engine.onEvents((events) => {
    goalStates.noteEvents(events);
    for (const e of events) if ('machineId' in e && typeof e.machineId === 'string') goalStates.invalidateMachine(e.machineId);
  });
  const agents: AgentServices = {
    ca: input.agents?.ca ?? AgentCa.loadOrCreate(config.dataDir, wallNow()), driver: agentDriver, goalStates, packages,
    status: new StatusWriter(agentDriver.store, (id, report, at) => agentDriver.onReport(id, report, at), (err) => app.log.error({ err }, 'agent report processing failed'), input.dbFile),
    tokens: new EnrollmentTokens(db, config.enrollmentTokens), wallNow,
    pollIntervalSeconds: config.agentPollIntervalSeconds, statusIntervalSeconds: config.agentStatusIntervalSeconds,
    certificateValidityDays: config.agentCertificateValidityDays,
    instances: new AgentInstances(instanceLeaseMs(config.agentPollIntervalSeconds, config.agentStatusIntervalSeconds), leaseNow, wallNow, (agentId, s) =>
      app.log.warn({ agentId, seat: s.seat, holderSeat: s.holderSeat }, 'a second copy of an agent identity was refused (DuplicateAgentInstance): a cloned or restored machine must re-enroll')),
    ...(input.agents?.vouchedIdentity ? { vouchedIdentity: input.agents.vouchedIdentity } : {}),
    ...(input.agents?.replicateFile ? { replicateFile: input.agents.replicateFile } : {}),
  };
  const ctx: ArmContext = {
    engine, runtime, db, eventLog: input.eventLog, docs,
    ops: new Operations(docs, { state: () => engine.state, now: () => isoOf(runtime.clock.now()), wallNow }),
    patches: driver.patches, secrets, index, images: new ImageStore(engine), auth: new Authenticator(tokens),
    publicUrl: config.publicUrl ?? null, retryAfterSeconds: config.retryAfterSeconds, pageSize: config.pageSize, agents,
  };
  reconcileMaintenance(ctx, 'phasewise');
  const schedules = new PatchScheduleRunner(ctx, (err, configId) => runtimeLog.error({ err, configId }, 'patch schedule run failed'));
  runtime.addStepper(schedules);
  const platformPatching = new PlatformPatching(ctx, schedules);
  runtime.addStepper({ step: (now) => platformPatching.step(now), nextAt: () => platformPatching.nextAt() });
  // A scenario's own InGuestPatch schedules (the demo's nightly one) run on its simulated machines as
  // `phasewise sim` runs them; schedules made over the API run through PatchScheduleRunner above.
  if (scenario && scenario.patchSchedules.length > 0) {
    const own = new SimPatchSchedules(scenario.patchSchedules, scenario.patchSettings);
    runtime.addStepper({ step: (now) => own.step(engine, simDriver.patches, now), nextAt: (now) => own.nextAt(engine, now) });
  }
  const assessments = new PeriodicAssessment(ctx, (err, machineId) => runtimeLog.info({ err, machineId }, 'periodic patch assessment failed'));
  runtime.addStepper({ step: (now) => assessments.step(now), nextAt: () => assessments.nextAt() });
  // Clients are asked for a certificate (agents' mTLS) but not required to have one (ARM clients).
  const https = { cert: input.tls.cert, key: input.tls.key, ca: agents.ca.certPem, requestCert: true, rejectUnauthorized: false };
  const app = buildArmServer(ctx, { https, maxBodyBytes: config.maxBodyBytes, logger, ...input.server });
  const tools = installOperatorTools(app, ctx, config, store, () => agentDriver.connectedCount(), () => agents.instances?.duplicateCount() ?? 0);
  // Geo-pairs stored before they were checked (two regions naming one): kept as stored, planned apart both ways (phases.ts).
  for (const problem of validateRegionPairs([...state.fleet.regions.values()])) {
    app.log.warn({ problem }, `stored regions: ${problem}; kept as stored; each region is planned in another phase than every region it names or that names it (R10)`);
  }

  let lastSaved = '';
  let saveFailing = false;
  const saveFleet = () => {
    const snap = simDriver.snapshot();
    const text = JSON.stringify(snap);
    if (text === lastSaved) return; // an idle fleet costs no write
    try {
      docs.put(SIMULATOR_DOC, '/phasewise', 'setting', snap);
    } catch (err) {
      // A full disk or an I/O error: thrown from the timer it ended serve (an uncaught exception). Tried again next time.
      if (!saveFailing) app.log.warn(`the simulated fleet's snapshot could not be saved (tried again every ${SAVE_FLEET_MS / 1000} s): ${(err as Error).message}`);
      saveFailing = true;
      return;
    }
    saveFailing = false;
    lastSaved = text;
  };
  let fleetTimer: NodeJS.Timeout | null = null;
  let sweep: NodeJS.Timeout | null = null;
  let closed = false;
  return {
    app, ctx, engine, runtime, simDriver, agentDriver, agents, tools, token: generated?.token ?? null,
    setServerUrl: (url) => (serverUrl = url),
    start() {
      runtime.start();
      // Between two event-loop turns every commit is done and its actions sent: the snapshot matches the store.
      saveFleet();
      fleetTimer = setInterval(saveFleet, SAVE_FLEET_MS);
      fleetTimer.unref();
      // Heartbeats are wall time: a machine silent for three status intervals is Disconnected.
      sweep = setInterval(() => agentDriver.sweep(), Math.max(100, config.agentStatusIntervalSeconds * 500));
      sweep.unref();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (sweep) clearInterval(sweep);
      runtime.stop();
      tools.close();
      if (fleetTimer) clearInterval(fleetTimer);
      await app.close();
      saveFleet();
      await agents.status.close();
    },
  };
}

/** Without configured tokens: one operator token with every role, kept in DATA_DIR/token. */
function generatedToken(dataDir: string): TokenGrant {
  const file = join(dataDir, 'token');
  // Written whole (temp, fsync, rename); an empty file left by an older version is replaced.
  const text = readOrCreate(file, () => `${randomBytes(24).toString('base64url')}\n`, (t) => t.trim() !== '', { mode: 0o600 });
  return { token: text.trim(), name: 'operator', roles: ['reader', 'contributor', 'publisher'] };
}

export function secretKeyOf(config: ServeConfig): Buffer {
  if (config.secretKey) return Buffer.from(config.secretKey, 'hex');
  const file = join(config.dataDir, 'secret.key');
  // Only an empty file (a crash of an older version mid-write) is replaced; another key would lose the secrets.
  const text = readOrCreate(file, () => `${randomBytes(32).toString('hex')}\n`, (t) => t.trim() !== '', { mode: 0o600 }).trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text)) throw new ConfigError(`${file}: expected 64 hexadecimal characters (the key that seals protected settings)`);
  return Buffer.from(text, 'hex');
}
