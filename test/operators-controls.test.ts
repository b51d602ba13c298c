/**
 * Operators' controls against a real server running the small scenario: pause (its release held, no
 * new batch while paused, the activity log names the caller), resume, the fleet-wide stop, cancel,
 * withdraw with rollback (every machine that had the version goes back, the log's invariants hold,
 * the version is never offered again), resume after R23 stopped a set, and the refusals: unknown or
 * ended rollouts, unknown versions, bad bodies, readers. A refusal changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { call, eventually, READER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const AGENT = '/phasewise/publishers/Contoso.Monitoring/extensionTypes/Agent';
const PAIRS = new Map([['eastus', 'westus'], ['westus', 'eastus']]);

async function events(s: TestServer, after = 0): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  for (;;) {
    const r = await call(s.url, 'GET', `/phasewise/events?after=${after}&limit=1000`);
    assert.equal(r.status, 200);
    out.push(...(r.body.value as EngineEvent[]));
    if (!r.body.nextLink) return out;
    after = r.body.lastSeq;
  }
}

function installed(s: TestServer): Map<string, string> {
  const out = new Map<string, string>();
  for (const byMachine of s.runtime.engine.state.fleet.instances.values()) for (const i of byMachine.values()) out.set(i.machineId, i.installedVersion);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('rollout controls and withdraw', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer({ scenario: 'examples/small.yaml', subscriptions: [] }); });
  after(async () => s?.stop());

  test('refusals: unknown rollout, reader, bad body, unknown version; nothing changes', async () => {
    await eventually(async () => (await events(s)).some((e) => e.type === 'batch.started'), 60_000, 'a first batch');
    s.runtime.stop();
    const before = (await events(s)).length;
    const unknown = await call(s.url, 'POST', '/phasewise/rollouts/ro-99/pause', {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'RolloutNotFound');
    assert.equal((await call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', {}, READER_TOKEN)).status, 403);
    const long = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', { reason: 'x'.repeat(1001) });
    assert.equal(long.status, 400);
    assert.equal(long.body.error.code, 'InvalidParameter');
    assert.equal((await call(s.url, 'POST', '/phasewise/rollouts/ro-1/cancel', { reason: 'a', extra: 1 })).status, 400);
    const version = await call(s.url, 'POST', `${AGENT}/versions/9.9.9.9/withdraw`, { rollback: true });
    assert.equal(version.status, 404);
    assert.equal(version.body.error.code, 'VersionNotFound');
    assert.equal((await call(s.url, 'POST', `${AGENT}/versions/1.4.1.0/withdraw`, { rollback: 'yes' })).status, 400);
    // Resume reads its body as pause does: a property it does not know is refused, never dropped.
    for (const [route, body] of [['rollouts/ro-1/resume', { reasons: 'typo' }], ['rollouts/ro-1/resume', { reason: 'a\nb' }], ['fleet/resume', { reason: 7 }]] as const) {
      const r = await call(s.url, 'POST', `/phasewise/${route}`, body);
      assert.equal(r.status, 400, `${route} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'InvalidParameter');
    }
    const nothing = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/resume');
    assert.equal(nothing.status, 409);
    assert.equal(nothing.body.error.code, 'RolloutNotPaused');
    assert.equal((await events(s)).length, before, 'a refused control wrote no event');
    assert.equal(s.runtime.engine.state.releases.get('extension:contoso.monitoring.agent@1.4.1.0')?.hold ?? null, null);
    s.runtime.start();
  });

  test('pause holds the release: no batch starts until resume; the activity log names the caller', async () => {
    const paused = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', { reason: 'support tickets' });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.deepEqual(paused.body.paused, ['ro-1']);
    const pauseSeq = (await events(s)).find((e) => e.type === 'rollout.paused')!.seq;
    assert.equal((await call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', {})).body.error.code, 'RolloutAlreadyPaused');
    await sleep(1_500); // 50 simulated minutes: batches in flight end, none starts
    const during = await events(s, pauseSeq);
    assert.equal(during.filter((e) => e.type === 'batch.started').length, 0, JSON.stringify(during.map((e) => e.type)));
    const range = `eventTimestamp ge '2000-01-01T00:00:00Z' and eventTimestamp le '2999-01-01T00:00:00Z' and caller eq 'alice@contoso.com'`;
    const log = await call(s.url, 'GET', `/subscriptions/prod/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter=${encodeURIComponent(range)}`);
    assert.equal(log.status, 200, JSON.stringify(log.body));
    const ops = (log.body.value as Array<{ operationName: { value: string }; caller: string }>).map((e) => `${e.operationName.value} ${e.caller}`);
    assert.ok(ops.includes('Phasewise/rollouts/pause/action alice@contoso.com'), ops.join('; '));
    const resumed = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/resume', { reason: 'tickets answered: a proxy setting' });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.deepEqual(resumed.body.resumed, ['release hold lifted']);
    // The reason is kept as a pause's: in the event and in the activity log entry.
    const resumes = (await events(s, pauseSeq)).filter((e) => e.type === 'rollout.resumed' || e.type === 'release.resumed') as Array<{ type: string; reason: string }>;
    assert.deepEqual(resumes.map((e) => e.type).sort(), ['release.resumed', 'rollout.resumed'], JSON.stringify(resumes));
    for (const e of resumes) assert.match(e.reason, /^resumed by alice@contoso\.com: tickets answered: a proxy setting; /, e.type);
    const after = await call(s.url, 'GET', `/subscriptions/prod/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter=${encodeURIComponent(range)}`);
    const entry = (after.body.value as Array<{ operationName: { value: string }; properties: { reason?: string } }>)
      .find((e) => e.operationName.value === 'Phasewise/rollouts/resume/action');
    assert.match(entry?.properties.reason ?? '', /tickets answered: a proxy setting; its release is no longer held/, JSON.stringify(entry));
    await eventually(async () => (await events(s, pauseSeq)).some((e) => e.type === 'batch.started'), 30_000, 'a batch after resume');
  });

  test('the fleet-wide stop pauses every running rollout and resumes them', async () => {
    const stop = await call(s.url, 'POST', '/phasewise/fleet/pause', { reason: 'incident 42' });
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    assert.deepEqual(stop.body.paused, ['ro-1']);
    assert.equal(s.runtime.engine.state.releases.get('extension:contoso.monitoring.agent@1.4.1.0')?.hold?.kind, 'operator');
    const go = await call(s.url, 'POST', '/phasewise/fleet/resume', { reason: 'incident 42 closed' });
    assert.equal(go.status, 200);
    assert.deepEqual(go.body.resumed, ['ro-1']);
    assert.equal(go.body.ended?.reason, 'incident 42', 'the answer names the stop it ended');
    const again = await call(s.url, 'POST', '/phasewise/fleet/resume', {});
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { resumed: [], ended: null }, 'no stop was in effect: the answer says so');
    const last = (await events(s)).filter((e) => e.type === 'rollout.resumed').at(-1) as { reason: string };
    assert.equal(last.reason, 'resumed by alice@contoso.com: incident 42 closed; the fleet-wide stop ended');
    assert.equal(s.runtime.engine.state.releases.get('extension:contoso.monitoring.agent@1.4.1.0')?.hold, null);
  });

  test('fleet pause lists a rollout held by its own pause apart (heldOtherwise), not as paused by the stop; fleet resume leaves it held', async () => {
    const own = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', { reason: 'tickets' });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const stop = await call(s.url, 'POST', '/phasewise/fleet/pause', { reason: 'incident 43' });
    assert.equal(stop.status, 200, JSON.stringify(stop.body));
    assert.deepEqual(stop.body.paused, [], 'the stop holds nothing of its own');
    assert.deepEqual(stop.body.heldOtherwise, [{ id: 'ro-1', kind: 'operator', reason: 'paused by alice@contoso.com: tickets (rollout ro-1)' }]);
    const go = await call(s.url, 'POST', '/phasewise/fleet/resume', {});
    assert.deepEqual(go.body.resumed, [], 'the stop did not hold ro-1: its end does not resume it');
    assert.equal(s.runtime.engine.state.releases.get('extension:contoso.monitoring.agent@1.4.1.0')?.hold?.kind, 'operator');
    assert.equal((await call(s.url, 'POST', '/phasewise/rollouts/ro-1/resume', {})).status, 200);
  });

  test('withdraw with rollback: every machine that had the version goes back, in batches that keep the rules', async () => {
    await eventually(async () => (await events(s)).some((e) => e.type === 'phase.completed'), 60_000, 'the canary phase');
    const had = new Set((await events(s)).filter((e) => e.type === 'instance.upgrade.succeeded').map((e) => (e as { machineId: string }).machineId));
    assert.ok(had.size >= 5, `${had.size} machines upgraded`);
    const w = await call(s.url, 'POST', `${AGENT}/versions/1.4.1.0/withdraw`, { reason: 'bad build', rollback: true });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.deepEqual(w.body.cancelled, ['ro-1']);
    assert.equal(w.body.rollbackRollouts.length, 1);
    const back = w.body.rollbackRollouts[0] as string;
    await eventually(async () => (await call(s.url, 'GET', `/phasewise/rollouts/${back}`)).body.status === 'completed', 60_000, 'the rollback rollout');
    await eventually(async () => [...installed(s).values()].every((v) => v === '1.4.0.0'), 30_000, 'every machine on 1.4.0.0')
      .catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify([...installed(s)])}`));
    for (const id of had) assert.equal(installed(s).get(id), '1.4.0.0', id);
    const log = await events(s);
    const rolled = log.filter((e) => e.type === 'instance.upgrade.succeeded' && e.rolloutId === back).map((e) => (e as { machineId: string }).machineId);
    assert.deepEqual(new Set(rolled), had);
    assert.ok(log.filter((e) => e.type === 'batch.started' && e.rolloutId === back).length >= 3, 'in batches, not all at once');
    const checker = new InvariantChecker({ pairs: PAIRS });
    checker.onEvents(log);
    assert.deepEqual(checker.violations, []);
    const release = await call(s.url, 'GET', '/phasewise/releases/Contoso.Monitoring/Agent/versions/1.4.1.0');
    assert.equal(release.body.hold.kind, 'withdrawn');
  });

  test('a withdrawn version is never offered again; controls on ended rollouts are refused', async () => {
    const engine = s.runtime.engine;
    const t = engine.state.catalog.getType('Contoso.Monitoring', 'Agent')!;
    assert.deepEqual(engine.state.catalog.available(t, 'linux', 'eastus', Number.MAX_SAFE_INTEGER).map((v) => v.version), ['1.4.0.0']);
    const again = await call(s.url, 'POST', `${AGENT}/versions/1.4.1.0/withdraw`, {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'VersionAlreadyWithdrawn');
    const ended = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/resume');
    assert.equal(ended.status, 409);
    assert.equal(ended.body.error.code, 'RolloutEnded');
    assert.equal((await call(s.url, 'POST', '/phasewise/rollouts/ro-1/cancel', {})).body.error.code, 'RolloutEnded');
    const rel = await call(s.url, 'POST', '/phasewise/releases/Contoso.Monitoring/Agent/versions/1.4.1.0/resume');
    assert.equal(rel.status, 409);
    // A newer version rolls out as usual and the rollback's machines take it.
    const pub = await call(s.url, 'PUT', `${AGENT}/versions/1.4.2.0`, { os: ['linux', 'windows'] });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    assert.ok(pub.body.rolloutId);
    const cancel = await call(s.url, 'POST', `/phasewise/rollouts/${pub.body.rolloutId}/cancel`, { reason: 'not today' });
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.equal(cancel.body.status, 'cancelled');
  });
});

describe('resume after R23 stopped a set', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ scenario: 'examples/small.yaml', subscriptions: [], simulatedFailures: { '1.4.1.0': { unhealthyAfterUpgrade: 1 } } });
  });
  after(async () => s?.stop());

  test('the set runs again at once instead of after the retry interval', async () => {
    const breach = await eventually(async () => (await events(s)).find((e) => e.type === 'gate.breached'), 60_000, 'an R23 breach');
    assert.equal((breach as { gate: string }).gate, 'maxUnhealthyUpgradedInstancePercent');
    await sleep(500);
    const r = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/resume');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok((r.body.resumed as string[]).some((x) => x.startsWith('sets resumed') || x.startsWith('stopped rollout')), JSON.stringify(r.body));
    // The retry interval of a scale set is 3 days (130 s here): a batch within seconds is the resume's.
    await eventually(async () => (await events(s, breach.seq)).some((e) => e.type === 'batch.started'), 15_000, 'a batch after resume');
  });
});
