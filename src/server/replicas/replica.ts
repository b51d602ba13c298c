/**
 * `phasewise serve --store postgres://…`: one of several replicas sharing a PostgreSQL database. Every
 * replica serves the API: as a follower (follower.ts) until it takes the engine lease, then as the
 * leader (leader.ts) on the same port. The lease (lease-keeper.ts) is renewed every quarter of its
 * length, on a thread of its own (a long load or tick does not cost it); a leader that cannot renew in time, or whose commit is refused (fenced), steps down: its process ends (exit code 7)
 * and its supervisor starts it again as a follower. Its memory is never trusted again.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { Authenticator } from '../../api/arm/auth.js';
import type { Scenario } from '../../sim/scenario.js';
import { loadScenarioFile } from '../../sim/scenario.js';
import { connect, migrate, pgStoreError, redact } from '../../store/postgres/connect.js';
import { PgEventLogReader } from '../../store/postgres/event-log-reader.js';
import type { Fence } from '../../store/postgres/pg-store.js';
import { LeaseKeeper } from './lease-keeper.js';
import { configuredBusyMaxMs } from './lease-shared.js';
import type { ServeConfig } from '../config.js';
import { loadOrCreateTls } from '../tls.js';
import { listeningUrl } from '../serve.js';
import type { StackExtra } from '../stack.js';
import { secretKeyOf } from '../stack.js';
import { SecretBox } from '../../api/arm/secrets.js';
import { httpsListenText } from '../../api/arm/server.js';
import { forwardingKey, vouch, vouchedIdentity } from '../../api/agent/forwarded-identity.js';
import { sharedAgentCa } from './shared-ca.js';
import { CommandSeal, ResponseWaiter } from './api-commands.js';
import { buildFollowerServer } from './follower.js';
import { SnapshotReads } from './snapshot-reads.js';
import type { HealthView } from './health-routes.js';
import { openLeader } from './leader.js';
import type { Leader } from './leader.js';
import { announce, leaderEndpoint } from './registry.js';
import type { Endpoint } from './registry.js';

/** Exit code of a replica that stepped down (lost its lease, or its commit was fenced): not a crash. */
export const EXIT_STEPPED_DOWN = 7;
const ANNOUNCE_MS = 30_000;
const LEADER_CACHE_MS = 1_000;

export interface RunningReplica {
  url: string;
  certPath: string;
  holder: string;
  role(): 'leader' | 'follower';
  /** Resolves with the reason once the replica stepped down (its API is closed by then). */
  steppedDown: Promise<string>;
  close(): Promise<void>;
}

export interface ReplicaLog {
  info(msg: string): void;
  error(msg: string): void;
}

export async function startReplica(config: ServeConfig, extra: StackExtra = {}, log: ReplicaLog = { info: () => {}, error: () => {} }): Promise<RunningReplica> {
  const url = config.store!;
  const scenario: Scenario | null = config.scenario ? loadScenarioFile(config.scenario, { seed: config.seed }) : null;
  mkdirSync(config.dataDir, { recursive: true });
  const clients: pg.Client[] = [];
  /**
   * Why one of this replica's own connections broke, or null. A `pg` client whose connection broke (a server
   * restart, idle_session_timeout, a proxy, pg_terminate_backend) never works again: the replica restarts to reconnect.
   */
  let brokenConnection: string | null = null;
  let ending = false;
  /** Connections this replica closed on purpose (a leader's snapshot reader's): their end is no fault. */
  const retired = new Set<pg.Client>();
  const watch = (c: pg.Client, purpose: string): pg.Client => {
    clients.push(c);
    c.on('error', (err) => (brokenConnection ??= `its ${purpose} connection to PostgreSQL failed: ${err.message}`));
    c.on('end', () => (ending || retired.has(c) ? undefined : (brokenConnection ??= `its ${purpose} connection to PostgreSQL was closed`)));
    return c;
  };
  const client = watch(await connect(url, { purpose: 'main' }), 'main');
  try {
    // Migrations first (any replica may; an advisory lock makes it once); a newer schema is refused here.
    await migrate(client, url);
    const listener = watch(await connect(url, { purpose: 'listen' }), 'listen');
    // The API's reads of the event log (activity log, histories, export): a connection of their own.
    const eventsClient = watch(await connect(url, { purpose: 'events' }), 'events');
    const eventLog = new PgEventLogReader(eventsClient);
    const tls = await loadOrCreateTls(config.tls, config.dataDir, config.host);
    const secretKey = secretKeyOf(config);
    const agentCa = await sharedAgentCa(client, new SecretBox(secretKey), Date.now());
    const agentKey = forwardingKey(secretKey);
    const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const seal = new CommandSeal(new SecretBox(secretKey));
    const waiter = new ResponseWaiter(client, listener, seal);
    await waiter.start();

    let leader: Leader | null = null;
    let stepped = false;
    let resolveStepped!: (why: string) => void;
    const steppedDown = new Promise<string>((resolve) => (resolveStepped = resolve));
    const lease: LeaseKeeper = new LeaseKeeper(url, holder, config.leaseMs, {
      acquired: (f) => void takeOver(f).catch((err: Error) => stepDown(`could not take over: ${err.message}`)),
      lost: (why) => stepDown(why),
    }, configuredBusyMaxMs(config));
    const connectionLost = () => lease.connectionLost ?? brokenConnection;
    const health = (): HealthView => {
      const lost = connectionLost();
      const reachable = lease.reachable && !lost;
      const fence = lease.held;
      const base = { store: 'postgres' as const, holder, ...(fence ? { token: fence.token } : {}) };
      if (fence && !leader) return { ...base, leader: true, ready: false, reason: 'taking over: loading the state' };
      if (leader) {
        const halted = leader.stack.engine.haltedBecause ?? leader.store.broken?.message;
        return { ...base, leader: true, ready: !halted, ...(halted ? { reason: String(halted) } : {}) };
      }
      const snapshot = reads ? { readSnapshot: reads.version, ...(reads.reason ? { readSnapshotOff: reads.reason } : {}) } : {};
      const why = lost ? `${lost}; it restarts once PostgreSQL answers` : `PostgreSQL not reached within the lease (${redact(url)})`;
      return { ...base, ...snapshot, leader: false, ready: reachable, ...(reachable ? {} : { reason: why }) };
    };
    const writes = {
      client, waiter, seal, publicUrl: config.publicUrl ?? null, retryAfterSeconds: config.retryAfterSeconds,
      applied: (version: number) => reads?.wrote(version),
    };
    const auth = new Authenticator(config.tokens);
    // A snapshot reader has its own connection: a reload's long reads must not hold up queued writes.
    const snapshotClient = config.snapshotReadsMaxMachines > 0 ? watch(await connect(url, { purpose: 'snapshot' }), 'snapshot') : null;
    let reads: SnapshotReads | null = snapshotClient
      ? new SnapshotReads({ url, client: snapshotClient, config, scenario, auth, secrets: new SecretBox(secretKey), maxMachines: config.snapshotReadsMaxMachines, eventLog, log })
      : null;
    reads?.start();
    let leaderSeen: { at: number; endpoint: Endpoint | null } = { at: 0, endpoint: null };
    let follower: FastifyInstance | null = buildFollowerServer({
      https: { cert: tls.cert, key: tls.key, ca: agentCa.certPem, requestCert: true, rejectUnauthorized: false },
      vouch: (method, path, fingerprint, body) => vouch(agentKey, method, path, fingerprint, body, Date.now()),
      maxBodyBytes: config.maxBodyBytes, logLevel: config.logLevel,
      auth, writes, health, reads,
      leader: async (): Promise<Endpoint | null> => {
        // Looked up at most once a second, not once per forwarded request; a dead leader's address fails fast anyway.
        if (Date.now() - leaderSeen.at > LEADER_CACHE_MS) leaderSeen = { at: Date.now(), endpoint: await leaderEndpoint(client) };
        const e = leaderSeen.endpoint;
        return e && e.holder !== holder ? e : null;
      },
    });
    await follower.listen({ host: config.host, port: config.port });
    const port = (follower.server.address() as { port: number }).port;
    const serverUrl = config.publicUrl ?? listeningUrl(follower, config);
    const me: Endpoint = { holder, url: config.advertiseUrl ?? listeningUrl(follower, config), cert: tls.cert };
    await announce(client, me);
    lease.contacted();
    log.info(`replica ${holder} serving at ${serverUrl} (follower)`);

    const stepDown = (why: string) => {
      if (stepped) return;
      stepped = true;
      log.error(`replica ${holder} steps down: ${why}`);
      void shutdown().finally(() => resolveStepped(why));
    };

    const takeOver = async (f: Fence) => {
      const started = Date.now();
      log.info(`replica ${holder} took the lease (fencing token ${f.token}); loading`);
      const l = await openLeader({
        config, url, scenario, tls, fence: f, client, waiter, seal, extra, health,
        agents: { ca: agentCa, vouchedIdentity: (req) => vouchedIdentity(agentKey, req.method ?? '', req.url ?? '', req.headers, Date.now()) },
        onBroken: (err) => stepDown(`a commit was refused: ${err.message}`),
        onWarning: (message) => log.error(`replica ${holder}: ${message}`),
        eventLog,
      });
      if (stepped) return void (await l.close());
      l.stack.setServerUrl(serverUrl);
      leader = l;
      // The runner first: writes the follower's API queued during the load get their responses as it closes.
      await l.start(listener);
      // The takeover is complete at the new leader's first commit (the figure docs/benchmarks.md records).
      const firstCommit = setInterval(() => {
        if (l.store.commits === 0 && !stepped) return;
        clearInterval(firstCommit);
        if (!stepped) log.info(`replica ${holder} made its first commit as leader ${Date.now() - started} ms after taking the lease`);
      }, 5);
      // The same port: the follower's API closes, the leader's opens.
      await follower?.close();
      follower = null;
      await reads?.close();
      reads = null;
      if (snapshotClient) {
        retired.add(snapshotClient); // a leader reads its own state: the snapshot's connection would only idle
        await snapshotClient.end().catch(() => {});
      }
      await l.stack.app.listen({ host: config.host, port, listenTextResolver: httpsListenText });
      log.info(`replica ${holder} leads (fencing token ${f.token}) after ${Date.now() - started} ms of loading`);
    };

    lease.start();
    const announceTimer = setInterval(() => void announce(client, me).catch(() => {}), ANNOUNCE_MS);
    announceTimer.unref();
    // A follower whose connections broke keeps answering 503 while PostgreSQL is away; once a new
    // connection succeeds it steps down, and its supervisor starts it again with fresh connections.
    // A leader steps down at once: another replica, whose connections work, takes over.
    let probing = false;
    const reconnectTimer = setInterval(() => {
      const lost = connectionLost();
      if (lost && leader && !stepped) return stepDown(`${lost}; it restarts to reconnect`);
      if (!lost || leader || stepped || probing) return;
      probing = true;
      void connect(url, { timeoutMs: config.leaseMs, purpose: 'probe' })
        .then(async (probe) => {
          await probe.end().catch(() => {});
          stepDown(`PostgreSQL is reachable again, but this replica's connections to it were lost (${lost}); it restarts to reconnect`);
        }, () => {})
        .finally(() => (probing = false));
    }, Math.max(50, Math.floor(config.leaseMs / 4)));
    reconnectTimer.unref();

    let closing: Promise<void> | null = null;
    async function shutdown(): Promise<void> {
      closing ??= (async () => {
        ending = true;
        lease.stop();
        clearInterval(announceTimer);
        clearInterval(reconnectTimer);
        waiter.close();
        await follower?.close().catch(() => {});
        await reads?.close().catch(() => {});
        if (leader) await leader.close().catch((err: Error) => log.error(`closing the leader: ${err.message}`));
        if (!stepped) await lease.release();
        await lease.end();
        for (const c of clients) await c.end().catch(() => {});
      })();
      return closing;
    }

    return {
      url: serverUrl, certPath: tls.certPath, holder,
      role: () => (leader ? 'leader' : 'follower'),
      steppedDown,
      close: shutdown,
    };
  } catch (err) {
    ending = true;
    for (const c of clients) await c.end().catch(() => {});
    // PostgreSQL refusing a statement (a read-only standby, options in the URL) names the store, as other store errors do.
    throw err instanceof pg.DatabaseError ? pgStoreError(err, url) : err;
  }
}

