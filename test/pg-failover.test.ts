/**
 * Failover with real processes: PostgreSQL (from the npm package) and three replicas, each serving its
 * health endpoints and taking API writes, one leading the engine through a rollout on an accelerated
 * clock. A client streams writes to every replica meanwhile. The leader is SIGKILLed twice at random
 * instants, and separately SIGSTOPped past its lease and resumed. Afterwards every acknowledged write
 * is applied once, no upgrade attempt is duplicated, no key is executed twice, the event log keeps its
 * invariants, the rollout completed, the resumed ex-leader stepped down, and the takeover times (the
 * leader's death to the new leader's first commit) are recorded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import type { EngineEvent } from '../src/model/events.js';
import { Random } from '../src/sim/random.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import type { Replica } from '../src/sim/realtime/replica-host.js';
import { ReplicaHost } from '../src/sim/realtime/replica-host.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { baseScenario } from './helpers/harness.js';
import { sleep, waitFor } from './helpers/poll.js';
import { assertLogHolds } from './helpers/pg-databases.js';

/** Shorter than the default (10 s) to keep the test short; `PHASEWISE_FAILOVER_LEASE_MS` sets it. */
const LEASE_MS = Number(process.env.PHASEWISE_FAILOVER_LEASE_MS ?? 3000);
const RUN_REAL_MS = 30_000 + 4 * LEASE_MS;
const DEADLINE_MS = RUN_REAL_MS + 60_000;
const KEY = 'extension:contoso.agent';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-failover-'));
let server: EmbeddedPostgres | null = null;
let host: ReplicaHost | null = null;
after(async () => {
  await host?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});


function scenario(): Record<string, unknown> {
  return baseScenario({
    seed: 5,
    horizon: 'P5D',
    profiles: { standard: { phaseBake: 'PT30M', retryVm: 'PT5M', retryArc: 'PT2M', gateRecheck: 'PT10M', maxPhaseFailurePercent: 100, groupMaxUnhealthyUpgradedPercent: 100, releaseVerdict: false } },
    failures: { versions: { '1.1.0.0': { installFailure: 0.08, unhealthyAfterUpgrade: 0.05 } } },
    events: [{ at: 'PT10M', publish: { extension: 'agent', version: '1.1.0.0' } }],
  });
}

interface Ack {
  id: number;
  machineId: string;
  seq: number;
}

test('three replicas on PostgreSQL: the leader killed and paused, acknowledged writes kept, nothing done twice', { timeout: DEADLINE_MS + 30_000 }, async (t) => {
  server = await startEmbeddedPostgres();
  const scenarioFile = join(dir, 'scenario.json');
  writeFileSync(scenarioFile, JSON.stringify(scenario()));
  const compiled = compileScenario(scenario(), scenarioFile);
  const runMs = runSimulation(compiled).endMs - compiled.startMs;
  const factor = Math.max(10, Math.round(runMs / RUN_REAL_MS));
  host = new ReplicaHost({ scenarioFile, url: server.url, factor, leaseMs: LEASE_MS });
  const h = host;
  const failed = () => h.problems.length > 0;
  for (let i = 0; i < 3; i++) h.start();
  assert.ok(await waitFor(() => h.leader?.firstCommitAtMs != null || failed(), 30_000), 'a leader commits');
  assert.deepEqual(h.problems, []);

  // Health endpoints: every replica serves; exactly one says it leads.
  await waitFor(() => h.live.every((r) => r.port !== null), 10_000);
  const health = await Promise.all(h.live.map(async (r) => (await fetch(`http://127.0.0.1:${r.port}/healthz`)).json() as Promise<{ serving: boolean; leader: boolean }>));
  assert.deepEqual(health.map((x) => x.serving), [true, true, true]);
  assert.equal(health.filter((x) => x.leader).length, 1);
  const ready = await fetch(`http://127.0.0.1:${h.live[0]!.port}/readyz`);
  assert.equal(ready.status, 200);
  const bad = await fetch(`http://127.0.0.1:${h.live[0]!.port}/commands`, { method: 'POST', body: '{"machineId": 3}' });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'InvalidRequestContent');

  // A client streams writes (settings of random instances) to the replicas in turn.
  const machines = [...compiled.state.fleet.instances.get(KEY)!.keys()];
  const rng = new Random(99);
  const acks: Ack[] = [];
  let writing = true;
  let seq = 0;
  let refused = 0;
  const writer = (async () => {
    let turn = 0;
    while (writing) {
      const targets = h.live.filter((r) => r.port !== null);
      const r = targets[turn++ % Math.max(1, targets.length)];
      if (r) {
        const machineId = machines[rng.int(0, machines.length - 1)]!;
        const mySeq = ++seq;
        try {
          const res = await fetch(`http://127.0.0.1:${r.port}/commands`, {
            method: 'POST', body: JSON.stringify({ machineId, key: KEY, settings: { seq: mySeq } }), signal: AbortSignal.timeout(1000),
          });
          if (res.status === 202) acks.push({ id: ((await res.json()) as { id: number }).id, machineId, seq: mySeq });
          else refused++;
        } catch {
          refused++; // killed or paused replica: not acknowledged
        }
      }
      await sleep(20);
    }
  })();

  // The leader's death to the new leader's first commit.
  const takeovers: Array<{ how: string; ms: number }> = [];
  const waitNewLeader = async (old: Replica) => {
    const ok = await waitFor(() => failed() || (h.leader !== null && h.leader !== old && h.leader.firstCommitAtMs !== null && h.leader.token! > old.token!), LEASE_MS + 20_000);
    assert.ok(ok && !failed(), `a new leader took over: ${h.problems.join('; ')}`);
    return h.leader!;
  };
  const kills = new Random(20261205);
  for (let k = 0; k < 2; k++) {
    await sleep(kills.int(1500, 3500));
    const old = h.leader!;
    const t0 = Date.now();
    await h.kill(old);
    h.start(); // the supervisor starts it again
    const next = await waitNewLeader(old);
    takeovers.push({ how: 'SIGKILL', ms: next.firstCommitAtMs! - t0 });
    t.diagnostic(`SIGKILL ${old.name}: ${next.name} leads (token ${next.token}) after ${next.firstCommitAtMs! - t0} ms`);
  }
  await sleep(kills.int(1500, 3000));
  const paused = h.leader!;
  const t0 = Date.now();
  h.pause(paused);
  const next = await waitNewLeader(paused);
  takeovers.push({ how: 'SIGSTOP', ms: next.firstCommitAtMs! - t0 });
  await sleep(500);
  h.resume(paused);
  assert.ok(await waitFor(() => paused.exit !== null, 10_000), 'the resumed ex-leader stepped down');
  assert.equal(paused.exit!.code, 7);
  h.start();

  await sleep(1000);
  writing = false;
  await writer;
  // The leader applies every queued write, and the rollout completes.
  const c = new pg.Client(server.url);
  await c.connect();
  let open = 1;
  const until = Date.now() + DEADLINE_MS;
  while ((open > 0 || !h.done) && !failed() && Date.now() < until) {
    open = Number((await c.query<{ n: string }>('SELECT count(*) AS n FROM commands WHERE done_at IS NULL')).rows[0]!.n);
    await sleep(100);
  }
  const took = takeovers.map((x) => `${x.how} ${x.ms} ms`).join(', ');
  t.diagnostic(`lease ${LEASE_MS} ms, factor ${factor}; takeovers ${took}; writes acknowledged ${acks.length}, refused ${refused}`);
  t.diagnostic(`keys executed ${h.executed.size}, resent duplicates ${h.duplicates}; sent after resume ${h.afterResume.length}`);
  assert.deepEqual(h.problems, [], 'no replica failed by itself, no key executed twice');
  assert.ok(h.done, 'the rollout finished');
  assert.equal(open, 0, 'every queued write was applied');
  await host.close();

  // Acknowledged writes: each one done; each instance has the settings of the last write applied to it.
  const cmds = (await c.query<{ id: string; body: string; done: boolean; result: string }>('SELECT id, body, done_at IS NOT NULL AS done, result FROM commands ORDER BY id')).rows;
  const byId = new Map(cmds.map((r) => [Number(r.id), r]));
  for (const a of acks) {
    const row = byId.get(a.id);
    assert.ok(row?.done, `acknowledged write ${a.id} applied`);
    // Applied, or refused as the API refuses it (an attempt in flight on the machine): never lost.
    const result = JSON.parse(row.result) as { ok?: true; error?: string };
    assert.ok(result.ok === true || /attempt in flight/.test(result.error ?? ''), `write ${a.id}: ${row.result}`);
  }
  const lastSettings = new Map<string, unknown>();
  let applied = 0;
  for (const r of cmds) {
    const b = JSON.parse(r.body) as { machineId: string; settings: unknown };
    if ((JSON.parse(r.result) as { ok?: true }).ok !== true) continue;
    lastSettings.set(b.machineId, b.settings);
    applied++;
  }
  assert.ok(applied > acks.length / 2, `${applied} of ${acks.length} writes applied`);
  const store = await PgStore.open(server.url);
  const state = store.load()!;
  const events: EngineEvent[] = [];
  for await (const e of store.events()) events.push(e);
  await store.end();
  for (const [machineId, settings] of lastSettings) assert.deepEqual(state.fleet.instances.get(KEY)!.get(machineId)!.settings, settings, `settings of ${machineId}`);
  assert.ok(acks.length > 50, `${acks.length} writes acknowledged`);

  // The log: no gap, invariants, each attempt started once, every rollout completed.
  const starts = assertLogHolds(events, state.fleet.regions.values());
  assert.ok(starts.size > 30);
  const created = events.filter((e) => e.type === 'rollout.created').length;
  assert.ok(created >= 1);
  assert.equal(events.filter((e) => e.type === 'rollout.completed').length, created);

  // Every key the fleet executed (and each one the resumed ex-leader sent) was committed first.
  const keys = new Set((await c.query<{ key: string }>('SELECT key FROM actions')).rows.map((r) => r.key));
  for (const key of h.executed.keys()) assert.ok(keys.has(key), `executed key ${key} committed`);
  for (const a of h.afterResume) assert.ok(keys.has(a.key), `key ${a.key} sent after resume was committed before the pause`);
  await c.end();
  for (const x of takeovers) assert.ok(x.ms <= LEASE_MS + 5000, `takeover after ${x.how} in ${x.ms} ms (lease ${LEASE_MS} ms)`);
});
