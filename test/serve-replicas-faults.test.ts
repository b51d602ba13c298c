/**
 * Faults the other replica tests do not make, with real processes: three `phasewise serve` replicas on an
 * embedded PostgreSQL, a rollout running on an accelerated clock (examples/small.yaml, its release
 * published 6 simulated hours in), a client streaming writes to every replica.
 * - pg_terminate_backend of the leader's lease connection only, then of every connection of the next leader;
 * - PostgreSQL itself stopped and started again on the same port and data mid-rollout;
 * - a replica SIGKILLed in the middle of the schema migration's transaction, and while importing a large fleet.
 * Afterwards: every acknowledged write is there, every queued one ran, the event log keeps its invariants and
 * starts no attempt twice, and every rollout created completed. Replicas are supervised as the docs' systemd
 * unit does (started again a second after any exit). Connections are told apart by their application_name
 * (`phasewise PID PURPOSE`, src/store/postgres/connect.ts).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import type { EngineEvent } from '../src/model/events.js';
import { connect } from '../src/store/postgres/connect.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { sleep } from './helpers/poll.js';
import { assertLogHolds, createDatabase, usePgServer } from './helpers/pg-databases.js';

const LEASE_MS = Number(process.env.PHASEWISE_FAILOVER_LEASE_MS ?? 3000);
const TOKEN = 'replica-faults-token-0123456789abcdef';
const SUB = 'prod';
const CLI = join(process.cwd(), 'dist/src/cli/main.js');
const pgs = usePgServer('faults');
const all: Replica[] = [];
after(() => {
  for (const r of all) {
    r.supervised = false;
    r.proc?.kill('SIGKILL');
  }
});

interface Replica {
  index: number;
  port: number;
  dir: string;
  url: string;
  scenario: string;
  proc: ChildProcess | null;
  exits: Array<number | null>;
  log: string[];
  /** Started again a second after any exit, as systemd's Restart=always does. */
  supervised: boolean;
  /** Milliseconds its wall clock runs behind the machine's (test/fixtures/clock-skew.mjs). */
  skewMs?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The small example with its release 6 simulated hours in (3 s at 7200×): replicas settle before it. */
function smallLater(dir: string): string {
  const file = join(dir, 'small-later.yaml');
  writeFileSync(file, readFileSync(join(process.cwd(), 'examples/small.yaml'), 'utf8').replace('{ at: PT1H, publish:', '{ at: PT6H, publish:'));
  return file;
}

async function replicasOn(url: string, name: string, count: number, scenario: string): Promise<Replica[]> {
  const out: Replica[] = [];
  for (let i = 0; i < count; i++) {
    const dir = join(pgs.tempDir(), `${name}-${i}`);
    out.push({ index: i, port: await freePort(), dir, url, scenario, proc: null, exits: [], log: [], supervised: true });
  }
  all.push(...out);
  return out;
}

function start(r: Replica): void {
  mkdirSync(r.dir, { recursive: true });
  const config = join(r.dir, 'config.json');
  writeFileSync(config, JSON.stringify({ tls: { cert: join(process.cwd(), 'test/fixtures/tls/cert.pem'), key: join(process.cwd(), 'test/fixtures/tls/key.pem') } }));
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', config, '--scenario', r.scenario, '--data-dir', r.dir, '--port', String(r.port), '--clock-factor', '7200'], {
    env: {
      ...process.env, ...(r.skewMs ? { PHASEWISE_TEST_CLOCK_SKEW_MS: String(r.skewMs), NODE_OPTIONS: `--import=${join(process.cwd(), 'test/fixtures/clock-skew.mjs')}` } : {}),
      PHASEWISE_STORE: r.url, PHASEWISE_TOKEN: TOKEN, PHASEWISE_SECRET_KEY: 'c0'.repeat(32), PHASEWISE_LEASE_MS: String(LEASE_MS), PHASEWISE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  r.proc = proc;
  let buffered = '';
  proc.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString();
    let i;
    while ((i = buffered.indexOf('\n')) >= 0) {
      r.log.push(buffered.slice(0, i));
      if (process.env.PHASEWISE_TEST_VERBOSE) process.stderr.write(`[${r.dir.slice(-12)}] ${buffered.slice(0, i)}\n`);
      buffered = buffered.slice(i + 1);
    }
  });
  proc.on('exit', (code) => {
    r.exits.push(code);
    if (r.proc === proc) r.proc = null;
    if (r.supervised) setTimeout(() => r.supervised && !r.proc && start(r), 1000).unref();
  });
}

async function call(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> | null }> {
  try {
    const res = await fetch(`https://127.0.0.1:${port}${path}`, {
      method, signal: AbortSignal.timeout(30_000),
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : null };
  } catch {
    return { status: 0, json: null };
  }
}

async function leaderOf(among: Replica[], notPid?: number): Promise<Replica | null> {
  for (const r of among) {
    if (!r.proc || r.proc.pid === notPid) continue;
    const h = await call(r.port, 'GET', '/healthz');
    if (h.status === 200 && h.json?.leader === true && h.json.ready === true) return r;
  }
  return null;
}

/**
 * A replica leading and ready; with `notPid`, another process than that one (a replica that stepped down and
 * was started again by its supervisor may win the lease back: that is a failover too).
 */
async function waitLeader(among: Replica[], ms: number, notPid?: number): Promise<Replica> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const l = await leaderOf(among, notPid);
    if (l) return l;
    await sleep(200);
  }
  throw new Error(`no leader within ${ms} ms`);
}

async function exitedWith(r: Replica, from: number, code: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (r.exits.length <= from) {
    assert.ok(Date.now() < until, `replica ${r.dir} exits within ${ms} ms (log: ${r.log.slice(-5).join(' | ')})`);
    await sleep(100);
  }
  assert.equal(r.exits[from], code, `replica ${r.dir} exited with ${code} (log: ${r.log.slice(-5).join(' | ')})`);
}

/** Ends the backends of process `pid`'s connections (`purpose`: only that one); how many. */
async function terminate(url: string, pid: number, purpose?: string): Promise<number> {
  const admin = await connect(pgs.server().url);
  try {
    const name = `phasewise ${pid}`;
    const db = new URL(url).pathname.slice(1);
    const { rows } = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND ${purpose ? 'application_name = $2' : "(application_name = $2 OR application_name LIKE $2 || ' %')"}`,
      [db, purpose ? `${name} ${purpose}` : name],
    );
    for (const r of rows) await admin.query('SELECT pg_terminate_backend($1)', [r.pid]);
    return rows.length;
  } finally {
    await admin.end();
  }
}

/** After a test, passed or failed: no replica of its group is started again, and those running are killed. */
function endGroup(group: Replica[]): void {
  for (const r of group) {
    r.supervised = false;
    r.proc?.kill('SIGKILL');
  }
}

/** Resource groups PUT to the replicas in turn until stopped: the ones acknowledged. */
function writer(group: Replica[]): { stop(): Promise<Map<string, number>>; statuses: Map<string, number> } {
  const acked = new Map<string, number>();
  const statuses = new Map<string, number>();
  let writing = true;
  const done = (async () => {
    for (let i = 0; writing; i++) {
      const r = group[i % group.length]!;
      const rg = `rg-${i}`;
      const put = await call(r.port, 'PUT', `/subscriptions/${SUB}/resourcegroups/${rg}?api-version=2021-04-01`, { location: 'eastus', tags: { n: String(i) } });
      if ([200, 201, 202].includes(put.status)) acked.set(rg, i);
      const key = `${put.status} ${(put.json?.error as { code?: string } | undefined)?.code ?? ''}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      await sleep(50);
    }
  })();
  return {
    statuses,
    stop: async () => {
      writing = false;
      await done;
      return acked;
    },
  };
}

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const c = await connect(url);
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

/**
 * The end state: every queued write ran, every rollout created completed (waited for), each acknowledged
 * write is there through a replica, the log keeps its invariants.
 */
async function settles(url: string, group: Replica[], acked: Map<string, number>, ms: number): Promise<{ starts: number; events: number }> {
  const until = Date.now() + ms;
  for (;;) {
    const [open] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM commands WHERE done_at IS NULL');
    const rollouts = await query<{ type: string; n: number }>(url, "SELECT type, count(*)::int AS n FROM events WHERE type IN ('rollout.created', 'rollout.completed') GROUP BY type");
    const n = (t: string) => rollouts.find((r) => r.type === t)?.n ?? 0;
    if (open!.n === 0 && n('rollout.created') > 0 && n('rollout.completed') === n('rollout.created')) break;
    assert.ok(Date.now() < until, `the rollout completes and the queued writes run within ${ms} ms: ${open!.n} open, ${JSON.stringify(rollouts)}`);
    await sleep(500);
  }
  const leader = await waitLeader(group, 60_000);
  for (const [rg, i] of acked) {
    const got = await call(leader.port, 'GET', `/subscriptions/${SUB}/resourcegroups/${rg}?api-version=2021-04-01`);
    assert.equal(got.status, 200, `${rg} (acknowledged) is there: ${JSON.stringify(got.json)}`);
    assert.deepEqual((got.json as { tags: Record<string, string> }).tags, { n: String(i) });
  }
  const store = await PgStore.open(url);
  try {
    const state = store.load()!;
    const events: EngineEvent[] = [];
    for await (const e of store.events()) events.push(e);
    const starts = assertLogHolds(events, state.fleet.regions.values());
    return { starts: starts.size, events: events.length };
  } finally {
    await store.end();
  }
}

/** Waits until the rollout has started upgrading (an attempt is in the log). */
async function upgrading(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while ((await query<{ n: number }>(url, "SELECT count(*)::int AS n FROM events WHERE type = 'instance.upgrade.started'"))[0]!.n === 0) {
    assert.ok(Date.now() < until, `an upgrade started within ${ms} ms`);
    await sleep(200);
  }
}

test('replicas: the leader\'s lease connection ended (pg_terminate_backend), then every connection of the next leader, mid-rollout: '
  + 'each steps down, another leads, nothing acknowledged is lost, nothing runs twice, the rollout completes', { timeout: 420_000 }, async (t) => {
  const url = await createDatabase(pgs.server().url, 'terminated');
  const group = await replicasOn(url, 'term', 3, smallLater(pgs.tempDir()));
  t.after(() => endGroup(group));
  for (const r of group) start(r);
  const first = await waitLeader(group, 120_000);
  const w = writer(group);
  t.after(() => w.stop()); // a failed test must not leave it writing for ever (the file would never end)
  await upgrading(url, 120_000);

  const from1 = first.exits.length;
  const firstPid = first.proc!.pid!;
  assert.equal(await terminate(url, firstPid, 'lease'), 1, 'the leader has one lease connection');
  await exitedWith(first, from1, 7, 4 * LEASE_MS + 30_000);
  assert.match(first.log.join('\n'), /steps down: the lease could not be renewed/);
  const second = await waitLeader(group, LEASE_MS + 120_000, firstPid);

  const from2 = second.exits.length;
  const secondPid = second.proc!.pid!;
  assert.ok(await terminate(url, secondPid) >= 4, 'every connection of the leader');
  await exitedWith(second, from2, 7, 4 * LEASE_MS + 30_000);
  await waitLeader(group, LEASE_MS + 120_000, secondPid);
  await sleep(2000);
  const acked = await w.stop();
  assert.ok(acked.size > 10, `${acked.size} writes acknowledged: ${JSON.stringify([...w.statuses])}`);
  const end = await settles(url, group, acked, 180_000);
  t.diagnostic(`${acked.size} writes acknowledged; ${end.starts} upgrades started; ${end.events} events`);
  for (const r of group) r.supervised = false;
  for (const r of group) r.proc?.kill('SIGTERM');
});

/** Retries `check` (true: done) until it holds or `ms` passed; the last answer for the message. */
async function eventually(what: string, ms: number, check: () => Promise<true | string>): Promise<void> {
  const until = Date.now() + ms;
  let last: true | string = 'not tried';
  while (Date.now() < until) {
    last = await check();
    if (last === true) return;
    await sleep(500);
  }
  assert.fail(`${what} within ${ms} ms: ${last}`);
}

test('replicas: a follower\'s own connections ended one at a time (writes, read snapshot, event log; as idle_session_timeout or a proxy would): '
  + 'it is not ready meanwhile and comes back with new ones, its reads never stale for good, its writes taken again', { timeout: 420_000 }, async (t) => {
  const url = await createDatabase(pgs.server().url, 'single');
  const group = await replicasOn(url, 'single', 2, smallLater(pgs.tempDir()));
  t.after(() => endGroup(group));
  for (const r of group) start(r);
  const leader = await waitLeader(group, 120_000);
  const follower = group.find((r) => r !== leader)!;
  await eventually('the follower serves', 120_000, async () => ((await call(follower.port, 'GET', '/readyz')).status === 200 ? true : 'not ready'));
  const rg = (name: string) => `/subscriptions/${SUB}/resourcegroups/${name}?api-version=2021-04-01`;
  for (const purpose of ['snapshot', 'main', 'events']) {
    assert.equal(await terminate(url, follower.proc!.pid!, purpose), 1, `the follower has one ${purpose} connection`);
    // Written through the leader after the follower lost its connection: the follower must come to show it. Whichever
    // replica leads, retried (an idempotent PUT): under load one answer can take past the client's 30 s (status 0).
    await eventually(`a write through the leader after the follower's ${purpose} connection ended`, 120_000, async () => {
      const now = await waitLeader(group, 60_000);
      const put = await call(now.port, 'PUT', rg(`rg-${purpose}`), { location: 'eastus', tags: { after: purpose } });
      return [200, 201].includes(put.status) ? true : `${put.status} ${JSON.stringify(put.json)}`;
    });
    await eventually(`after its ${purpose} connection ended, the follower shows a write made through the leader`, 90_000, async () => {
      const got = await call(follower.port, 'GET', rg(`rg-${purpose}`));
      return got.status === 200 ? true : `${got.status} ${JSON.stringify(got.json)}`;
    });
    await eventually(`after its ${purpose} connection ended, the follower takes writes`, 90_000, async () => {
      const got = await call(follower.port, 'PUT', rg(`rg-through-${purpose}`), { location: 'eastus' });
      return [200, 201, 202].includes(got.status) ? true : `${got.status} ${JSON.stringify(got.json)}`;
    });
    await eventually(`after its ${purpose} connection ended, the follower reads the event log`, 90_000, async () => {
      const got = await call(follower.port, 'GET', '/phasewise/events?after=0&limit=5');
      return got.status === 200 ? true : `${got.status} ${JSON.stringify(got.json)}`;
    });
    await eventually('ready again', 90_000, async () => ((await call(follower.port, 'GET', '/readyz')).status === 200 ? true : 'not ready'));
  }
  t.diagnostic(`follower exits: ${follower.exits.join(', ') || 'none'}`);
  for (const r of group) r.supervised = false;
  for (const r of group) r.proc?.kill('SIGTERM');
});

test('replicas: PostgreSQL stopped and started again mid-rollout under three replicas: those answering say not ready (/healthz 200, /readyz 503), '
  + 'then one leads, nothing acknowledged is lost, nothing runs twice, the rollout completes', { timeout: 420_000 }, async (t) => {
  const url = await createDatabase(pgs.server().url, 'restarted');
  const group = await replicasOn(url, 'restart', 3, smallLater(pgs.tempDir()));
  t.after(() => endGroup(group));
  for (const r of group) start(r);
  await waitLeader(group, 120_000);
  for (const r of group) await eventually(`replica ${r.index} serves`, 120_000, async () => ((await call(r.port, 'GET', '/healthz')).status === 200 ? true : 'no answer'));
  const w = writer(group);
  t.after(() => w.stop()); // a failed test must not leave it writing for ever (the file would never end)
  await upgrading(url, 120_000);
  const down = Date.now();
  const back = pgs.server().restart(4 * LEASE_MS);
  await sleep(Math.max(0, down + LEASE_MS + 1_000 - Date.now()));
  const seen: string[] = [];
  for (const r of group) {
    const h = await call(r.port, 'GET', '/healthz');
    if (h.status === 0) continue; // stepped down and not started again yet (it cannot reach PostgreSQL: exit 8)
    assert.equal(h.status, 200, `replica ${r.index} is alive: ${JSON.stringify(h.json)}`);
    assert.equal(h.json?.ready, false, `replica ${r.index} is not ready while PostgreSQL is away: ${JSON.stringify(h.json)}`);
    assert.equal((await call(r.port, 'GET', '/readyz')).status, 503);
    seen.push(`${r.index}: ${String(h.json?.reason)}`);
  }
  assert.ok(seen.length > 0, 'a replica answered its health checks during the outage');
  await back;
  await waitLeader(group, 180_000);
  await sleep(2000);
  const acked = await w.stop();
  assert.ok(acked.size > 10, `${acked.size} writes acknowledged: ${JSON.stringify([...w.statuses])}`);
  const end = await settles(url, group, acked, 240_000);
  t.diagnostic(`during the outage: ${seen.join('; ')}; ${acked.size} writes acknowledged; ${end.starts} upgrades started`);
  for (const r of group) r.supervised = false;
  for (const r of group) r.proc?.kill('SIGTERM');
});

/**
 * Waits until a backend of process `pid` (its `purpose` connection, if given) runs a statement matching `pattern` (and, with
 * `waiting`, waits on a lock). Asked every 50 ms: an import's statements on a quiet machine last a fraction of a second.
 */
async function running(url: string, pid: number, pattern: string, ms: number, opts: { waiting?: boolean; purpose?: string } = {}): Promise<void> {
  const db = new URL(url).pathname.slice(1);
  const name = opts.purpose ? `application_name = 'phasewise ${pid} ${opts.purpose}'` : `(application_name = 'phasewise ${pid}' OR application_name LIKE 'phasewise ${pid} %')`;
  const admin = await connect(pgs.server().url);
  try {
    const until = Date.now() + ms;
    for (;;) {
      const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = '${db}' AND state = 'active' AND ${name}
        AND query ~ '${pattern}' ${opts.waiting ? "AND wait_event_type = 'Lock'" : ''}`);
      if (rows[0]!.n > 0) return;
      assert.ok(Date.now() < until, `process ${pid} runs ${pattern} within ${ms} ms`);
      await sleep(50);
    }
  } finally {
    await admin.end();
  }
}

test('replicas: one SIGKILLed inside the schema migration\'s transaction, another while importing a 60,000-machine fleet: nothing half-done is left, '
  + 'replicas started again migrate, import the whole fleet once, and lead', { timeout: 600_000 }, async (t) => {
  const url = await createDatabase(pgs.server().url, 'killed');
  const dir = pgs.tempDir();
  const large = join(dir, 'large.yaml');
  const MACHINES = 60_000;
  const jump = '{ name: jump, region: westus, subscription: prod, count:';
  writeFileSync(large, readFileSync(smallLater(dir), 'utf8').replace(`${jump} 2,`, `${jump} ${MACHINES},`));
  const group = await replicasOn(url, 'killed', 2, large);
  t.after(() => endGroup(group));
  const [a, b] = group as [Replica, Replica];
  a.supervised = false;

  // The migration's last statement (the version's update) waits on a row this test holds: the replica is then inside its transaction.
  const holder = await connect(url);
  await holder.query('CREATE TABLE phasewise_schema (version INTEGER NOT NULL); INSERT INTO phasewise_schema VALUES (0)');
  await holder.query('BEGIN');
  await holder.query('SELECT * FROM phasewise_schema FOR UPDATE');
  start(a);
  await running(url, a.proc!.pid!, '^UPDATE phasewise_schema', 120_000, { waiting: true });
  a.proc!.kill('SIGKILL');
  await holder.query('ROLLBACK');
  const [left] = await query<{ version: number; leases: string | null }>(url, "SELECT (SELECT version FROM phasewise_schema) AS version, to_regclass('leases')::text AS leases");
  assert.deepEqual(left, { version: 0, leases: null }, 'the migration killed halfway left nothing of itself');
  await holder.end();

  // Started again it migrates, takes the lease and imports the large fleet: killed during the import, nothing is imported.
  const from = a.exits.length;
  start(a);
  await running(url, a.proc!.pid!, '^(COPY |ALTER TABLE|INSERT INTO)', 300_000, { purpose: 'store' }); // the import's transaction
  const h = await call(a.port, 'GET', '/readyz');
  assert.equal(h.status, 503, `importing, it is not ready: ${JSON.stringify(h.json)}`);
  a.proc!.kill('SIGKILL');
  while (a.exits.length === from) await sleep(100);
  const [after] = await query<{ machines: number; imported: number }>(url,
    "SELECT (SELECT count(*)::int FROM machines) AS machines, (SELECT count(*)::int FROM meta WHERE key = 'imported') AS imported");
  assert.deepEqual(after, { machines: 0, imported: 0 }, 'the import killed halfway left nothing of itself');

  // Both started again (supervised): one leads with the whole fleet, imported once; a write through the other is kept.
  a.supervised = true;
  start(a);
  start(b);
  const leader = await waitLeader(group, 300_000);
  const follower = group.find((r) => r !== leader)!;
  const [machines] = await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM machines');
  assert.equal(machines!.n, MACHINES + 19, 'the whole fleet, once');
  const rg = `/subscriptions/${SUB}/resourcegroups/rg-after-kills?api-version=2021-04-01`;
  await eventually('a write through the follower is acknowledged', 120_000, async () => {
    const put = await call(follower.port, 'PUT', rg, { location: 'eastus' });
    return [200, 201, 202].includes(put.status) ? true : `${put.status} ${JSON.stringify(put.json)}`;
  });
  await eventually('the write is there', 60_000, async () => ((await call(leader.port, 'GET', rg)).status === 200 ? true : 'not yet'));
  for (const r of group) r.supervised = false;
  for (const r of group) r.proc?.kill('SIGTERM');
});

test('replicas: a replica whose clock runs 10 s behind takes over from one whose clock is right: simulated time never goes back in the log, the rollout completes',
  { timeout: 420_000 }, async (t) => {
  const url = await createDatabase(pgs.server().url, 'skewed');
  const group = await replicasOn(url, 'skew', 2, smallLater(pgs.tempDir()));
  t.after(() => endGroup(group));
  const [right, behind] = group as [Replica, Replica];
  behind.skewMs = 10_000; // 20 simulated hours at 7200×
  right.supervised = false;
  start(right);
  await waitLeader([right], 120_000);
  start(behind);
  await eventually('the replica behind serves', 120_000, async () => ((await call(behind.port, 'GET', '/healthz')).status === 200 ? true : 'no answer'));
  await upgrading(url, 120_000);
  right.proc!.kill('SIGKILL');
  await waitLeader([behind], LEASE_MS + 120_000);
  // An operator's stop and resume: events logged at the new leader's "now".
  for (const path of ['/phasewise/fleet/pause', '/phasewise/fleet/resume']) {
    await eventually(`${path} through the new leader`, 60_000, async () => {
      const got = await call(behind.port, 'POST', path, { reason: 'clock test' });
      return got.status === 200 ? true : `${got.status} ${JSON.stringify(got.json)}`;
    });
  }
  // settles checks the log's invariants: before the fix the replica behind logged events 20 simulated hours before its predecessor's last.
  const end = await settles(url, [behind], new Map(), 240_000);
  t.diagnostic(`${end.starts} upgrades started; ${end.events} events`);
  for (const r of group) r.supervised = false;
  for (const r of group) r.proc?.kill('SIGTERM');
});
