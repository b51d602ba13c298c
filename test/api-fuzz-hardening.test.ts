/**
 * No input can stop the engine (issue 12). Seeded fast-check properties send a real server (HTTPS,
 * SQLite, the simulated fleet) the classes of input no other test sends: nesting thousands of levels
 * deep, bodies at and over every limit, unicode and NUL, duplicate and inherited keys, numbers out of
 * range, broken HTTP framing over raw TLS, long URLs and headers, and conflicting writes at once. For
 * every request: a 4xx ARM error (with a request id) or a success, never a 5xx; the engine never
 * halted; and a refused request changes nothing. Bounded: about 20 s at the default scale.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { call, eventually, PUBLISHER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { parseResponse, rawExchange, rawGet } from './helpers/raw-tls.js';

const SEED = Number(process.env.PHASEWISE_FUZZ_SEED ?? 1200);
const runs = (n: number) => Math.ceil(n * Number(process.env.PHASEWISE_FUZZ_SCALE ?? 1));
const AV = 'api-version=2026-03-01';
const RGP = '/subscriptions/sub1/resourceGroups/rg1';
const VM = `${RGP}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RGP}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const CFG = `${RGP}/providers/Microsoft.Maintenance/maintenanceConfigurations`;
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const TYPES = `/phasewise/publishers/${AMA.publisher}/extensionTypes`;

const EXT = `{"publisher":"${AMA.publisher}","type":"${AMA.type}","typeHandlerVersion":"1.30","settings":@@}`;
const WINDOW = '{"startDateTime":"2026-04-30 08:00","duration":"05:00","timeZone":"UTC","recurEvery":"Day"}';

/** Write routes and a valid body for each, as text with a hole (`@@`) where a generated value goes. */
const TARGETS: Array<{ name: string; method: string; path: string; token?: string; body: string }> = [
  { name: 'VM extension settings', method: 'PUT', path: `${VM}/vm1/extensions/fz?${AV}`, body: `{"location":"westus","properties":${EXT}}` },
  { name: 'VM tags', method: 'PUT', path: `${VM}/vm1?${AV}`, body: '{"location":"westus","tags":@@}' },
  {
    name: 'scale-set model', method: 'PUT', path: `${VMSS}/ss1?${AV}`,
    body: `{"location":"westus","sku":{"capacity":2},"properties":{"upgradePolicy":{"mode":"Manual"},`
      + `"virtualMachineProfile":{"extensionProfile":{"extensions":[{"name":"ama","properties":${EXT}}]}}}}`,
  },
  { name: 'scale-set PATCH', method: 'PATCH', path: `${VMSS}/ss1?${AV}`, body: '{"tags":@@}' },
  {
    name: 'maintenance extensionProperties', method: 'PUT', path: `${CFG}/fz?${AV}`,
    body: `{"location":"westus","properties":{"maintenanceScope":"Extension","extensionProperties":@@,"maintenanceWindow":${WINDOW}}}`,
  },
  { name: 'publish a version', method: 'PUT', path: `${TYPES}/${AMA.type}/versions/1.31.0.0`, token: PUBLISHER_TOKEN, body: '{"os":["linux"],"critical":false,"regions":@@}' },
];

const INHERITED = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'];

interface Answer { status: number; text: string; headers: Headers }

describe('hardening fuzz: no request halts the engine, a refused one changes nothing', () => {
  let s: TestServer;
  const fingerprint = () => {
    const st = s.runtime.engine.state;
    const db = s.store.database;
    // The saved clock and simulated fleet are the server's own bookkeeping, not what requests change.
    return JSON.stringify({
      machines: [...st.fleet.machines.values()], sets: [...st.fleet.scaleSets.values()],
      instances: [...st.fleet.instances.values()].flatMap((m) => [...m.values()]),
      rollouts: [...st.rollouts.values()].map((r) => [r.id, r.status]), catalog: st.catalog.listTypes(), configs: [...st.maintenance.configs.keys()],
      lastEvent: db.prepare('SELECT max(seq) AS seq FROM events').get(),
      documents: db.prepare("SELECT key, body FROM arm_documents WHERE key NOT LIKE '/phasewise/%' ORDER BY key").all(),
    });
  };

  before(async () => {
    s = await startTestServer({ maxBodyBytes: 256 * 1024 });
    const ok = async (method: string, path: string, body: unknown, token = TEST_TOKEN) => {
      const r = await call(s.url, method, path, body, token);
      assert.ok(r.status < 300, `seeding ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await ok('PUT', `${RGP}?${AV}`, { location: 'westus' });
    await ok('PUT', `${TYPES}/${AMA.type}`, { supportsAutomaticUpgrade: true });
    await ok('PUT', `${TYPES}/${AMA.type}/versions/1.30.0.0`, { os: ['linux'] });
    await ok('PUT', `${VM}/vm1?${AV}`, { location: 'westus' });
    await ok('PUT', `${VM}/vm1/extensions/ama?${AV}`, JSON.parse(TARGETS[0]!.body.replace('@@', '{}')));
    await ok('PUT', `${VMSS}/ss1?${AV}`, JSON.parse(TARGETS[2]!.body.replace('@@', '{}')));
    await eventually(async () => [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]).every((i) => i.status !== 'Transitioning'), 20_000, 'the seed to settle');
  });
  after(async () => s?.stop());

  async function send(method: string, path: string, body: string | undefined, token = TEST_TOKEN, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${s.url}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body } : {}),
    });
    return { status: res.status, text: await res.text(), headers: res.headers };
  }

  /** The rules every answer keeps; `where` describes the request for the failure message. */
  function check(a: { status: number; text: string; requestId: string | null; contentType: string | null }, where: string, before: string): void {
    const shown = `${where} → ${a.status} ${a.text.slice(0, 300)}`;
    assert.ok(a.status < 500, `never a 5xx: ${shown}`);
    assert.equal(s.runtime.engine.haltedBecause, null, `the engine is not halted after ${shown}`);
    assert.ok(a.requestId, `x-ms-request-id: ${shown}`);
    if (a.status >= 400) {
      assert.match(a.contentType ?? '', /^application\/json/, shown);
      const body = JSON.parse(a.text) as { error?: { code?: unknown; message?: unknown } };
      assert.ok(typeof body.error?.code === 'string' && typeof body.error.message === 'string', `an ARM error body: ${shown}`);
      assert.equal(fingerprint(), before, `a refused request changes nothing: ${shown}`);
    }
  }

  async function probe(method: string, path: string, body: string | undefined, token = TEST_TOKEN, headers: Record<string, string> = {}): Promise<number> {
    const before = fingerprint();
    const a = await send(method, path, body, token, headers);
    const answer = { status: a.status, text: a.text, requestId: a.headers.get('x-ms-request-id'), contentType: a.headers.get('content-type') };
    check(answer, `${method} ${path.slice(0, 120)} ${body?.slice(0, 120) ?? ''}`, before);
    return a.status;
  }

  const target = fc.constantFrom(...TARGETS);
  const fill = (t: (typeof TARGETS)[number], value: string) => probe(t.method, t.path, t.body.replace('@@', value), t.token);

  test('depth: nesting from 20 to 5,000 levels, arrays and objects, answers 400 past the limit and never halts', async () => {
    const nest = fc.tuple(fc.integer({ min: 20, max: 5000 }), fc.constantFrom('array', 'object', 'mixed')).map(([depth, kind]) => {
      const open = kind === 'array' ? '[' : kind === 'object' ? '{"a":' : '[{"a":';
      const close = kind === 'array' ? ']' : kind === 'object' ? '}' : '}]';
      const levels = kind === 'mixed' ? Math.ceil(depth / 2) : depth;
      return `{"x":${open.repeat(levels)}1${close.repeat(levels)}}`;
    });
    await fc.assert(fc.asyncProperty(target, nest, async (t, v) => {
      const status = await fill(t, v);
      if (v.length > 200) assert.equal(status, 400);
    }), { seed: SEED, numRuns: runs(60), endOnFailure: true });
  });

  test('size: members, values, keys and strings at and over the limits', async () => {
    const big = fc.oneof(
      fc.integer({ min: 990, max: 1010 }).map((n) => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',')}}`),
      fc.integer({ min: 19_990, max: 20_010 }).map((n) => `{"a":[${Array(n).fill(0).join(',')}]}`),
      fc.integer({ min: 250, max: 260 }).map((n) => `{"${'k'.repeat(n)}":1}`),
      fc.integer({ min: 32_760, max: 32_780 }).map((n) => `{"s":"${'x'.repeat(n)}"}`),
      fc.integer({ min: 200_000, max: 300_000 }).map((n) => `{"s":"${'y'.repeat(n)}"}`),
    );
    await fc.assert(fc.asyncProperty(target, big, async (t, v) => { await fill(t, v); }), { seed: SEED + 1, numRuns: runs(40), endOnFailure: true });
  });

  test('unicode and NUL in values, keys and path segments', async () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('\u0000', 'a\u0000b', '\u202Eevil', '𝔘𝔫𝔦', '\uFEFF', 'ﷺ'.repeat(30)));
    const value = fc.oneof(
      text.map((x) => `{${JSON.stringify(x)}:${JSON.stringify(x)}}`),
      fc.constantFrom('{"s":"\\ud800"}', '{"\\udfff":"x"}', '{"s":"\\u0000"}', '{"a":"\\uDBFF\\uDFFF"}'),
    );
    await fc.assert(fc.asyncProperty(target, value, async (t, v) => { await fill(t, v); }), { seed: SEED + 2, numRuns: runs(60), endOnFailure: true });
    await fc.assert(fc.asyncProperty(text, async (name) => {
      await probe('PUT', `${VM}/${encodeURIComponent(name)}?${AV}`, '{"location":"westus"}');
    }), { seed: SEED + 3, numRuns: runs(40), endOnFailure: true });
  });

  test('duplicate and inherited keys: refused or read as own properties, never as Object.prototype members', async () => {
    const key = fc.constantFrom(...INHERITED);
    const value = fc.oneof(
      fc.tuple(key, fc.constantFrom(...INHERITED, 'Allow', 'Deny')).map(([k, v]) => `{${JSON.stringify(k)}:${JSON.stringify(v)}}`),
      fc.tuple(key, key).map(([a, b]) => `{"EmergencyBypass":${JSON.stringify(a)},${JSON.stringify(b)}:"x"}`),
      fc.constantFrom('{"a":1,"a":2}', '{"EmergencyBypass":"Allow","EmergencyBypass":"Deny"}', '{"a":{"b":1,"b":1}}', '{"__proto__":{"polluted":true}}'),
    );
    await fc.assert(fc.asyncProperty(target, value, async (t, v) => {
      const status = await fill(t, v);
      if (/"(\w+)":[^,}]*,"\1":/.test(v) || v.includes('"__proto__":')) assert.equal(status, 400, v);
    }), { seed: SEED + 4, numRuns: runs(60), endOnFailure: true });
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
    const bypass = [...s.runtime.engine.state.maintenance.configs.values()].map((c) => c.emergencyBypass);
    assert.ok(bypass.every((b) => b === false), 'no inherited name read as Allow');
  });

  test('numbers out of range, where numbers and where strings are expected', async () => {
    const num = fc.constantFrom('1e400', '-1e400', '1e-400', '123456789012345678901234567890', '-0', '1E308', '9007199254740993', '0.1e-999');
    await fc.assert(fc.asyncProperty(target, num, async (t, n) => {
      const status = await fill(t, `{"n":${n}}`);
      if (/e400|e999/i.test(n) && !n.startsWith('0.') && !n.includes('e-')) assert.equal(status, 400, n);
    }), { seed: SEED + 5, numRuns: runs(40), endOnFailure: true });
    await fc.assert(fc.asyncProperty(num, async (n) => {
      await probe('PATCH', `${VMSS}/ss1?${AV}`, `{"sku":{"capacity":${n}}}`);
    }), { seed: SEED + 6, numRuns: runs(16), endOnFailure: true });
  });

  test('long URLs, path segments, headers and api-versions', async () => {
    const len = fc.integer({ min: 900, max: 20_000 });
    await fc.assert(fc.asyncProperty(fc.constantFrom('segment', 'query', 'header', 'api-version', 'client-id'), len, async (where, n) => {
      const raw = where === 'segment' ? rawGet(`${VM}/${'v'.repeat(n)}?${AV}`, TEST_TOKEN)
        : where === 'query' ? rawGet(`${VM}?${AV}&x=${'q'.repeat(n)}`, TEST_TOKEN)
          : where === 'header' ? rawGet(`${VM}?${AV}`, TEST_TOKEN, `X-Long: ${'h'.repeat(n)}\r\n`)
            : where === 'api-version' ? rawGet(`${VM}?api-version=${'9'.repeat(n)}`, TEST_TOKEN)
              : rawGet(`${VM}?${AV}`, TEST_TOKEN, `x-ms-client-request-id: ${'c'.repeat(n)}\r\n`);
      const before = fingerprint();
      const res = parseResponse(await rawExchange(s.url, raw, 5_000, true));
      check({ status: res.status, text: res.body, requestId: res.headers['x-ms-request-id'] ?? null, contentType: res.headers['content-type'] ?? null }, `${where} of ${n}`, before);
      // Nothing copied from the request makes the answer's headers unbounded.
      assert.ok(res.text.indexOf('\r\n\r\n') < 4096, `answer headers stay small (${where} of ${n})`);
    }), { seed: SEED + 7, numRuns: runs(40), endOnFailure: true });
  });

  test('bad framing over raw TLS: an ARM error with a request id and Connection: close, or a closed socket, and the server goes on', async () => {
    const frames = fc.oneof(
      fc.constantFrom(
        `POST ${VM}/vm1?${AV} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
        `POST ${VM}/vm1?${AV} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n0123456789`,
        `POST ${VM}/vm1?${AV} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n`,
        `GET ${VM}?${AV} HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n`,
        `GET ${VM}?${AV} HTTP/9.9\r\n\r\n`,
        `GET\r\n\r\n`,
        `\u0000\u0001\u0002\r\n\r\n`,
        `GET ${VM}?${AV} HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n`,
        `GET ${VM}?${AV} HTTP/1.1\nHost: x\n\n`,
      ),
      fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 200 }).map((g) => `${g}\r\n\r\n`),
    );
    await fc.assert(fc.asyncProperty(frames, async (frame) => {
      const before = fingerprint();
      const text = await rawExchange(s.url, Buffer.from(frame, 'latin1'), 3_000, true);
      if (text.startsWith('HTTP/1.1')) {
        const res = parseResponse(text);
        check({ status: res.status, text: res.body, requestId: res.headers['x-ms-request-id'] ?? null, contentType: res.headers['content-type'] ?? null }, JSON.stringify(frame.slice(0, 80)), before);
        if (res.status === 400 && res.body.includes('not well-formed HTTP')) assert.equal(res.headers.connection, 'close');
      }
      assert.equal(fingerprint(), before);
    }), { seed: SEED + 8, numRuns: runs(40), endOnFailure: true });
    assert.equal((await call(s.url, 'GET', `${RGP}?${AV}`)).status, 200, 'the server still answers');
  });

  test('ARM envelope properties (location, zones, tags, sku, properties, …) of every JSON type on every write route: never a 5xx, a refusal changes nothing', async () => {
    // Every pair, not a sample: a PATCH of a scale set read `location` and `zones` without a type (a number there was a 500).
    const ext = JSON.parse(TARGETS[0]!.body.replace('@@', '{}')) as Record<string, unknown>;
    const routes: Array<[string, string, Record<string, unknown>]> = [
      ['PUT', `${RGP}?${AV}`, { location: 'westus' }],
      ['PUT', `${VM}/vm1?${AV}`, { location: 'westus' }],
      ['PUT', `${VM}/vm1/extensions/ama?${AV}`, ext],
      ['PATCH', `${VM}/vm1/extensions/ama?${AV}`, { properties: { settings: {} } }],
      ['PUT', `${VMSS}/ss1?${AV}`, JSON.parse(TARGETS[2]!.body.replace('@@', '{}')) as Record<string, unknown>],
      ['PATCH', `${VMSS}/ss1?${AV}`, { tags: {} }],
      ['PUT', `${VMSS}/ss1/extensions/ama?${AV}`, { properties: ext.properties }],
      ['PATCH', `${VMSS}/ss1/extensions/ama?${AV}`, { properties: { settings: {} } }],
      ['PUT', `${VMSS}/ss1/virtualMachines/0/extensions/ama?${AV}`, ext],
      ['PUT', `${RGP}/providers/Microsoft.Compute/availabilitySets/as1?${AV}`, { location: 'westus' }],
      ['PUT', `${CFG}/env?${AV}`, JSON.parse(TARGETS[4]!.body.replace('@@', '{}')) as Record<string, unknown>],
      ['PUT', `${RGP}/providers/Microsoft.HybridCompute/machines/arc1?${AV}`, { location: 'westus', properties: { osType: 'linux' } }],
    ];
    const keys = ['location', 'zones', 'tags', 'sku', 'properties', 'identity', 'plan', 'kind', 'etag', 'extendedLocation', 'managedBy', 'id', 'name', 'type'];
    const values: unknown[] = [null, true, 1, -1.5, 'x', '', [], ['1'], [1], {}, { a: 1 }];
    const instances = () => [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]);
    const settled = () => eventually(async () => instances().every((i) => i.status !== 'Transitioning'), 20_000, 'writes to settle');
    for (const [method, path, body] of routes) {
      for (const key of keys) {
        for (const value of values) {
          const status = await probe(method, path, JSON.stringify({ ...body, [key]: value }));
          // An accepted write may start an install; let it end, so the next refusal is judged on a state at rest.
          if (status < 300) await settled();
        }
      }
    }
  });

  test('concurrent conflicting writes: each a success or a 4xx, and the resource ends as one of them', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.constantFrom('put-a', 'put-b', 'patch', 'delete', 'upgrade'), { minLength: 2, maxLength: 8 }), async (ops) => {
      const path = `${VMSS}/ss1/virtualMachines/0/extensions/ama?${AV}`;
      const answers = await Promise.all(ops.map((op) => {
        if (op === 'delete') return send('DELETE', path, undefined);
        if (op === 'upgrade') return send('POST', `${VMSS}/ss1/manualUpgrade?${AV}`, '{"instanceIds":["0","1"]}');
        if (op === 'patch') return send('PATCH', path, '{"properties":{"settings":{"who":"patch"}}}');
        return send('PUT', path, TARGETS[0]!.body.replace('@@', `{"who":"${op}"}`));
      }));
      for (const [i, a] of answers.entries()) {
        assert.ok(a.status < 500, `${ops[i]} → ${a.status} ${a.text.slice(0, 200)}`);
        if (a.status >= 400) assert.ok((JSON.parse(a.text) as { error?: { code?: string } }).error?.code, a.text);
      }
      assert.equal(s.runtime.engine.haltedBecause, null);
      const now = await call(s.url, 'GET', path);
      assert.ok(now.status === 200 || now.status === 404, JSON.stringify(now.body));
      if (now.status === 200) assert.ok(['put-a', 'put-b', 'patch', undefined].includes(now.body.properties.settings?.who), JSON.stringify(now.body.properties.settings));
      // Settle before the next round, so an install in flight does not make every write a 409.
      await eventually(async () => [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]).every((i) => i.status !== 'Transitioning'), 20_000, 'writes to settle');
    }), { seed: SEED + 9, numRuns: runs(12), endOnFailure: true });
  });

  test('one write gives at most maxRequestSettingsBytes of settings to all its instances: a large model on many is 400, nothing changed', async () => {
    const big = JSON.stringify({ a: 'x'.repeat(30_000), b: 'y'.repeat(30_000) }); // strings are bounded at 32 KiB each
    const model = (capacity: number, mode = 'Automatic') => `{"location":"westus","sku":{"capacity":${capacity}},"properties":{"upgradePolicy":{"mode":"${mode}"},`
      + `"virtualMachineProfile":{"extensionProfile":{"extensions":[{"name":"ama","properties":${EXT.replace('@@', big)}}]}}}}`;
    const before = fingerprint();
    const many = await call(s.url, 'PUT', `${VMSS}/wide?${AV}`, model(1000));
    assert.equal(many.status, 400, JSON.stringify(many.body).slice(0, 600));
    assert.equal(many.body.error.code, 'InvalidParameter');
    assert.equal(many.body.error.target, 'sku.capacity');
    assert.match(many.body.error.message, /at most 2\d\d instances per request/);
    assert.equal(fingerprint(), before, 'nothing stored');
    // Within the budget it is created; growing it past the budget in one step is refused, in steps it is not.
    assert.equal((await call(s.url, 'PUT', `${VMSS}/wide?${AV}`, model(4))).status, 201);
    await eventually(async () => (await call(s.url, 'GET', `${VMSS}/wide?${AV}`)).body?.properties?.provisioningState === 'Succeeded' || undefined, 60_000);
    // The set answers Succeeded at once; its instances' installs end later. Judged at rest, as the other refusals are.
    const wide = () => [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]).filter((i) => i.machineId.includes('/virtualmachinescalesets/wide/'));
    await eventually(async () => (wide().length === 4 && wide().every((i) => i.status !== 'Transitioning')) || undefined, 60_000, 'the installs on wide to end');
    const grown = fingerprint();
    const leap = await call(s.url, 'PATCH', `${VMSS}/wide?${AV}`, '{"sku":{"capacity":1000}}');
    assert.equal(leap.status, 400, JSON.stringify(leap.body));
    assert.equal(leap.body.error.target, 'sku.capacity');
    assert.equal(fingerprint(), grown, 'nothing changed');
    const step = await call(s.url, 'PATCH', `${VMSS}/wide?${AV}`, '{"sku":{"capacity":200}}');
    assert.ok(step.status === 200 || step.status === 202, JSON.stringify(step.body));
    assert.equal(s.runtime.engine.haltedBecause, null);
  });
});
