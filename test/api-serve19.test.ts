/**
 * `serve` from outside, session 19: the event log read with a cursor past its end, image replications
 * (any location, bounded per version), and what attacking the API from outside found. Each bad request
 * is checked to change nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, PUBLISHER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const RGS = `/subscriptions/${SUB}/resourcegroups`;
const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';

describe('serve from outside: session 19', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `${RGS}/rg1?${AV}`, { location: 'westus' })).status, 201);
    assert.equal((await call(s.url, 'PUT', `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}`, { location: 'westus' })).status, 201);
    // An extension installed on it writes events (a rollout).
    const TYPES = '/phasewise/publishers/Contoso/extensionTypes';
    assert.equal((await call(s.url, 'PUT', `${TYPES}/Agent`, { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${TYPES}/Agent/versions/1.0.0.0`, { os: ['linux'] }, PUBLISHER_TOKEN)).status, 201);
    const ext = { location: 'westus', properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' } };
    const put = await call(s.url, 'PUT', `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines/vm1/extensions/agent?${AV}`, ext);
    assert.ok([200, 201].includes(put.status), JSON.stringify(put.body));
  });
  after(async () => s?.stop());

  test('events: a cursor past the log\'s end answers the log\'s real lastSeq, smaller than the cursor (it answered the cursor back)', async () => {
    const all = await call(s.url, 'GET', '/phasewise/events?after=0&limit=1000');
    assert.equal(all.status, 200);
    const end = all.body.lastSeq as number;
    assert.ok(end > 0, 'creating a VM wrote events');
    const past = await call(s.url, 'GET', `/phasewise/events?after=${end + 1_000_000}`);
    assert.equal(past.status, 200);
    assert.deepEqual(past.body.value, []);
    assert.ok(past.body.lastSeq >= end && past.body.lastSeq < end + 1_000_000, `lastSeq ${past.body.lastSeq}: the log's end, below the cursor`);
    assert.equal(past.body.nextLink, undefined);
    // At the end exactly, and within the log with a filter that matches nothing, the cursor is answered back.
    // (The server's rollout may write events between two reads: then they follow the cursor, as they should.)
    const atEnd = await call(s.url, 'GET', `/phasewise/events?after=${past.body.lastSeq}`);
    if (atEnd.body.value.length === 0) assert.equal(atEnd.body.lastSeq, past.body.lastSeq);
    else assert.equal(atEnd.body.value[0].seq, past.body.lastSeq + 1);
    const none = await call(s.url, 'GET', '/phasewise/events?after=1&rolloutId=ro-none');
    assert.deepEqual(none.body, { value: [], lastSeq: 1 });
  });

  test('image replications: any location name, stored canonically; at most 200 regions per version, the 201st refused and not stored', async () => {
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
    // A region the fleet does not have yet (a new region's first scale set needs its image there first).
    const r = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/${encodeURIComponent('East US 2')}`, {}, PUBLISHER_TOKEN);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.region, 'eastus2');
    for (let i = 1; i < 200; i++) {
      const ok = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/region${i}`, {}, PUBLISHER_TOKEN);
      assert.equal(ok.status, 201, `region${i}: ${JSON.stringify(ok.body)}`);
    }
    const read = async () => (await call(s.url, 'GET', `${UBUNTU}/24.04.202601010`, undefined, PUBLISHER_TOKEN)).body;
    const before = await read();
    assert.equal(before.replications.length, 200);
    const over = await call(s.url, 'PUT', `${UBUNTU}/24.04.202601010/replications/onemore`, {}, PUBLISHER_TOKEN);
    assert.equal(over.status, 400, JSON.stringify(over.body));
    assert.equal(over.body.error.code, 'InvalidParameter');
    assert.equal(over.body.error.target, 'region');
    assert.match(over.body.error.message, /200/);
    assert.deepEqual(await read(), before, 'nothing was added');
  });

  test('an unpaired UTF-16 surrogate in a body is 400 InvalidRequestContent (it was stored as sent and reached agents as U+FFFD); a pair is taken', async () => {
    const VM = `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines`;
    const bodies = [
      '{"location":"westus","tags":{"a":"\\ud800"}}', // high alone
      '{"location":"westus","tags":{"a":"x\\udc00"}}', // low alone
      '{"location":"westus","tags":{"\\uD83D":"b"}}', // in a name, upper-case escape
      '{"location":"westus","tags":{"a":"\\ude00\\ud83d"}}', // a pair the wrong way round
    ];
    for (const body of bodies) {
      const r = await call(s.url, 'PUT', `${VM}/sur1?${AV}`, body);
      assert.equal(r.status, 400, `${body}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'InvalidRequestContent');
      assert.match(r.body.error.message, /unpaired UTF-16 surrogate/);
    }
    assert.equal((await call(s.url, 'GET', `${VM}/sur1?${AV}`)).status, 404, 'nothing was created');
    const ok = await call(s.url, 'PUT', `${VM}/sur2?${AV}`, '{"location":"westus","tags":{"smile":"\\ud83d\\ude00"}}');
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.tags.smile, '\u{1F600}');
  });

  test('HEAD of a resource group (checkExistence, `az group exists`) is 204 when it exists and 404 when not (it was 200)', async () => {
    const head = async (rg: string) => (await fetch(`${s.url}${RGS}/${rg}?api-version=2021-04-01`, { method: 'HEAD', headers: { authorization: `Bearer ${TEST_TOKEN}` } })).status;
    assert.equal(await head('rg1'), 204);
    assert.equal(await head('RG1'), 204);
    assert.equal(await head('nosuch'), 404);
    assert.equal((await call(s.url, 'GET', `${RGS}/rg1?${AV}`)).status, 200, 'a GET still answers the group');
  });

  test('a delete done before its answer: its operation ends when it started, not when it is first polled (endTime was the first poll\'s instant)', async () => {
    const VM = `${RGS}/rg1/providers/Microsoft.Compute/virtualMachines`;
    assert.equal((await call(s.url, 'PUT', `${VM}/gone1?${AV}`, { location: 'westus' })).status, 201);
    const del = await call(s.url, 'DELETE', `${VM}/gone1?${AV}`);
    assert.equal(del.status, 200);
    await new Promise((r) => setTimeout(r, 300)); // the server's clock runs 2,000 times faster: minutes pass
    const status = del.headers.get('azure-asyncoperation')!;
    const op = await call(s.url, 'GET', status.slice(status.indexOf('/subscriptions/')));
    assert.equal(op.status, 200);
    assert.equal(op.body.status, 'Succeeded');
    assert.equal(op.body.endTime, op.body.startTime);
  });
});

describe('a scenario\'s resource groups', () => {
  let s: TestServer;
  // Real time: the scenario's own events (days in) do not happen during the test.
  before(async () => { s = await startTestServer({ scenario: 'examples/demo.yaml', clockFactor: 1, subscriptions: [] }); });
  after(async () => s?.stop());

  test('are listed as they are read: each group of the fleet\'s machines is in its subscription\'s list once (the list was empty)', async () => {
    const fleet = new Map<string, Set<string>>();
    for (const m of s.runtime.engine.state.fleet.machines.values()) {
      const groups = fleet.get(m.placement.subscription) ?? new Set<string>();
      groups.add(m.resourceGroup);
      fleet.set(m.placement.subscription, groups);
    }
    assert.ok(fleet.size > 0);
    for (const [sub, groups] of fleet) {
      const list = await call(s.url, 'GET', `/subscriptions/${sub}/resourcegroups?api-version=2021-04-01`);
      assert.equal(list.status, 200);
      assert.equal(list.body.nextLink, undefined);
      assert.deepEqual(list.body.value.map((g: { name: string }) => g.name).sort(), [...groups].sort(), sub);
      for (const g of groups) assert.equal((await call(s.url, 'GET', `/subscriptions/${sub}/resourcegroups/${g}?api-version=2021-04-01`)).status, 200);
    }
    // A group created through the API joins its subscription's list once, whatever casing it is sent in.
    const [sub, groups] = [...fleet][0]!;
    const first = [...groups][0]!;
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${sub}/resourcegroups/${first.toUpperCase()}?api-version=2021-04-01`, { location: 'westus' })).status, 200);
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${sub}/resourcegroups/rg-new?api-version=2021-04-01`, { location: 'westus' })).status, 201);
    const list = await call(s.url, 'GET', `/subscriptions/${sub}/resourcegroups?api-version=2021-04-01`);
    assert.deepEqual(list.body.value.map((g: { name: string }) => g.name.toLowerCase()).sort(), [...groups, 'rg-new'].map((g) => g.toLowerCase()).sort());
  });
});
