/**
 * No input can stop the engine (issue 12): every input has a limit checked before anything is parsed
 * into state, user keys are looked up as own properties only, the HTTP layer's own errors are ARM
 * errors with a request id, and values copied from the request into headers are bounded.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { BODY_IDLE_MS } from '../src/api/agent/body-idle.js';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import type { RunningServer } from '../src/server/serve.js';
import { call, CERT, eventually, KEY, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { parseResponse, rawExchange, rawGet } from './helpers/raw-tls.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';
const RGP = `/subscriptions/${SUB}/resourceGroups/rg1`;
const VM = `${RGP}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RGP}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const CFG = `${RGP}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const TYPES = `/phasewise/publishers/${AMA.publisher}/extensionTypes`;

/** An array nested `depth` levels (as text: no recursion to build or to send). */
const deepText = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const extBody = (settings: string) => `{"location":"westus","properties":{"publisher":"${AMA.publisher}","type":"${AMA.type}","typeHandlerVersion":"1.30","settings":${settings}}}`;
/** Settings nested `depth` objects deep. */
const nested = (depth: number): Record<string, unknown> => {
  let v: Record<string, unknown> = { leaf: 'x' };
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
};

function armError(r: { status: number; body: any; headers: Headers }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body)?.slice(0, 300));
  assert.equal(r.body?.error?.code, code, JSON.stringify(r.body)?.slice(0, 300));
  assert.ok(r.headers.get('x-ms-request-id'), 'x-ms-request-id');
}

async function seed(s: { url: string }): Promise<void> {
  const ok = async (method: string, path: string, body: unknown) => {
    const r = await call(s.url, method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  await ok('PUT', `${RGP}?${AV}`, { location: 'westus' });
  await ok('PUT', `${TYPES}/${AMA.type}`, { supportsAutomaticUpgrade: true });
  await ok('PUT', `${TYPES}/${AMA.type}/versions/1.30.0.0`, { os: ['linux'] });
  await ok('PUT', `${VM}/vm1?${AV}`, { location: 'westus' });
}

describe('limits: no request halts the engine', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    await seed(s);
  });
  after(async () => s?.stop());

  async function alive(): Promise<void> {
    assert.equal(s.runtime.engine.haltedBecause, null, 'the engine is not halted');
    const w = await call(s.url, 'PUT', `${VM}/vm1?${AV}`, { location: 'westus', tags: { alive: String(Date.now()) } });
    assert.equal(w.status, 200, `a later write still succeeds: ${JSON.stringify(w.body)}`);
  }

  test('a settings PUT nested 2,500 levels deep answers 400 naming maxDepth; the engine runs on, nothing stored', async () => {
    const r = await call(s.url, 'PUT', `${VM}/vm1/extensions/deep?${AV}`, extBody(deepText(2500)));
    armError(r, 400, 'InvalidRequestContent');
    assert.equal(r.body.error.target, 'maxDepth');
    assert.match(r.body.error.message, /deeper than 32 levels/);
    assert.equal((await call(s.url, 'GET', `${VM}/vm1/extensions/deep?${AV}`)).status, 404);
    await alive();
  });

  test('each limit answers 400 with the limit named: values, members, key and string length, settings size', async () => {
    const cases: Array<[string, string]> = [
      [`{${Array.from({ length: 1001 }, (_, i) => `"k${i}":1`).join(',')}}`, 'maxMembers'],
      [`[${'1,'.repeat(20_001)}1]`, 'maxValues'],
      [`{"${'k'.repeat(513)}":1}`, 'maxKeyLength'],
      [`{"s":"${'x'.repeat(32_769)}"}`, 'maxStringLength'],
      [JSON.stringify(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'x'.repeat(2000)]))), 'maxSettingsBytes'],
    ];
    for (const [settings, limit] of cases) {
      const r = await call(s.url, 'PUT', `${VM}/vm1/extensions/big?${AV}`, extBody(settings));
      assert.equal(r.status, 400, `${limit}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.match(JSON.stringify(r.body.error), new RegExp(limit), limit);
    }
    await alive();
  });

  test('duplicate keys, __proto__ and numbers out of range are refused, not silently reinterpreted', async () => {
    for (const settings of ['{"a":1,"a":2}', '{"__proto__":{"x":1}}', '{"n":1e400}', '{"n":-1e999}']) {
      const r = await call(s.url, 'PUT', `${VM}/vm1/extensions/odd?${AV}`, extBody(settings));
      armError(r, 400, 'InvalidRequestContent');
    }
    assert.equal((await call(s.url, 'GET', `${VM}/vm1/extensions/odd?${AV}`)).status, 404);
    await alive();
  });

  test('U+0000 (which PostgreSQL cannot store) in a string, a property name or the URI is refused with 400 and stores nothing; other control characters are kept', async () => {
    for (const [path, body] of [
      [`${VM}/vm1/extensions/nul?${AV}`, extBody('{"password":"a\\u0000b"}')],
      [`${VM}/vm1/extensions/nul?${AV}`, extBody('{"a":{"b":[1,{"k\\u0000":2}]}}')],
      [`${VM}/vm1?${AV}`, '{"location":"westus","tags":{"t":"\\u0000"}}'],
    ]) {
      const r = await call(s.url, 'PUT', path!, body);
      armError(r, 400, 'InvalidRequestContent');
      assert.match(r.body.error.message, /U\+0000/);
    }
    assert.equal((await call(s.url, 'GET', `${VM}/vm1/extensions/nul?${AV}`)).status, 404);
    const vm = await call(s.url, 'GET', `${VM}/vm1?${AV}`);
    assert.notEqual(vm.body?.tags?.t, '\u0000');
    for (const path of [`${RGP}/providers/Microsoft.Compute/virtualMachines/vm%00x?${AV}`, `${CFG}/c%00?${AV}`, `/subscriptions/${SUB}/resourceGroups/rg%00?${AV}`]) {
      const r = await call(s.url, 'PUT', path, { location: 'westus' });
      armError(r, 400, 'InvalidRequestUri');
    }
    // A backslash followed by u0000 as text, and other control characters, are ordinary strings.
    const ok = await call(s.url, 'PUT', `${VM}/vm1/extensions/ctl?${AV}`, extBody('{"a":"\\\\u0000","b":"\\u0001\\t"}'));
    assert.ok(ok.status < 300, JSON.stringify(ok.body));
    await alive();
  });

  test('an api-version over 64 characters is a 400 InvalidApiVersionParameter and is never copied into headers', async () => {
    const r = await call(s.url, 'POST', `${VMSS}/none/rollingUpgrades/cancel?api-version=${'9'.repeat(5000)}`);
    armError(r, 400, 'InvalidApiVersionParameter');
    assert.equal(r.headers.get('azure-asyncoperation'), null);
    const odd = await call(s.url, 'GET', `${RGP}?api-version=2024-01-01%0d%0aX-Injected:%201`);
    armError(odd, 400, 'InvalidApiVersionParameter');
  });
});

describe('settings just under the limits stored on a scale-set model', () => {
  test('survive a capacity change, a manual upgrade and a restart without halting the engine', async () => {
    const s = await startTestServer();
    let again: RunningServer | null = null;
    try {
      await seed(s);
      const model = (capacity: number) => ({
        location: 'westus', sku: { name: 'Standard_D2s_v5', capacity },
        properties: {
          upgradePolicy: { mode: 'Manual' },
          virtualMachineProfile: { extensionProfile: { extensions: [{ name: 'ama', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30', settings: nested(24) } }] } },
        },
      });
      const put = await call(s.url, 'PUT', `${VMSS}/deep?${AV}`, model(2));
      assert.ok(put.status < 300, `${put.status} ${JSON.stringify(put.body)?.slice(0, 300)}`);
      const grow = await call(s.url, 'PATCH', `${VMSS}/deep?${AV}`, { sku: { capacity: 4 } });
      assert.equal(grow.status, 200, JSON.stringify(grow.body)?.slice(0, 300));
      const upgrade = await call(s.url, 'POST', `${VMSS}/deep/manualUpgrade?${AV}`, { instanceIds: ['0', '1'] });
      assert.ok(upgrade.status < 300, `${upgrade.status} ${JSON.stringify(upgrade.body)?.slice(0, 300)}`);
      assert.equal(s.runtime.engine.haltedBecause, null);
      await s.close();
      const config = configSchema.parse({
        host: '127.0.0.1', port: 0, dataDir: s.dir, logLevel: 'silent', retryAfterSeconds: 0, clockFactor: 2_000, subscriptions: [SUB],
        tls: { cert: CERT, key: KEY }, tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }],
      });
      again = await startServer(config);
      const url = again.url.replace('127.0.0.1', 'localhost');
      const shrink = await call(url, 'PATCH', `${VMSS}/deep?${AV}`, { sku: { capacity: 3 } });
      assert.equal(shrink.status, 200, JSON.stringify(shrink.body)?.slice(0, 300));
      const r = await call(url, 'GET', `${VMSS}/deep/virtualMachines/2/extensions/ama?${AV}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.properties.settings, nested(24));
      assert.equal(again.runtime.engine.haltedBecause, null);
    } finally {
      await again?.close();
      await s.stop();
    }
  });
});

describe('osProfile: the fields ARM types as strings are checked', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
  });
  after(async () => s?.stop());

  test('a non-string adminPassword, customData, adminUsername, computerName or computerNamePrefix is 400 naming it; nothing is stored', async () => {
    // osProfile was taken whole: `adminPassword: 5` or `{}` was sealed as the secret and the PUT answered 201.
    const VM = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines`;
    const SS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
    const bad: Array<[string, unknown]> = [['adminPassword', 5], ['adminPassword', {}], ['customData', ['Y2xvdWQ=']], ['adminUsername', 1], ['computerName', true]];
    for (const [field, value] of bad) {
      const vm = await call(s.url, 'PUT', `${VM}/typed?${AV}`, { location: 'westus', properties: { osProfile: { [field]: value } } });
      armError(vm, 400, 'InvalidParameter');
      assert.equal(vm.body.error.target, `properties.osProfile.${field}`);
      const ss = await call(s.url, 'PUT', `${SS}/typed?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: { virtualMachineProfile: { osProfile: { [field]: value } } } });
      armError(ss, 400, 'InvalidParameter');
      assert.equal(ss.body.error.target, `properties.virtualMachineProfile.osProfile.${field}`);
    }
    const prefix = await call(s.url, 'PUT', `${SS}/typed?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: { virtualMachineProfile: { osProfile: { computerNamePrefix: 7 } } } });
    assert.equal(prefix.body.error.target, 'properties.virtualMachineProfile.osProfile.computerNamePrefix');
    assert.equal((await call(s.url, 'GET', `${VM}/typed?${AV}`)).status, 404, 'no VM was created');
    assert.equal((await call(s.url, 'GET', `${SS}/typed?${AV}`)).status, 404, 'no scale set was created');
    // A PATCH is held to the same, and strings (and other osProfile properties, as sent) are taken.
    const ok = { adminUsername: 'me', adminPassword: 'P@ssw0rd!', customData: 'Y2xvdWQ=', computerName: 'typed', allowExtensionOperations: true };
    assert.equal((await call(s.url, 'PUT', `${VM}/typed?${AV}`, { location: 'westus', properties: { osProfile: ok } })).status, 201);
    const patch = await call(s.url, 'PATCH', `${VM}/typed?${AV}`, { properties: { osProfile: { adminPassword: 12345 } } });
    armError(patch, 400, 'InvalidParameter');
    assert.equal(patch.body.error.target, 'properties.osProfile.adminPassword');
  });
});

describe('own properties only', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    await seed(s);
  });
  after(async () => s?.stop());

  test('R72: an EmergencyBypass of "constructor" (or any inherited name) is refused with 400 and stores nothing', async () => {
    for (const value of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const body = {
        location: 'westus',
        properties: {
          maintenanceScope: 'Extension', extensionProperties: { EmergencyBypass: value },
          maintenanceWindow: { startDateTime: '2026-04-30 08:00', duration: '05:00', timeZone: 'UTC', recurEvery: 'Week Saturday' },
        },
      };
      const r = await call(s.url, 'PUT', `${CFG}/mc-${value.replace(/_/g, '')}?${AV}`, body);
      armError(r, 400, 'InvalidParameter');
      assert.equal(r.body.error.target, 'properties.extensionProperties.EmergencyBypass');
    }
    assert.equal(s.runtime.engine.state.maintenance.configs.size, 0);
  });

  test('query parameters named like Object.prototype members are plain parameters', async () => {
    const r = await call(s.url, 'GET', `${VMSS}?${AV}&constructor=1&__proto__=2&toString=3`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
});

describe('query parameters are checked, not guessed', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ pageSize: 2 });
    await seed(s);
    const ext = JSON.parse(extBody('{}')).properties;
    const profile = { extensionProfile: { extensions: [{ name: 'ama', properties: ext }] } };
    const set = await call(s.url, 'PUT', `${VMSS}/ss1?${AV}`, { location: 'westus', sku: { capacity: 5 }, properties: { upgradePolicy: { mode: 'Manual' }, virtualMachineProfile: profile } });
    assert.equal(set.status, 201, JSON.stringify(set.body));
    await eventually(async () => [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]).every((i) => i.status === 'Succeeded'), 20_000, 'the installs');
  });
  after(async () => s?.stop());

  const lists = [`${VMSS}/ss1/virtualMachines?${AV}`, `${VMSS}?${AV}`, `${VMSS}/ss1/extensions?${AV}`, `${VMSS}/ss1/osUpgradeHistory?${AV}`, '/phasewise/rollouts'];

  test('a $skiptoken the server did not issue is a 400 naming it (not read as 0, nor `1e9` as 1); nextLinks page through every item once', async () => {
    const odd = fc.constantFrom('garbage', '-1', '1e9', '1.5', ' 1', '0x10', '99999999999999999999', '１', '1,2');
    const notIssued = fc.oneof(odd, fc.string({ minLength: 1, maxLength: 12 })).filter((t) => !/^\d{1,15}$/.test(t));
    await fc.assert(fc.asyncProperty(fc.constantFrom(...lists), notIssued, async (list, token) => {
      const r = await call(s.url, 'GET', `${list}${list.includes('?') ? '&' : '?'}$skiptoken=${encodeURIComponent(token)}`);
      armError(r, 400, 'InvalidParameter');
      assert.equal(r.body.error.target, '$skiptoken');
    }), { seed: 1400, numRuns: 80, endOnFailure: true });
    // The tokens the server hands out work, in any casing of the parameter, and reach every instance exactly once.
    const seen: string[] = [];
    let next: string | undefined = `${s.url}${lists[0]}&$SkipToken=0`;
    for (let i = 0; next && i < 10; i++) {
      const r = await call(s.url, 'GET', next.slice(s.url.length));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      seen.push(...r.body.value.map((v: { instanceId: string }) => v.instanceId));
      next = r.body.nextLink;
      if (next) assert.equal(new URL(next).search.match(/skiptoken/gi)?.length, 1, `one $skiptoken in ${next}`);
    }
    assert.deepEqual(seen, ['0', '1', '2', '3', '4']);
  });

  test('R6: forceExtensionUpgrade other than true or false is a 400 and starts nothing; true and false in any casing are read', async () => {
    const published = await call(s.url, 'PUT', `${TYPES}/${AMA.type}/versions/1.31.0.0`, { os: ['linux'] });
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const rollouts = () => [...s.runtime.engine.state.rollouts.values()].filter((r) => r.caller === 'alice@contoso.com').length;
    for (const value of ['maybe', '1', 'yes', '', 'truee', 'true,false']) {
      const r = await call(s.url, 'POST', `${VMSS}/ss1/extensionRollingUpgrade?${AV}&forceExtensionUpgrade=${encodeURIComponent(value)}`);
      armError(r, 400, 'InvalidParameter');
      assert.equal(r.body.error.target, 'forceExtensionUpgrade');
      assert.equal(rollouts(), 0, `nothing started by forceExtensionUpgrade=${value}`);
    }
    const ok = await call(s.url, 'POST', `${VMSS}/ss1/extensionRollingUpgrade?${AV}&FORCEEXTENSIONUPGRADE=False`);
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal(rollouts(), 1);
  });
});

describe('wire shapes', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    await seed(s);
  });
  after(async () => s?.stop());

  test('an extension DELETE answers 202 with the operation headers, and 204 when there is nothing to delete', async () => {
    const put = await call(s.url, 'PUT', `${VM}/vm1/extensions/ama?${AV}`, JSON.parse(extBody('{}')));
    assert.ok(put.status < 300);
    await eventually(async () => (await call(s.url, 'GET', `${VM}/vm1/extensions/ama?${AV}`)).body.properties.provisioningState === 'Succeeded', 20_000, 'the install');
    const del = await call(s.url, 'DELETE', `${VM}/vm1/extensions/ama?${AV}`);
    assert.equal(del.status, 202);
    for (const h of ['azure-asyncoperation', 'location', 'retry-after']) assert.ok(del.headers.get(h), h);
    const op = await call(s.url, 'GET', new URL(del.headers.get('azure-asyncoperation')!).pathname + `?${AV}`);
    assert.equal(op.body.status, 'Succeeded');
    assert.equal((await call(s.url, 'DELETE', `${VM}/vm1/extensions/ama?${AV}`)).status, 204);
  });

  test('a long Host header is never copied into the operation URLs', async () => {
    const put = await call(s.url, 'PUT', `${VM}/vm1/extensions/host?${AV}`, JSON.parse(extBody('{}')));
    assert.ok(put.status < 300);
    await eventually(async () => (await call(s.url, 'GET', `${VM}/vm1/extensions/host?${AV}`)).body.properties.provisioningState === 'Succeeded', 20_000, 'the install');
    const host = `${'h'.repeat(8000)}.example`;
    const res = parseResponse(await rawExchange(s.url, `DELETE ${VM}/vm1/extensions/host?${AV} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nConnection: close\r\n\r\n`));
    assert.equal(res.status, 202, res.text.slice(0, 300));
    assert.ok(res.headers.location!.startsWith('https://localhost/'), res.headers.location!.slice(0, 100));
    assert.ok(res.headers['azure-asyncoperation']!.length < 400);
  });
});

describe('the HTTP layer answers ARM errors', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer(); });
  after(async () => s?.stop());

  /** One raw request; the answer must be an ARM error with a request id. */
  async function raw(request: string, status: number, closes: boolean): Promise<void> {
    const res = parseResponse(await rawExchange(s.url, request));
    assert.equal(res.status, status, res.text.slice(0, 300));
    assert.ok(res.headers['x-ms-request-id'], `x-ms-request-id in ${res.text.slice(0, 300)}`);
    const body = JSON.parse(res.body) as { error?: { code?: string; message?: string } };
    assert.ok(body.error?.code && body.error.message, res.body);
    assert.match(res.headers['content-type'] ?? '', /application\/json/);
    if (closes) assert.equal(res.headers.connection, 'close', 'the server says it closes the connection');
  }

  test('a bad percent-escape in the path is a 400 ARM error', async () => {
    await raw(rawGet(`/subscriptions/%E0%A4%A/resourceGroups/x?${AV}`, TEST_TOKEN), 400, false);
  });

  test('a path segment over the limit is a 414 ARM error naming the limit', async () => {
    await raw(rawGet(`${RGP}/providers/Microsoft.Compute/virtualMachines/${'v'.repeat(2000)}?${AV}`, TEST_TOKEN), 414, false);
  });

  test('headers over 16 KB answer 431 with an ARM body and Connection: close', async () => {
    await raw(rawGet(`/subscriptions/${SUB}?${AV}`, TEST_TOKEN, `X-Big: ${'b'.repeat(20_000)}\r\n`), 431, true);
  });

  test('a URL over 16 KB answers 431 (or 414) with an ARM body and Connection: close', async () => {
    const res = parseResponse(await rawExchange(s.url, rawGet(`/subscriptions/${SUB}?${AV}&x=${'u'.repeat(20_000)}`, TEST_TOKEN)));
    assert.ok(res.status === 431 || res.status === 414, res.text.slice(0, 200));
    assert.ok(res.headers['x-ms-request-id']);
    assert.equal(res.headers.connection, 'close');
    assert.ok(JSON.parse(res.body).error.code);
  });

  test('malformed framing answers 400 with an ARM body and Connection: close', async () => {
    await raw(`POST /subscriptions/${SUB}?${AV} HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n`, 400, true);
    await raw(`GET /subscriptions/${SUB}?${AV} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n`, 400, true);
    await raw('NOT-HTTP\r\n\r\n', 400, true);
  });

  test('an HTTP/1.1 request without a Host header answers 400 as an ARM error (Node answered a bare 400, no body, no request id)', async () => {
    await raw(`GET /subscriptions/${SUB}?${AV} HTTP/1.1\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n\r\n`, 400, true);
    const put = `PUT ${RGP}-nohost?${AV} HTTP/1.1\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 22\r\n\r\n{"location":"westus"}`;
    await raw(put, 400, true);
    assert.equal((await call(s.url, 'GET', `${RGP}-nohost?${AV}`)).status, 404, 'nothing was created');
    // HTTP/1.0 has no Host requirement: still served.
    const old = parseResponse(await rawExchange(s.url, `GET /subscriptions/${SUB}?${AV} HTTP/1.0\r\nAuthorization: Bearer ${TEST_TOKEN}\r\n\r\n`));
    assert.equal(old.status, 200, old.text.slice(0, 300));
  });

  test('an Expect other than 100-continue answers 417 as an ARM error and closes; the write is not applied', async () => {
    const body = '{"location":"westus"}';
    const put = `PUT ${RGP}-expect?${AV} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Type: application/json\r\n`
      + `Expect: 200-ok\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    await raw(put, 417, true);
    assert.equal((await call(s.url, 'GET', `${RGP}-expect?${AV}`)).status, 404, 'nothing was created');
  });

  test('a keep-alive connection stays usable after a 4xx from a route', async () => {
    const two = rawGet(`/subscriptions/${SUB}/nothing?${AV}`, TEST_TOKEN) + rawGet(`/subscriptions/${SUB}?${AV}`, TEST_TOKEN, 'Connection: close\r\n');
    const text = await rawExchange(s.url, two);
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [404, 200]);
  });

  test('an answer given before the body has arrived (a 401 on the headers) closes the connection: the rest of a huge body is not read', async () => {
    // Kept alive, Node read and threw away the rest of the body, whatever its Content-Length: without a
    // token, 200 MiB went in; with one, maxBodyBytes cut it at 1 MiB (413).
    const u = new URL(s.url);
    const total = 256 * 1024 * 1024;
    const sock = connect({ host: u.hostname, port: Number(u.port), ca: readFileSync(CERT, 'utf8'), servername: 'localhost' });
    await new Promise((r) => sock.once('secureConnect', r));
    sock.on('error', () => undefined);
    let answer = '';
    sock.on('data', (d) => { answer += d; });
    let closed = false;
    sock.once('close', () => { closed = true; });
    sock.write(`PUT /subscriptions/${SUB}/resourceGroups/huge?${AV} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const until = Date.now() + 20_000;
    while (!closed && sent < total && Date.now() < until) {
      sent += chunk.length;
      if (!sock.write(chunk)) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); setTimeout(r, 1_000); });
    }
    sock.destroy();
    const res = parseResponse(answer);
    assert.equal(res.status, 401, answer.slice(0, 300));
    assert.equal(res.headers.connection, 'close');
    assert.ok(sent < total / 4, `the server took in ${(sent / 1048576).toFixed(0)} MiB of a body it had refused`);
    assert.equal((await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/huge?${AV}`)).status, 404, 'nothing was created');
  });

  test(`a request body that stops arriving closes its connection after ${BODY_IDLE_MS / 1000} s, with a token or without; nothing is stored`, async () => {
    // The server has no overall request timeout (long polls, uploads), and the idle bound was the agent
    // channel's only: a token holder's PUT whose body paused held its connection, and what it had buffered,
    // for ever (one without a token for the 72 s keep-alive after its 401).
    const u = new URL(s.url);
    const path = `/subscriptions/${SUB}/resourceGroups/stalled?${AV}`;
    const stall = async (auth: string): Promise<number> => {
      const sock = connect({ host: u.hostname, port: Number(u.port), ca: readFileSync(CERT, 'utf8'), servername: 'localhost' });
      await new Promise((r) => sock.once('secureConnect', r));
      sock.on('error', () => undefined);
      sock.on('data', () => undefined); // read what comes (the 401), or the end is never seen
      const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())));
      const t0 = Date.now();
      sock.write(`PUT ${path} HTTP/1.1\r\nHost: localhost\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"loca`);
      const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), BODY_IDLE_MS + 10_000))]);
      sock.destroy();
      assert.notEqual(at, -1, `${auth ? 'with' : 'without'} a token: the connection is still open ${BODY_IDLE_MS + 10_000} ms later`);
      return at - t0;
    };
    const [withToken, without] = await Promise.all([stall(`Authorization: Bearer ${TEST_TOKEN}\r\n`), stall('')]);
    assert.ok(withToken >= BODY_IDLE_MS - 100 && withToken < BODY_IDLE_MS + 5_000, `closed after ${withToken} ms`);
    // Without a token the 401 is the answer, given on the headers: the connection closes after it, at once.
    assert.ok(without < 5_000, `closed after ${without} ms`);
    assert.equal((await call(s.url, 'GET', path)).status, 404, 'nothing was created');
    assert.equal((await call(s.url, 'PUT', path, { location: 'westus' })).status, 201, 'a body that arrives is read as ever');
  });
});
