/**
 * /metrics against a real server running the small scenario's rollout: with the engine's loop
 * stopped, every counter equals its count in the event log read through the API; started again, the
 * counters move as the log does. Latency series are by route pattern, never raw URLs. A metrics token,
 * when configured, guards the endpoint; the console's milestone lines say what happened in words.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EngineEvent } from '../src/model/events.js';
import { milestoneText } from '../src/server/milestone-log.js';
import { call, eventually, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { parseMetrics } from './helpers/metrics.js';

function sum(ms: ReturnType<typeof parseMetrics>, name: string, where: Record<string, string> = {}): number {
  return ms.filter((m) => m.name === name && Object.entries(where).every(([k, v]) => m.labels[k] === v)).reduce((n, m) => n + m.value, 0);
}

async function allEvents(s: TestServer): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  let after = 0;
  for (;;) {
    const r = await call(s.url, 'GET', `/phasewise/events?after=${after}&limit=1000`);
    assert.equal(r.status, 200);
    out.push(...(r.body.value as EngineEvent[]));
    if (!r.body.nextLink) return out;
    after = r.body.lastSeq;
  }
}

const count = (events: EngineEvent[], type: string) => events.filter((e) => e.type === type).length;

describe('/metrics during a real rollout', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer({ scenario: 'examples/small.yaml', subscriptions: [] }); });
  after(async () => s?.stop());

  test('counters equal the event log while the engine stands still, and move with it', async () => {
    await eventually(async () => (await allEvents(s)).some((e) => e.type === 'instance.upgrade.succeeded'), 60_000, 'a first upgrade');
    await call(s.url, 'GET', '/phasewise/rollouts/ro-1');
    s.runtime.stop();
    const res = await fetch(`${s.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const ms = parseMetrics(await res.text());
    const events = await allEvents(s);
    assert.equal(sum(ms, 'phasewise_batches_started_total'), count(events, 'batch.started'));
    assert.equal(sum(ms, 'phasewise_batches_completed_total'), count(events, 'batch.completed'));
    assert.equal(sum(ms, 'phasewise_attempts_total', { outcome: 'started' }), count(events, 'instance.upgrade.started'));
    assert.equal(sum(ms, 'phasewise_attempts_total', { outcome: 'succeeded' }), count(events, 'instance.upgrade.succeeded'));
    assert.equal(sum(ms, 'phasewise_rollouts_created_total'), count(events, 'rollout.created'));
    assert.equal(sum(ms, 'phasewise_gate_breaches_total'), count(events, 'gate.breached'));
    assert.equal(sum(ms, 'phasewise_window_waits_total'), count(events, 'window.waiting'));
    assert.equal(sum(ms, 'phasewise_events_total'), events.length);
    assert.ok(sum(ms, 'phasewise_batches_started_total') >= 1);
    assert.equal(sum(ms, 'phasewise_rollouts', { state: 'running' }), 1);
    assert.equal(sum(ms, 'phasewise_agents_connected'), 0);
    assert.equal(sum(ms, 'phasewise_machines'), 21);
    assert.ok(sum(ms, 'phasewise_store_commit_duration_seconds_count') > 0);
    assert.ok(sum(ms, 'phasewise_engine_step_duration_seconds_count') > 0);
    // By route pattern and status: the rollout read above is one series for every rollout id.
    const routes = new Set(ms.filter((m) => m.name === 'phasewise_http_request_duration_seconds_count').map((m) => m.labels.route));
    assert.ok(routes.has('/phasewise/rollouts/:id'), [...routes].join(', '));
    assert.ok(![...routes].some((r) => r!.includes('ro-1')), [...routes].join(', '));
    assert.ok(sum(ms, 'phasewise_http_request_duration_seconds_count', { route: '/phasewise/events', status: '200' }) >= 1);

    s.runtime.start();
    const before = sum(ms, 'phasewise_batches_started_total');
    await eventually(async () => (await allEvents(s)).filter((e) => e.type === 'batch.started').length > before, 60_000, 'another batch');
    s.runtime.stop();
    const later = parseMetrics(await (await fetch(`${s.url}/metrics`)).text());
    const events2 = await allEvents(s);
    assert.equal(sum(later, 'phasewise_batches_started_total'), count(events2, 'batch.started'));
    assert.equal(sum(later, 'phasewise_attempts_total', { outcome: 'succeeded' }), count(events2, 'instance.upgrade.succeeded'));
    assert.ok(sum(later, 'phasewise_batches_started_total') > before);
    s.runtime.start();
  });

  test('milestones read as sentences; instance events are not milestones', async () => {
    const events = await allEvents(s);
    const created = events.find((e) => e.type === 'rollout.created')!;
    const text = milestoneText(created, s.runtime.engine);
    assert.ok(text);
    assert.match(text.text, /^rollout ro-1 \(.*Contoso\.Monitoring.*1\.4\.1\.0\) created: standard, \d+ machines, phases /);
    const phase = events.find((e) => e.type === 'phase.started')!;
    assert.match(milestoneText(phase, s.runtime.engine)!.text, /phase 0 started in /);
    assert.equal(milestoneText(events.find((e) => e.type === 'instance.upgrade.started')!, s.runtime.engine), null);
  });
});

describe('/metrics with a metrics token', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer({ metricsToken: 'metrics-token-0123456789' }); });
  after(async () => s?.stop());

  test('401 without the token or with an API token; 200 with it', async () => {
    const none = await fetch(`${s.url}/metrics`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'AuthenticationFailed');
    const api = await call(s.url, 'GET', '/metrics');
    assert.equal(api.status, 401);
    const ok = await fetch(`${s.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /# TYPE phasewise_rollouts gauge/);
  });
});
