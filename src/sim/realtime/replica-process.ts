/**
 * One replica of the control plane on PostgreSQL, for real-time runs with several of them: it serves
 * `GET /healthz`, `GET /readyz` and `POST /commands` (API writes, queued for the leader) on loopback,
 * competes for the engine lease, and while it leads runs the production engine on an accelerated
 * clock, its actions and observations over IPC to the fleet host. A replica that loses the lease (or
 * whose commit is fenced) exits with code 7: its in-memory state is stale, a supervisor starts it again.
 *
 *   node replica-process.js SCENARIO URL SIM_START_MS REAL_START_MS FACTOR LEASE_MS
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Driver } from '../../engine/driver.js';
import { Engine } from '../../engine/engine.js';
import { COMMANDS_CHANNEL, enqueueCommand, markDoneSql, openCommands } from '../../store/postgres/commands.js';
import { connect } from '../../store/postgres/connect.js';
import { renew, tryAcquire } from '../../store/postgres/lease.js';
import type { Fence } from '../../store/postgres/pg-store.js';
import { PgStore } from '../../store/postgres/pg-store.js';
import { loadScenarioFile } from '../scenario.js';
import type { Scenario } from '../scenario.js';
import { applyDueActions, tickIfDue } from '../simulator.js';
import { AcceleratedClock } from './accelerated-clock.js';
import type { HostMessage, ReplicaMessage } from './messages.js';

const LOOP_MS = 5;
const COMMAND_POLL_MS = 20;
/** Exit code of a replica that lost the lease: not a crash, a step down. */
export const EXIT_STEPPED_DOWN = 7;
const MAX_BODY = 16 * 1024;

function post(m: ReplicaMessage): void {
  if (process.connected) process.send!(m);
}

interface Leader {
  engine: Engine;
  store: PgStore;
  ready: boolean;
}

async function main(): Promise<void> {
  const [scenarioFile, url, simStartMs, realStartMs, factor, leaseText] = process.argv.slice(2);
  if (!process.send || leaseText === undefined) throw new Error('usage: fork replica-process.js SCENARIO URL SIM_START_MS REAL_START_MS FACTOR LEASE_MS');
  const leaseMs = Number(leaseText);
  const scenario = loadScenarioFile(scenarioFile!);
  const clock = new AcceleratedClock({ simStartMs: Number(simStartMs), realStartMs: Number(realStartMs), factor: Number(factor) });
  const holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const api = await connect(url!);
  const leaseClient = await connect(url!);
  // Migrations first (every replica may; the advisory lock makes it once), before anything else is read.
  (await PgStore.open(url!)).close();
  let leader: Leader | null = null;
  let fence: Fence | null = null;
  let lastRenewOk = 0;

  const server = createServer((req, res) => void handle(req, res));
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === 'GET' && req.url === '/healthz') return send(200, { serving: true, leader: leader !== null, holder });
      if (req.method === 'GET' && req.url === '/readyz') {
        const ready = leader ? leader.ready : true;
        return send(ready ? 200 : 503, { ready, leader: leader !== null });
      }
      if (req.method === 'POST' && req.url === '/commands') {
        const body = await readBody(req);
        const cmd = parseCommand(body, scenario);
        if ('error' in cmd) return send(400, { error: cmd.error });
        const id = await enqueueCommand(api, 'updateExtension', cmd);
        return send(202, { id });
      }
      send(404, { error: { code: 'NotFound', message: `no route ${req.method} ${req.url}` } });
    } catch (err) {
      send(503, { error: { code: 'Unavailable', message: (err as Error).message } });
    }
  }
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  post({ type: 'listening', port: (server.address() as { port: number }).port });

  const stepDown = (why: string) => {
    process.stderr.write(`stepping down: ${why}\n`);
    process.exit(EXIT_STEPPED_DOWN);
  };

  // The lease: renewed every quarter of it; a holder that could not renew within the lease steps down.
  let electing = false;
  setInterval(() => {
    if (electing) return;
    electing = true;
    void (async () => {
      try {
        if (fence) {
          if (await renew(leaseClient, fence, leaseMs)) lastRenewOk = Date.now();
          else stepDown('the lease was lost');
        } else {
          const got = await tryAcquire(leaseClient, holder, leaseMs);
          if (got) {
            fence = got;
            lastRenewOk = Date.now();
            post({ type: 'leading', token: got.token, atMs: Date.now() });
            // Loading runs beside the renewals: a long load must not cost the lease.
            lead(got).then((l) => (leader = l), (err: Error) => stepDown(`could not take over: ${err.message}`));
          }
        }
      } catch (err) {
        if (fence) stepDown(`lease check failed: ${(err as Error).message}`);
      } finally {
        electing = false;
      }
      if (fence && Date.now() - lastRenewOk > leaseMs) stepDown('no renewal within the lease');
    })();
  }, Math.max(50, Math.floor(leaseMs / 4)));

  async function lead(f: Fence): Promise<Leader> {
    post({ type: 'opening' });
    const store = await PgStore.open(url!, { fence: f, onBroken: (e) => stepDown(`commit refused: ${e.message}`) });
    const resumed = store.isInitialised();
    if (!resumed) await store.importState(scenario.state);
    const state = store.load()!;
    const driver: Driver = {
      send: (action) => post({ type: 'action', action }),
      observe: (machineIds) => post({ type: 'observe', machineIds: [...machineIds] }),
    };
    const engine = new Engine({ clock, driver, store, state, profiles: scenario.profiles, ...(scenario.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}) });
    const { resent, observed } = resumed ? engine.recover(store.pendingActions()) : { resent: 0, observed: 0 };
    const me: Leader = { engine, store, ready: true };
    let first = true;
    engine.onEvents(() => {
      if (first) {
        first = false;
        post({ type: 'firstCommit', token: f.token, atMs: Date.now() });
      }
    });
    post({ type: 'ready', resumed, resent, observed });
    runEngine(me, scenario);
    return me;
  }

  process.on('message', (m: HostMessage) => {
    if (m.type === 'obs') leader?.engine.observe(m.obs);
    else if (m.type === 'stop') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));

  function runEngine(l: Leader, sc: Scenario): void {
    const { engine, store } = l;
    const state = engine.state;
    const actions = sc.actions;
    let doneSent = false;
    let polling = false;
    let appliedUpTo = 0;
    let lastPoll = 0;
    // NOTIFY wakes the poll at once; the poll also runs every COMMAND_POLL_MS, so a lost notification only delays.
    void connect(url!).then(async (listener) => {
      listener.on('notification', () => (lastPoll = 0));
      await listener.query(`LISTEN ${COMMANDS_CHANNEL}`);
    }).catch(() => {});
    setInterval(() => {
      try {
        const now = clock.now();
        applyDueActions(engine, actions, now);
        tickIfDue(engine, now);
        if (!polling && Date.now() - lastPoll >= COMMAND_POLL_MS) {
          polling = true;
          lastPoll = Date.now();
          void openCommands(store.connection, appliedUpTo).then((cmds) => {
            for (const c of cmds) {
              appliedUpTo = c.id;
              const body = c.body as { machineId: string; key: string; settings: Record<string, unknown> };
              store.withNextCommit(markDoneSql(c.id, { ok: true }));
              try {
                engine.updateExtension(body.machineId, body.key, { settings: body.settings }, 'replica-api');
              } catch (err) {
                store.clearNextCommit(); // nothing was committed: the command is marked failed on its own
                void store.commitAlone(markDoneSql(c.id, { error: (err as Error).message }));
              }
            }
          }).finally(() => (polling = false));
        }
        if (!doneSent && (state.marks.scenarioActions ?? 0) >= actions.length && ![...state.rollouts.values()].some((r) => r.status === 'running')) {
          doneSent = true;
          post({ type: 'done' });
        }
      } catch (err) {
        fatal(err);
      }
    }, LOOP_MS);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > MAX_BODY) throw new Error('body too large');
  }
  return text;
}

/** The one write this test surface takes: an extension's settings; checked before it is queued. */
function parseCommand(text: string, scenario: Scenario): { machineId: string; key: string; settings: Record<string, unknown> } | { error: { code: string; message: string } } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: { code: 'InvalidRequestContent', message: 'the body is not JSON' } };
  }
  const o = v as { machineId?: unknown; key?: unknown; settings?: unknown };
  if (typeof o?.machineId !== 'string' || typeof o.key !== 'string' || typeof o.settings !== 'object' || o.settings === null || Array.isArray(o.settings)) {
    return { error: { code: 'InvalidRequestContent', message: 'expected {"machineId": string, "key": string, "settings": object}' } };
  }
  if (!scenario.state.fleet.instances.get(o.key)?.has(o.machineId)) return { error: { code: 'NotFound', message: `no ${o.key} on ${o.machineId}` } };
  return { machineId: o.machineId, key: o.key, settings: o.settings as Record<string, unknown> };
}

function fatal(err: unknown): void {
  const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`${error}\n`);
  if (process.connected) process.send!({ type: 'fatal', error } satisfies ReplicaMessage, () => process.exit(1));
  else process.exit(1);
}

main().catch(fatal);
