/**
 * `serve` from outside, session 22: tags as ARM takes them (reserved characters, lengths, count, names that
 * differ only by case) on every resource type that has tags, `"tags": null` in a PATCH (merge patch: no tags),
 * and the scale set's instance list's `$filter`, `$select` and `$top`. Each refused request changes nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ComputeManagementClient } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/core-auth';
import fc from 'fast-check';
import { parseBody, tags as tagsSchema } from '../src/api/arm/validation.js';
import { instanceListQuery } from '../src/api/arm/routes/scale-sets/instance-list-query.js';
import { call, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const RG = `/subscriptions/${SUB}/resourcegroups/rg22`;
const COMPUTE = `${RG}/providers/Microsoft.Compute`;
const VM = `${COMPUTE}/virtualMachines`;
const AVSET = `${COMPUTE}/availabilitySets`;
const VMSS = `${COMPUTE}/virtualMachineScaleSets`;
const ARC = `${RG}/providers/Microsoft.HybridCompute/machines`;
const CFG = `${RG}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
const AMA = { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' };

/** Every write that takes tags: its method, path and a body without them. */
const WRITES: Array<{ name: string; method: 'PUT' | 'PATCH'; path: string; body: Record<string, unknown> }> = [
  { name: 'resource group PUT', method: 'PUT', path: RG, body: { location: 'westus' } },
  { name: 'VM PUT', method: 'PUT', path: `${VM}/vm1`, body: { location: 'westus' } },
  { name: 'VM PATCH', method: 'PATCH', path: `${VM}/vm1`, body: {} },
  { name: 'availability set PUT', method: 'PUT', path: `${AVSET}/as1`, body: { location: 'westus' } },
  { name: 'availability set PATCH', method: 'PATCH', path: `${AVSET}/as1`, body: {} },
  { name: 'scale set PUT', method: 'PUT', path: `${VMSS}/ss1`, body: { location: 'westus', sku: { capacity: 1 }, properties: { upgradePolicy: { mode: 'Manual' } } } },
  { name: 'scale set PATCH', method: 'PATCH', path: `${VMSS}/ss1`, body: {} },
  { name: 'scale-set instance PUT', method: 'PUT', path: `${VMSS}/ss1/virtualMachines/0`, body: { location: 'westus' } },
  { name: 'VM extension PUT', method: 'PUT', path: `${VM}/vm1/extensions/ama`, body: { location: 'westus', properties: AMA } },
  { name: 'VM extension PATCH', method: 'PATCH', path: `${VM}/vm1/extensions/ama`, body: {} },
  { name: 'Arc machine PUT', method: 'PUT', path: `${ARC}/arc1`, body: { location: 'westus', properties: { osType: 'linux' } } },
  { name: 'Arc extension PUT', method: 'PUT', path: `${ARC}/arc1/extensions/ama`, body: { location: 'westus', properties: AMA } },
  { name: 'maintenance configuration PUT', method: 'PUT', path: `${CFG}/mc1`, body: { location: 'westus', properties: { maintenanceScope: 'Host' } } },
  { name: 'maintenance configuration PATCH', method: 'PATCH', path: `${CFG}/mc1`, body: {} },
];

/** Accepted by ARM's rules: a name of 1-512 characters, reserved characters only after `hidden-`/`link:`, no control characters. */
function armAccepts(t: Record<string, string>): boolean {
  const names = Object.keys(t);
  if (names.length > 50) return false;
  if (new Set(names.map((n) => n.toLowerCase())).size !== names.length) return false;
  return names.every((n) => n.length >= 1 && n.length <= 512 && !/[\u0000-\u001f\u007f-\u009f]/.test(n)
    && (!/[<>%&\\?/]/.test(n) || /^(hidden-|link:)/i.test(n)) && t[n]!.length <= 256);
}

describe('serve from outside: session 22', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ pageSize: 2 });
    assert.ok((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true })).status < 300);
    assert.ok((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] })).status < 300);
    for (const w of WRITES.filter((x) => x.method === 'PUT')) {
      const r = await call(s.url, 'PUT', `${w.path}?${AV}`, { ...w.body, tags: { keep: 'me' } });
      assert.ok(r.status === 200 || r.status === 201, `${w.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  });
  after(async () => s?.stop());

  const tagsOf = async (path: string) => (await call(s.url, 'GET', `${path}?${AV}`)).body.tags;

  test('tags: the schema takes exactly what ARM takes (property, any names and values)', () => {
    const name = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('hidden-link:/subscriptions/x', 'link:a/b', 'Hidden-Title', 'a\tb', 'hidden-\n', 'x'.repeat(513), 'x'.repeat(512), ''));
    const value = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('v'.repeat(256), 'v'.repeat(257)));
    fc.assert(fc.property(fc.dictionary(name, value, { maxKeys: 6 }), (t) => {
      let ok = true;
      try { parseBody(tagsSchema, t); } catch { ok = false; }
      assert.equal(ok, armAccepts(t), JSON.stringify(t));
    }), { seed: 22, numRuns: 2000 });
  });

  test('tags: a reserved character, an empty or long name, a long value, 51 tags or names differing by case are refused with ARM\'s codes on every resource type, changing nothing', async () => {
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ 'a/b': 'v' }, 'InvalidTagNameCharacters', /reserved characters '<,>,%,&,\\,\?,\/'/],
      [{ 'cost%center': 'v' }, 'InvalidTagNameCharacters', /cost%center/],
      [{ 'hidden-x\u0007': 'v' }, 'InvalidTagNameCharacters', /control characters/],
      [{ '': 'v' }, 'InvalidTagName', /empty/],
      [{ env: 'v'.repeat(257) }, 'InvalidTagValueLength', /257 characters; at most 256/],
      [Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, 'v'])), 'InvalidTags', /51 given, at most 50/],
      [{ Env: 'prod', env: 'dev' }, 'InvalidTags', /differ only by case/],
    ];
    for (const w of WRITES) {
      for (const [tags, code, message] of cases) {
        const r = await call(s.url, w.method, `${w.path}?${AV}`, { ...w.body, tags });
        assert.equal(r.status, 400, `${w.name} ${code}: ${JSON.stringify(r.body).slice(0, 300)}`);
        assert.equal(r.body.error.code, code, `${w.name}: ${JSON.stringify(r.body.error).slice(0, 300)}`);
        assert.match(r.body.error.message, message, w.name);
        assert.match(r.body.error.target, /^tags/, w.name);
      }
      // A name over 512 characters is refused by the body's maxKeyLength (512, ARM's longest tag name) before the tags are read.
      const long = await call(s.url, w.method, `${w.path}?${AV}`, { ...w.body, tags: { ['n'.repeat(513)]: 'v' } });
      assert.equal(long.status, 400, w.name);
      assert.equal(long.body.error.target, 'maxKeyLength', w.name);
      assert.deepEqual(await tagsOf(w.path), { keep: 'me' }, `${w.name}: nothing changed`);
    }
  });

  test('tags: names starting hidden- or link: may carry the reserved characters (hidden-link:/subscriptions/…); a 512-character name and a 256-character value are taken', async () => {
    const tags = { 'hidden-link:/subscriptions/sub1/resourceGroups/rg22/providers/Microsoft.Web/sites/app': 'Resource', 'link:a&b': 'x', ['n'.repeat(512)]: 'v'.repeat(256) };
    for (const w of WRITES) {
      const r = await call(s.url, w.method, `${w.path}?${AV}`, { ...w.body, tags });
      assert.ok(r.status === 200 || r.status === 201, `${w.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      assert.deepEqual(await tagsOf(w.path), tags, w.name);
      assert.ok((await call(s.url, w.method, `${w.path}?${AV}`, { ...w.body, tags: { keep: 'me' } })).status < 300);
    }
  });

  test('PATCH {"tags": null} removes the tags (JSON merge patch), on every type that takes a PATCH; a PUT with null tags has none; a PATCH without tags keeps them', async () => {
    for (const w of WRITES.filter((x) => x.method === 'PATCH')) {
      const kept = await call(s.url, 'PATCH', `${w.path}?${AV}`, {});
      assert.ok(kept.status < 300, `${w.name}: ${JSON.stringify(kept.body)}`);
      assert.deepEqual(await tagsOf(w.path), { keep: 'me' }, `${w.name}: a PATCH without tags keeps them`);
      const cleared = await call(s.url, 'PATCH', `${w.path}?${AV}`, { tags: null });
      assert.ok(cleared.status < 300, `${w.name}: ${cleared.status} ${JSON.stringify(cleared.body)}`);
      assert.deepEqual(await tagsOf(w.path), {}, `${w.name}: cleared`);
      assert.ok((await call(s.url, 'PATCH', `${w.path}?${AV}`, { tags: { keep: 'me' } })).status < 300);
    }
    for (const w of WRITES.filter((x) => x.method === 'PUT' && !x.name.startsWith('scale-set instance'))) {
      const r = await call(s.url, 'PUT', `${w.path}?${AV}`, { ...w.body, tags: null });
      assert.ok(r.status < 300, `${w.name}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.deepEqual(await tagsOf(w.path), {}, w.name);
      assert.ok((await call(s.url, 'PUT', `${w.path}?${AV}`, { ...w.body, tags: { keep: 'me' } })).status < 300);
    }
    // Tags of another type are still refused: null is the only non-object taken.
    const r = await call(s.url, 'PATCH', `${VM}/vm1?${AV}`, { tags: 'none' });
    assert.equal(r.status, 400);
    assert.deepEqual(await tagsOf(`${VM}/vm1`), { keep: 'me' });
  });

  test('scale-set instance list: $filter on latestModelApplied keeps the instances it names, across pages; the PowerState filter and $select give the instance view', async () => {
    const set = `${VMSS}/flt`;
    const made = await call(s.url, 'PUT', `${set}?${AV}`, { location: 'westus', sku: { capacity: 5 }, properties: { upgradePolicy: { mode: 'Manual' } } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    // A Manual set's model change reaches the instances on manualupgrade only: 1 and 3 get it.
    const ext = await call(s.url, 'PUT', `${set}/extensions/ama?${AV}`, { properties: AMA });
    assert.ok(ext.status < 300, JSON.stringify(ext.body));
    assert.equal((await call(s.url, 'POST', `${set}/manualupgrade?${AV}`, { instanceIds: ['1', '3'] })).status, 202);
    const all = async (query: string) => {
      const ids: string[] = [];
      const items: any[] = [];
      let next: string | undefined = `${set}/virtualMachines?${AV}${query}`;
      for (let i = 0; next && i < 10; i++) {
        const r = await call(s.url, 'GET', next);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        ids.push(...r.body.value.map((v: { instanceId: string }) => v.instanceId));
        items.push(...r.body.value);
        next = r.body.nextLink?.slice(s.url.length);
      }
      return { ids, items };
    };
    assert.deepEqual((await all('')).ids, ['0', '1', '2', '3', '4']);
    assert.deepEqual((await all(`&$filter=${encodeURIComponent('properties/latestModelApplied eq true')}`)).ids, ['1', '3']);
    const behind = await all(`&$filter=${encodeURIComponent('Properties/LatestModelApplied  eq  false')}`);
    assert.deepEqual(behind.ids, ['0', '2', '4']);
    assert.ok(behind.items.every((v) => v.properties.latestModelApplied === false && v.properties.instanceView === undefined));
    const power = await all(`&$filter=${encodeURIComponent("startswith(instanceView/statuses/code, 'PowerState') eq true")}`);
    assert.deepEqual(power.ids, ['0', '1', '2', '3', '4']);
    assert.deepEqual(power.items[0].properties.instanceView.statuses.map((x: { code: string }) => x.code), ['PowerState/running']);
    const selected = await all('&$select=instanceView');
    assert.ok(selected.items.every((v) => Array.isArray(v.properties.instanceView.statuses)));
    // The SDK's options, as its users pass them, across its own paging.
    const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const compute = new ComputeManagementClient(credential, SUB, { endpoint: s.url } as never);
    const listed = async (options: Record<string, string>) => {
      const out: Array<{ instanceId?: string; instanceView?: { statuses?: Array<{ code?: string }> } }> = [];
      for await (const v of compute.virtualMachineScaleSetVMs.list('rg22', 'flt', options)) out.push(v as never);
      return out;
    };
    assert.deepEqual((await listed({ filter: 'properties/latestModelApplied eq false' })).map((v) => v.instanceId), ['0', '2', '4']);
    const withPower = await listed({ filter: "startswith(instanceView/statuses/code, 'PowerState') eq true" });
    assert.deepEqual(withPower.map((v) => v.instanceView?.statuses?.map((x) => x.code)), Array.from({ length: 5 }, () => ['PowerState/running']));
    assert.equal((await listed({ select: 'instanceView/statuses', expand: 'instanceView' })).length, 5);
  });

  test('scale-set instance list: $top, $orderby, another $filter or $select are 400 InvalidParameter naming the parameter (they were ignored: every instance was listed)', async () => {
    const set = `${VMSS}/flt/virtualMachines?${AV}`;
    for (const [query, target] of [['$top=1', '$top'], ['$TOP=1', '$top'], ['$orderby=name', '$orderby'], [`$filter=${encodeURIComponent("name eq 'flt_1'")}`, '$filter'],
      [`$filter=${encodeURIComponent('properties/latestModelApplied eq maybe')}`, '$filter'], ['$select=properties', '$select']] as const) {
      const r = await call(s.url, 'GET', `${set}&${query}`);
      assert.equal(r.status, 400, query);
      assert.equal(r.body.error.code, 'InvalidParameter', query);
      assert.equal(r.body.error.target, target, query);
    }
    assert.equal((await call(s.url, 'GET', `${set}&$filter=`)).status, 200, 'an empty $filter is none');
  });

  test('scale set durations: pauseTimeBetweenBatches or extensionsTimeBudget over P30D is a 400 naming it (P99999999999D made GET /phasewise/rollouts a 500)', async () => {
    const rolling = (pause: string) => ({ upgradePolicy: { mode: 'Rolling', rollingUpgradePolicy: { pauseTimeBetweenBatches: pause } } });
    for (const [method, path, body, target] of [
      ['PUT', `${VMSS}/slow`, { location: 'westus', sku: { capacity: 1 }, properties: rolling('P99999999999D') }, 'properties.upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches'],
      ['PUT', `${VMSS}/slow`, { location: 'westus', sku: { capacity: 1 }, properties: rolling('PT721H') }, 'properties.upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches'],
      ['PATCH', `${VMSS}/ss1`, { properties: rolling('P31D') }, 'properties.upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches'],
      ['PATCH', `${VMSS}/ss1`, { properties: { virtualMachineProfile: { extensionProfile: { extensionsTimeBudget: 'PT99999999999999999999H' } } } },
        'properties.virtualMachineProfile.extensionProfile.extensionsTimeBudget'],
    ] as const) {
      const r = await call(s.url, method, `${path}?${AV}`, body);
      assert.equal(r.status, 400, `${method} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.target, target);
      assert.match(r.body.error.message, /longer than P30D/);
    }
    assert.equal((await call(s.url, 'GET', `${VMSS}/slow?${AV}`)).status, 404, 'nothing created');
    assert.equal((await call(s.url, 'GET', `${VMSS}/ss1?${AV}`)).body.properties.upgradePolicy.mode, 'Manual', 'nothing changed');
    const ok = await call(s.url, 'PUT', `${VMSS}/slow?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: rolling('P30D') });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
  });

  test('rollouts: an estimated instant past what a date holds reads as null, not a 500 for the whole list (a set stored with a pause from before its bound)', async () => {
    const vm = `${VM}/est`;
    assert.equal((await call(s.url, 'PUT', `${vm}?${AV}`, { location: 'westus' })).status, 201);
    const ext = await call(s.url, 'PUT', `${vm}/extensions/agent?${AV}`, { location: 'westus', properties: { ...AMA, enableAutomaticUpgrade: true } });
    assert.ok(ext.status < 300, JSON.stringify(ext.body));
    const published = await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.1.0.0', { os: ['linux'] });
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const rollout = s.runtime.engine.state.rollouts.get(published.body.rolloutId);
    assert.ok(rollout, 'the release started a rollout');
    // What such a plan holds (its estimate is the planner's; the state is set here, as no request can make it now).
    (rollout.plan.estimate as { totalMs: number }).totalMs = 1e20;
    const list = await call(s.url, 'GET', '/phasewise/rollouts');
    assert.equal(list.status, 200, JSON.stringify(list.body).slice(0, 300));
    const shown = list.body.value.find((x: { id: string }) => x.id === rollout.id);
    assert.equal(shown.estimate.expectedEnd, null);
    assert.equal((await call(s.url, 'GET', `/phasewise/rollouts/${rollout.id}`)).status, 200);
  });

  test('a PATCH sent as application/merge-patch+json is read as JSON (it was a 415); a PUT or POST with that type is a 415, changing nothing', async () => {
    const vm = `${VM}/vm1?${AV}`;
    const merge = { 'content-type': 'application/merge-patch+json' };
    const res = await fetch(`${s.url}${vm}`, { method: 'PATCH', headers: { authorization: `Bearer ${TEST_TOKEN}`, ...merge }, body: JSON.stringify({ tags: { merged: 'yes' } }) });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(await tagsOf(`${VM}/vm1`), { merged: 'yes' });
    const mergeUtf8 = { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/merge-patch+json; charset=utf-8' };
    const cleared = await fetch(`${s.url}${vm}`, { method: 'PATCH', headers: mergeUtf8, body: '{"tags":null}' });
    assert.equal(cleared.status, 200, await cleared.text());
    assert.deepEqual(await tagsOf(`${VM}/vm1`), {});
    const put = await fetch(`${s.url}${vm}`, { method: 'PUT', headers: { authorization: `Bearer ${TEST_TOKEN}`, ...merge }, body: JSON.stringify({ location: 'westus', tags: { put: 'x' } }) });
    assert.equal(put.status, 415);
    assert.equal(((await put.json()) as { error: { code: string } }).error.code, 'UnsupportedMediaType');
    assert.deepEqual(await tagsOf(`${VM}/vm1`), {}, 'the refused PUT changed nothing');
    assert.ok((await call(s.url, 'PATCH', vm, { tags: { keep: 'me' } })).status < 300);
  });

  test('VM lists: $filter=virtualMachineScaleSet/id eq … keeps that set\'s VMs (none: instances are not VMs here); another filter is a 400 (every VM was listed)', async () => {
    const setId = `/subscriptions/${SUB}/resourceGroups/rg22/providers/Microsoft.Compute/virtualMachineScaleSets/ss1`;
    for (const list of [`${VM}?${AV}`, `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${AV}`]) {
      const everything = await call(s.url, 'GET', list);
      assert.ok(everything.body.value.length > 0, list);
      for (const f of [`virtualMachineScaleSet/id eq '${setId}'`, `VirtualMachineScaleSet/Id eq ${setId.toLowerCase()}`]) {
        const r = await call(s.url, 'GET', `${list}&$filter=${encodeURIComponent(f)}`);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.deepEqual(r.body.value, [], `${list} ${f}`);
        assert.equal(r.body.nextLink, undefined);
      }
      for (const f of ["name eq 'vm1'", 'virtualMachineScaleSet/id eq', "location eq 'westus'"]) {
        const r = await call(s.url, 'GET', `${list}&$filter=${encodeURIComponent(f)}`);
        assert.equal(r.status, 400, `${list} ${f}`);
        assert.equal(r.body.error.target, '$filter');
      }
    }
    // Through the SDK, as its users ask.
    const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const compute = new ComputeManagementClient(credential, SUB, { endpoint: s.url } as never);
    const got: unknown[] = [];
    for await (const v of compute.virtualMachines.list('rg22', { filter: `virtualMachineScaleSet/id eq '${setId}'` })) got.push(v);
    assert.deepEqual(got, []);
  });

  test('VM listAll: statusOnly=true gives each VM its instance view (power state), through the SDK too; another value is a 400 naming it (it was ignored)', async () => {
    const list = `/subscriptions/${SUB}/providers/Microsoft.Compute/virtualMachines?${AV}`;
    const plain = await call(s.url, 'GET', list);
    assert.ok(plain.body.value.length > 0 && plain.body.value.every((v: any) => v.properties.instanceView === undefined));
    const status = await call(s.url, 'GET', `${list}&statusOnly=True`);
    assert.equal(status.status, 200);
    assert.ok(status.body.value.every((v: any) => v.properties.instanceView.statuses.some((x: { code: string }) => x.code === 'PowerState/running')));
    const bad = await call(s.url, 'GET', `${list}&statusOnly=yes`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.target, 'statusOnly');
    const credential: TokenCredential = { getToken: async () => ({ token: TEST_TOKEN, expiresOnTimestamp: Date.now() + 3_600_000 }) };
    const compute = new ComputeManagementClient(credential, SUB, { endpoint: s.url } as never);
    const got: Array<{ instanceView?: { statuses?: Array<{ code?: string }> } }> = [];
    for await (const v of compute.virtualMachines.listAll({ statusOnly: 'true' })) got.push(v as never);
    assert.ok(got.length > 0 && got.every((v) => v.instanceView?.statuses?.some((x) => x.code === 'PowerState/running')));
  });

  test('R72: a maintenance configuration naming EmergencyBypass twice, in two casings, is a 400 naming it, changing nothing (the first one decided unseen)', async () => {
    const w = { startDateTime: '2026-01-01 00:00', duration: '05:00', timeZone: 'UTC', recurEvery: 'Day' };
    const body = (ext: Record<string, string>) => ({ location: 'westus', properties: { maintenanceScope: 'Extension', maintenanceWindow: w, extensionProperties: ext } });
    assert.equal((await call(s.url, 'PUT', `${CFG}/bypass?${AV}`, body({ EmergencyBypass: 'Deny' }))).status, 201);
    const twice = [
      ['PUT', body({ EmergencyBypass: 'Deny', emergencybypass: 'Allow' })],
      ['PATCH', { properties: { extensionProperties: { EMERGENCYBYPASS: 'Allow', EmergencyBypass: 'Deny' } } }],
    ] as const;
    for (const [method, b] of twice) {
      const r = await call(s.url, method, `${CFG}/bypass?${AV}`, b);
      assert.equal(r.status, 400, `${method}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error.message, /both name EmergencyBypass/);
    }
    assert.deepEqual((await call(s.url, 'GET', `${CFG}/bypass?${AV}`)).body.properties.extensionProperties, { EmergencyBypass: 'Deny' });
  });

  test('instance list query: allowed values in any case and spacing are read; the rest refused (property)', () => {
    assert.deepEqual(instanceListQuery({}), { instanceView: false, powerStateOnly: false });
    assert.deepEqual(instanceListQuery({ $expand: 'instanceView' }), { instanceView: true, powerStateOnly: false });
    fc.assert(fc.property(fc.string({ maxLength: 40 }), (f) => {
      let read: ReturnType<typeof instanceListQuery> | null = null;
      try { read = instanceListQuery({ $filter: f }); } catch { /* refused */ }
      const n = f.replace(/\s+/g, '').toLowerCase();
      const allowed = n === '' || ['properties/latestmodelappliedeqtrue', 'properties/latestmodelappliedeqfalse', "startswith(instanceview/statuses/code,'powerstate')eqtrue"].includes(n);
      assert.equal(read !== null, allowed, f);
    }), { seed: 22, numRuns: 500 });
  });
});
