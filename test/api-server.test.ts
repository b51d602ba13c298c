/**
 * The server's shell: configuration, the generated certificate, tokens and roles, ARM conventions
 * (case-insensitive paths, api-version, request ids), long-running operation status and monitor URLs,
 * and state that survives a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, configSchema, loadConfig } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import { loadOrCreateTls } from '../src/server/tls.js';
import { SecretBox } from '../src/api/arm/secrets.js';
import { call, CERT, eventually, KEY, PUBLISHER_TOKEN, READER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2026-03-01';

describe('configuration', () => {
  test('file, then environment, then options; unknown fields and bad values are named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-config-'));
    try {
      const file = join(dir, 'serve.yaml');
      writeFileSync(file, 'port: 9000\nclockFactor: 60\nsubscriptions: [a]\n');
      const c = loadConfig(file, { PHASEWISE_PORT: '9100', PHASEWISE_SUBSCRIPTIONS: 'x, y' }, { clockFactor: 120 });
      assert.equal(c.port, 9100);
      assert.equal(c.clockFactor, 120);
      assert.deepEqual(c.subscriptions, ['x', 'y']);
      writeFileSync(file, 'port: 9000\nprot: 1\ntokens: [{token: short, name: a, roles: [admin]}]\n');
      assert.throws(() => loadConfig(file, {}), (e: Error) => e instanceof ConfigError && /prot/.test(e.message) && /tokens\.0\.token/.test(e.message) && /tokens\.0\.roles\.0/.test(e.message));
      assert.throws(() => loadConfig(join(dir, 'missing.yaml'), {}), ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TLS', () => {
  test('a first start generates a self-signed certificate that clients can trust, and keeps it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-tls-'));
    try {
      const config = configSchema.parse({ host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', subscriptions: [SUB] });
      const first = await loadOrCreateTls(undefined, dir, '127.0.0.1');
      assert.equal(first.generated, true);
      const server = await startServer(config);
      try {
        assert.ok(server.token && server.token.length >= 20, 'a token is generated and printed');
        assert.equal(server.certPath, first.certPath);
        const port = new URL(server.url).port;
        const status = await new Promise<number>((resolve, reject) => {
          const req = request({ host: 'localhost', port, path: `/subscriptions/${SUB}?${AV}`, ca: first.cert, headers: { authorization: `Bearer ${server.token}` } }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 200);
      } finally {
        await server.close();
      }
      assert.equal((await loadOrCreateTls(undefined, dir, '127.0.0.1')).generated, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ARM conventions', () => {
  test('tokens and roles: 401 without a valid token, 403 without the role, nothing changed', async () => {
    const s = await startTestServer();
    try {
      const path = `/subscriptions/${SUB}/resourcegroups/rg1?api-version=2021-04-01`;
      const none = await call(s.url, 'PUT', path, { location: 'westus' }, null);
      assert.equal(none.status, 401);
      assert.equal(none.body.error.code, 'AuthenticationFailed');
      const bad = await call(s.url, 'PUT', path, { location: 'westus' }, 'not-a-known-token-at-all');
      assert.equal(bad.status, 401);
      assert.equal(bad.body.error.code, 'InvalidAuthenticationToken');
      const reader = await call(s.url, 'PUT', path, { location: 'westus' }, READER_TOKEN);
      assert.equal(reader.status, 403);
      assert.equal(reader.body.error.code, 'AuthorizationFailed');
      assert.match(reader.body.error.message, /contributor/);
      assert.equal((await call(s.url, 'GET', path, undefined, READER_TOKEN)).status, 404, 'the refused writes created nothing');
    } finally {
      await s.stop();
    }
  });

  test('paths are case-insensitive, api-version is required and echoed, request ids come back', async () => {
    const s = await startTestServer();
    try {
      assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/RG1?${AV}`, { location: 'westus' })).status, 201);
      const got = await call(s.url, 'GET', `/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rg1?${AV}`, undefined, TEST_TOKEN, { 'x-ms-client-request-id': 'abc-123' });
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('x-ms-client-request-id'), 'abc-123');
      assert.ok(got.headers.get('x-ms-request-id'));
      const missing = await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/rg1`);
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.code, 'MissingApiVersionParameter');
      const unknown = await call(s.url, 'GET', `/subscriptions/${SUB}/nothing/here?${AV}`);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, 'NotFound');
    } finally {
      await s.stop();
    }
  });

  test('ids echo the casing they were created with: a PUT or GET in any other casing reads the same resource and answers its id as created', async () => {
    const s = await startTestServer();
    try {
      const rg = `/subscriptions/${SUB}/resourceGroups/rg1`;
      const resources: Array<[string, Record<string, unknown>]> = [
        [rg, { location: 'westus' }],
        [`${rg}/providers/Microsoft.Compute/virtualMachines/vm1`, { location: 'westus' }],
        [`${rg}/providers/Microsoft.Compute/availabilitySets/as1`, { location: 'westus' }],
        [`${rg}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1`, { location: 'westus', sku: { capacity: 1 }, properties: { upgradePolicy: { mode: 'Manual' } } }],
        [`${rg}/providers/Microsoft.HybridCompute/machines/arc1`, { location: 'westus', properties: { osType: 'linux' } }],
        [`${rg}/providers/Microsoft.Maintenance/maintenanceConfigurations/cfg1`, { location: 'westus', properties: { maintenanceScope: 'Host' } }],
      ];
      // Availability sets answer 200 on create too: Compute's spec (and so the SDK) knows no 201 for them.
      for (const [id, body] of resources) assert.equal((await call(s.url, 'PUT', `${id}?${AV}`, body)).status, id.includes('/availabilitySets/') ? 200 : 201, id);
      const recase = (id: string, up: boolean[]) => [...id].map((ch, i) => (up[i % up.length] ? ch.toUpperCase() : ch.toLowerCase())).join('');
      await fc.assert(fc.asyncProperty(fc.constantFrom(...resources), fc.array(fc.boolean(), { minLength: 1, maxLength: 40 }), fc.boolean(), async ([id, body], up, put) => {
        const path = `${recase(id, up)}?${AV}`;
        const r = put ? await call(s.url, 'PUT', path, body) : await call(s.url, 'GET', path);
        assert.equal(r.status, 200, `${put ? 'PUT' : 'GET'} ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.id, id, `${put ? 'PUT' : 'GET'} ${path}`);
        assert.equal(r.body.name, id.slice(id.lastIndexOf('/') + 1));
        assert.equal((await call(s.url, 'GET', `${id}?${AV}`)).body.id, id, 'the stored id keeps its casing');
      }), { seed: 1300, numRuns: 60, endOnFailure: true });
      const vms = await call(s.url, 'GET', `${rg}/providers/Microsoft.Compute/virtualMachines?${AV}`);
      assert.deepEqual(vms.body.value.map((v: { id: string }) => v.id), [resources[1]![0]], 'one VM, not one per casing');
      // Phasewise's own views take ids and names in any casing too, and answer them as stored.
      const machine = await call(s.url, 'GET', `/phasewise/machines/${encodeURIComponent(resources[1]![0].toUpperCase())}`);
      assert.equal(machine.status, 200, JSON.stringify(machine.body));
      const image = '/phasewise/images/publishers/Canonical/offers/Ubuntu-24_04/skus/Server/versions/1.0.0';
      assert.equal((await call(s.url, 'PUT', image, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
      const read = await call(s.url, 'GET', image.toLowerCase());
      assert.deepEqual([read.status, read.body.publisher, read.body.offer, read.body.sku], [200, 'Canonical', 'Ubuntu-24_04', 'Server']);
    } finally {
      await s.stop();
    }
  });

  test('conditional writes: If-None-Match: * never replaces, If-Match: * never creates, a refused one changes nothing; create-only PUTs sent at once create once', async () => {
    const s = await startTestServer();
    try {
      const rg = `/subscriptions/${SUB}/resourceGroups/rg1`;
      assert.equal((await call(s.url, 'PUT', `${rg}?${AV}`, { location: 'westus' })).status, 201);
      const kinds: Array<[string, (n: number) => Record<string, unknown>]> = [
        [`${rg}/providers/Microsoft.Compute/virtualMachines/vm`, (n) => ({ location: 'westus', tags: { n: String(n) } })],
        [`${rg}/providers/Microsoft.Compute/virtualMachineScaleSets/ss`, (n) => ({
          location: 'westus', tags: { n: String(n) }, sku: { capacity: 0 }, properties: { upgradePolicy: { mode: 'Manual' } },
        })],
        [`${rg}/providers/Microsoft.Maintenance/maintenanceConfigurations/mc`, (n) => ({ location: 'westus', tags: { n: String(n) }, properties: { maintenanceScope: 'Host' } })],
        [`/subscriptions/${SUB}/resourceGroups/g`, (n) => ({ location: 'westus', tags: { n: String(n) } })],
      ];
      const stored = new Map<string, string>(); // path → the tag `n` it holds
      const headers = fc.constantFrom<Record<string, string>>(
        { 'if-none-match': '*' }, { 'if-match': '*' }, { 'if-match': '"0x8D"' }, { 'if-none-match': '"0x8D"' }, { 'if-match': '*', 'if-none-match': '*' },
      );
      let n = 0;
      await fc.assert(fc.asyncProperty(fc.constantFrom(...kinds), fc.integer({ min: 1, max: 3 }), headers, fc.boolean(), async ([base, body], which, h, del) => {
        const path = `${base}${which}`;
        if (del && base.endsWith('/g')) return; // resource groups are never deleted here
        const exists = stored.has(path);
        const tag = String(++n);
        const r = await call(s.url, del ? 'DELETE' : 'PUT', `${path}?${AV}`, del ? undefined : body(Number(tag)), TEST_TOKEN, h);
        const refused = (h['if-none-match'] !== undefined && (h['if-none-match'] !== '*' || exists)) || (h['if-match'] !== undefined && (h['if-match'] !== '*' || !exists));
        const where = `${del ? 'DELETE' : 'PUT'} ${path} ${JSON.stringify(h)} (exists: ${exists}) → ${r.status} ${JSON.stringify(r.body)}`;
        if (refused) {
          assert.equal(r.status, h['if-none-match'] === '"0x8D"' ? 400 : 412, where);
          assert.match(r.body.error.code, /^(PreconditionFailed|InvalidHeaderValue)$/, where);
        } else {
          assert.ok(r.status < 300, where);
          if (del) stored.delete(path); else stored.set(path, tag);
        }
        const now = await call(s.url, 'GET', `${path}?${AV}`);
        assert.equal(now.status, stored.has(path) ? 200 : 404, `after ${where}`);
        if (stored.has(path)) assert.equal(now.body.tags.n, stored.get(path), `what is stored is what the last accepted write sent, after ${where}`);
      }), { seed: 1500, numRuns: 120, endOnFailure: true });
      // Create-only PUTs of one new resource at once: one creates it, the others find it there.
      for (const [base, body] of kinds) {
        const path = `${base}-race`;
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => call(s.url, 'PUT', `${path}?${AV}`, body(100 + i), TEST_TOKEN, { 'if-none-match': '*' })));
        const created = answers.filter((a) => a.status === 201);
        assert.equal(created.length, 1, `${path}: ${answers.map((a) => a.status).join(',')}`);
        assert.ok(answers.every((a) => a.status === 201 || a.status === 412), answers.map((a) => a.status).join(','));
        assert.equal((await call(s.url, 'GET', `${path}?${AV}`)).body.tags.n, created[0]!.body.tags.n, 'the first create stands');
      }
      // Clients that go away mid-request leave no turn held: a conditional write after them answers.
      const gone = `${rg}/providers/Microsoft.Compute/virtualMachines/gone`;
      for (let i = 0; i < 20; i++) {
        const c = new AbortController();
        const headers = { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json', 'if-none-match': '*' };
        const sent = fetch(`${s.url}${gone}?${AV}`, { method: 'PUT', signal: c.signal, body: '{"location":"westus"}', headers });
        setTimeout(() => c.abort(), i % 5);
        await sent.then((r) => r.body?.cancel(), () => undefined);
      }
      const late = await Promise.race([call(s.url, 'PUT', `${gone}?${AV}`, { location: 'westus' }, TEST_TOKEN, { 'if-match': '*' }), new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
      assert.ok(late && (late.status === 200 || late.status === 412), `answered: ${JSON.stringify(late?.body)}`);
    } finally {
      await s.stop();
    }
  });

  test('a long-running PUT: Azure-AsyncOperation reads InProgress then Succeeded; the monitor answers 202 then 200, never 204', async () => {
    // A slow clock (the simulated install takes about a minute, here about two seconds) so it is still running when we look.
    const s = await startTestServer({ clockFactor: 30 });
    try {
      await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' });
      await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true });
      await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] });
      await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}`, { location: 'westus' });
      const put = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1/extensions/agent?${AV}`, { properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0' } });
      assert.equal(put.status, 201);
      assert.equal(put.body.properties.provisioningState, 'Creating');
      const status = put.headers.get('azure-asyncoperation')!;
      assert.match(status, /^https:\/\/localhost:\d+\/subscriptions\/sub1\/providers\/Microsoft\.Compute\/locations\/westus\/operations\/[0-9a-f-]+\?api-version=2026-03-01$/);
      const path = status.replace(/^https:\/\/[^/]+/, '');
      const running = await call(s.url, 'GET', path);
      assert.equal(running.status, 200);
      assert.equal(running.body.status, 'InProgress');
      const monitor = await call(s.url, 'GET', path.replace('?', '?monitor=true&'));
      assert.equal(monitor.status, 202);
      assert.ok(monitor.headers.get('location'));
      await eventually(async () => (await call(s.url, 'GET', path)).body.status === 'Succeeded', 60_000, 'the install to finish');
      const done = await call(s.url, 'GET', path.replace('?', '?monitor=true&'));
      assert.equal(done.status, 200);
    } finally {
      await s.stop();
    }
  });

  test('what a client stored survives a restart: resources, tags, the extension and its settings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pw-restart-'));
    const config = configSchema.parse({ host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', subscriptions: [SUB], clockFactor: 2_000, retryAfterSeconds: 0, tls: { cert: CERT, key: KEY }, tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }] });
    try {
      let server = await startServer(config);
      let url = server.url.replace('127.0.0.1', 'localhost');
      await call(url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus', tags: { team: 'web' } });
      await call(url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true });
      await call(url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] });
      await call(url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.HybridCompute/machines/arc1?${AV}`, { location: 'westus', tags: { site: 'lab' } });
      const ext = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.HybridCompute/machines/arc1/extensions/agent?${AV}`;
      assert.equal((await call(url, 'PUT', ext, { location: 'westus', tags: { a: 'b' }, properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', settings: { level: 3 }, protectedSettings: { password: 'p' } } })).status, 200, 'Arc creates answer 200 (its spec has no 201)');
      await eventually(async () => (await call(url, 'GET', ext)).body.properties.provisioningState === 'Succeeded', 20_000, 'the install');
      const before = (await call(url, 'GET', ext)).body;
      await server.close();
      server = await startServer(config);
      url = server.url.replace('127.0.0.1', 'localhost');
      try {
        const afterRestart = (await call(url, 'GET', ext)).body;
        delete before.properties.instanceView.status.time;
        delete afterRestart.properties.instanceView.status.time;
        assert.deepEqual(afterRestart, before);
        assert.equal(afterRestart.properties.protectedSettings, undefined);
        assert.deepEqual((await call(url, 'GET', `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.HybridCompute/machines/arc1?${AV}`)).body.tags, { site: 'lab' });
        assert.deepEqual((await call(url, 'GET', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`)).body.tags, { team: 'web' });
      } finally {
        await server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a deleted machine takes its extensions with it: the same name created again starts with none (Arc and VM)', async () => {
    const s = await startTestServer();
    try {
      await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' });
      await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent', { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN);
      await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Agent/versions/1.0.0.0', { os: ['linux'] }, PUBLISHER_TOKEN);
      const machines = [
        `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.HybridCompute/machines/arc9`,
        `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm9`,
      ];
      for (const m of machines) {
        assert.ok((await call(s.url, 'PUT', `${m}?${AV}`, { location: 'westus' })).status < 300);
        const ext = await call(s.url, 'PUT', `${m}/extensions/agent?${AV}`, { location: 'westus', properties: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', protectedSettings: { password: 'p' } } });
        assert.ok(ext.status < 300, JSON.stringify(ext.body));
        assert.ok((await call(s.url, 'DELETE', `${m}?${AV}`)).status < 300);
        assert.ok((await call(s.url, 'PUT', `${m}?${AV}`, { location: 'westus' })).status < 300);
        assert.equal((await call(s.url, 'GET', `${m}/extensions/agent?${AV}`)).status, 404, `${m}: the old extension is gone`);
        assert.deepEqual((await call(s.url, 'GET', `${m}/extensions?${AV}`)).body.value, [], `${m}: no extensions listed`);
        // Nothing of the old extension is left in the store (its sealed protected settings included).
        const left = s.store.database.prepare('SELECT COUNT(*) AS n FROM arm_documents WHERE lower(id) LIKE ?').get(`${m.toLowerCase()}/extensions/%`) as { n: number };
        assert.equal(left.n, 0, `${m}: extension documents left behind`);
      }
    } finally {
      await s.stop();
    }
  });

  test('write-only secrets survive a GET-then-PUT (they cannot be sent back); a PUT that sends one replaces only that one', async () => {
    const key = 'ab'.repeat(32);
    const s = await startTestServer({ secretKey: key });
    try {
      const box = new SecretBox(Buffer.from(key, 'hex'));
      const rg = `/subscriptions/${SUB}/resourceGroups/rg1`;
      await call(s.url, 'PUT', `${rg}?${AV}`, { location: 'westus' });
      const vm = `${rg}/providers/Microsoft.Compute/virtualMachines/vm1`;
      const set = `${rg}/providers/Microsoft.Compute/virtualMachineScaleSets/ss1`;
      const secretsOf = (id: string) => {
        const row = s.store.database.prepare('SELECT body FROM arm_documents WHERE key = ?').get(id.toLowerCase()) as { body: string };
        const doc = JSON.parse(row.body) as { sealedOsProfile?: string; sealed?: Record<string, string> };
        const sealed = doc.sealedOsProfile ?? doc.sealed?.['$osProfile'];
        return sealed === undefined ? undefined : box.open(sealed);
      };
      const secrets = { adminPassword: 'P@ssw0rd!', customData: 'Y2xvdWQ=' };
      assert.equal((await call(s.url, 'PUT', `${vm}?${AV}`, { location: 'westus', properties: { osProfile: { computerName: 'vm1', adminUsername: 'me', ...secrets } } })).status, 201);
      const model = { virtualMachineProfile: { osProfile: { computerNamePrefix: 'ss', ...secrets } } };
      assert.equal((await call(s.url, 'PUT', `${set}?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: model })).status, 201);
      for (const id of [vm, set]) {
        const read = await call(s.url, 'GET', `${id}?${AV}`);
        // What an SDK's read-modify-write sends: the resource as read, a tag changed.
        const again = await call(s.url, 'PUT', `${id}?${AV}`, { ...read.body, tags: { changed: 'yes' } });
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.deepEqual(secretsOf(id), { adminPassword: 'P@ssw0rd!', customData: 'Y2xvdWQ=' }, `${id}: the secrets are kept`);
      }
      const rotate = await call(s.url, 'PUT', `${vm}?${AV}`, { location: 'westus', properties: { osProfile: { computerName: 'vm1', adminUsername: 'me', adminPassword: 'N3w!' } } });
      assert.equal(rotate.status, 200, JSON.stringify(rotate.body));
      assert.deepEqual(secretsOf(vm), { adminPassword: 'N3w!', customData: 'Y2xvdWQ=' }, 'a secret sent again replaces only itself');
      const read = await call(s.url, 'GET', `${set}?${AV}`);
      read.body.properties.virtualMachineProfile.osProfile.adminPassword = 'N3w!';
      assert.equal((await call(s.url, 'PUT', `${set}?${AV}`, read.body)).status, 200);
      assert.deepEqual(secretsOf(set), { adminPassword: 'N3w!', customData: 'Y2xvdWQ=' }, 'the same on a scale set');
    } finally {
      await s.stop();
    }
  });

  test('write-only secrets (adminPassword, customData) are never returned; a deleted scale set is gone', async () => {
    const s = await startTestServer();
    try {
      await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' });
      const vmss = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;
      const put = await call(s.url, 'PUT', `${vmss}/ss?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: { virtualMachineProfile: { osProfile: { computerNamePrefix: 'ss', adminPassword: 'P@ssw0rd!', customData: 'c2VjcmV0' } } } });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      const vm = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}`, { location: 'westus', properties: { osProfile: { adminUsername: 'me', adminPassword: 'P@ssw0rd!' } } });
      assert.equal(vm.status, 201);
      for (const path of [`${vmss}/ss?${AV}`, `${vmss}?${AV}`, `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1?${AV}`]) {
        const text = JSON.stringify((await call(s.url, 'GET', path)).body);
        assert.doesNotMatch(text, /P@ssw0rd|c2VjcmV0|adminPassword|customData/, path);
      }
      assert.equal((await call(s.url, 'GET', `${vmss}/ss?${AV}`)).body.properties.virtualMachineProfile.osProfile.computerNamePrefix, 'ss');
      assert.equal((await call(s.url, 'DELETE', `${vmss}/ss?${AV}`)).status, 200);
      assert.equal((await call(s.url, 'GET', `${vmss}/ss?${AV}`)).status, 404);
      assert.deepEqual((await call(s.url, 'GET', `${vmss}?${AV}`)).body.value, []);
      assert.equal(s.runtime.engine.state.fleet.scaleSets.size, 0);
    } finally {
      await s.stop();
    }
  });
});
