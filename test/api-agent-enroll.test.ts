/**
 * The agent channel's front door: enrollment with tokens (configured and created through the API),
 * the client certificate bound to the machine's key (mTLS: another agent's path is 403, none 401),
 * goal states with ETag/304 and long polls, and protected settings encrypted to the machine.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { decryptWithKey } from '../src/api/agent/protected-settings.js';
import type { GoalState } from '../src/protocol/agent-wire.js';
import { call, CERT, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { enrollBody, handlerZip, machineIdentity, rawRequest, TestAgent, uploadPackage } from './helpers/agent-client.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const ENROLL = 'enroll-token-0123456789abcdef';
const ARC = `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines`;
const VMSS = `/subscriptions/${SUB}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachineScaleSets`;

describe('enrollment and the agent credential', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      enrollmentTokens: [
        { token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' },
        { token: 'expired-token-0123456789abcdef', subscriptionId: SUB, resourceGroup: 'arc', location: 'westus', expiresAt: '2020-01-01T00:00:00Z' },
      ],
    });
    assert.equal((await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`, { location: 'westus' })).status, 201);
    const set = await call(s.url, 'PUT', `${VMSS}/web?${AV}`, { location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 2 }, properties: { upgradePolicy: { mode: 'Manual' } } });
    assert.equal(set.status, 201, JSON.stringify(set.body));
  });
  after(async () => s?.stop());

  test('a new machine registers as an Arc machine that reads through ARM, Connected, with what the agent said', async () => {
    const a = await TestAgent.enroll(s.url, ENROLL, { name: 'edge-1' });
    try {
      assert.match(a.agentId, /^[0-9a-f-]{36}$/);
      assert.equal(a.enrolled.resourceId.toLowerCase(), `${ARC}/edge-1`.toLowerCase());
      assert.match(a.enrolled.clientCertificatePem, /BEGIN CERTIFICATE/);
      const arm = await call(s.url, 'GET', `${ARC}/edge-1?${AV}`);
      assert.equal(arm.status, 200, JSON.stringify(arm.body));
      assert.equal(arm.body.type, 'Microsoft.HybridCompute/machines');
      assert.equal(arm.body.properties.status, 'Connected');
      assert.equal(arm.body.properties.osName, 'Ubuntu');
      assert.equal(arm.body.properties.agentVersion, '0.1.0');
      // The same machine enrolled again while bound: 409, nothing changed.
      const again = await rawRequest(s.url, 'POST', '/v1/enroll', { body: JSON.stringify(enrollBody(machineIdentity(), { name: 'edge-1' })), headers: { authorization: `Bearer ${ENROLL}` } });
      assert.equal(again.status, 409);
      assert.equal(again.json.error.code, 'MachineAlreadyEnrolled');
    } finally {
      a.close();
    }
  });

  test('binds to an existing scale-set instance by its ARM id; an unknown id is 404', async () => {
    const id = `${VMSS}/web/virtualMachines/1`;
    const a = await TestAgent.enroll(s.url, ENROLL, { resourceId: id });
    a.close();
    assert.equal(a.enrolled.resourceId.toLowerCase(), id.toLowerCase());
    const agents = (await call(s.url, 'GET', '/phasewise/agents')).body.value as Array<{ agentId: string; resourceId: string }>;
    assert.ok(agents.some((x) => x.agentId === a.agentId && x.resourceId.toLowerCase() === id.toLowerCase()));
    const body = JSON.stringify(enrollBody(machineIdentity(), { resourceId: `${VMSS}/web/virtualMachines/9` }));
    const missing = await rawRequest(s.url, 'POST', '/v1/enroll', { body, headers: { authorization: `Bearer ${ENROLL}` } });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'ResourceNotFound');
  });

  test('bad, missing and expired tokens are 401; a token made through the API works once created, and is stored hashed', async () => {
    const body = JSON.stringify(enrollBody(machineIdentity(), { name: 'edge-x' }));
    const none = await rawRequest(s.url, 'POST', '/v1/enroll', { body });
    assert.equal(none.status, 401);
    const bad = await rawRequest(s.url, 'POST', '/v1/enroll', { body, headers: { authorization: 'Bearer not-a-token-at-all-0000' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.json.error.code, 'InvalidEnrollmentToken');
    const expired = await rawRequest(s.url, 'POST', '/v1/enroll', { body, headers: { authorization: 'Bearer expired-token-0123456789abcdef' } });
    assert.equal(expired.status, 401);
    assert.equal(expired.json.error.code, 'EnrollmentTokenExpired');
    assert.equal((await call(s.url, 'GET', `${ARC}/edge-x?${AV}`)).status, 404, 'nothing registered');
    const created = await call(s.url, 'PUT', '/phasewise/enrollmentTokens/lab', { subscriptionId: SUB, resourceGroup: 'lab', location: 'eastus', expiresInHours: 2 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const a = await TestAgent.enroll(s.url, created.body.token, { name: 'lab-1' });
    a.close();
    assert.match(a.enrolled.resourceId, /resourceGroups\/lab\/providers/);
    const rows = s.store.database.prepare('SELECT digest FROM agent_enrollment_tokens').all() as Array<{ digest: string }>;
    assert.ok(rows.every((r) => r.digest !== created.body.token && !r.digest.includes(created.body.token)));
    const listed = (await call(s.url, 'GET', '/phasewise/enrollmentTokens')).body;
    assert.ok(!JSON.stringify(listed).includes(created.body.token), 'the secret is never listed');
  });

  test('a token for a subscription serve does not know is 404 SubscriptionNotFound saying where subscriptions come from, and is not created', async () => {
    const r = await call(s.url, 'PUT', '/phasewise/enrollmentTokens/nosub', { subscriptionId: 'no-such-sub', resourceGroup: 'lab', location: 'eastus' });
    assert.equal(r.status, 404, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'SubscriptionNotFound');
    assert.match(r.body.error.message, /'no-such-sub' could not be found: .*`subscriptions`, or \$PHASEWISE_SUBSCRIPTIONS/);
    const listed = (await call(s.url, 'GET', '/phasewise/enrollmentTokens')).body;
    assert.ok(!listed.value.some((t: { name: string }) => t.name === 'nosub'));
  });

  test('the enrollment token is checked before the body is read: without one a malformed or huge body is a 401; with one, a body over 64 KiB is a 413', async () => {
    // The token used to be read in the handler, after the router had parsed the body: anyone could have
    // up to 1 MiB of JSON parsed per request (and got 400s that told them about the body) before the 401.
    const huge = JSON.stringify({ ...enrollBody(machineIdentity(), { name: 'edge-huge' }), pad: Array.from({ length: 900 }, () => 'x'.repeat(1000)) });
    for (const [what, body] of [['malformed', '{"certificatePem": '], ['not an object', '[1,2,3]'], ['huge', huge]] as const) {
      for (const headers of [{}, { authorization: 'Bearer not-a-token-at-all-0000' }, { authorization: 'Basic eDp5' }] as Array<Record<string, string>>) {
        const r = await rawRequest(s.url, 'POST', '/v1/enroll', { body, headers });
        assert.equal(r.status, 401, `${what} ${JSON.stringify(headers)}: ${r.text.slice(0, 200)}`);
        assert.match(r.json.error.code, /^(AuthenticationFailed|InvalidEnrollmentToken)$/);
      }
    }
    const big = await rawRequest(s.url, 'POST', '/v1/enroll', { body: huge, headers: { authorization: `Bearer ${ENROLL}` } });
    assert.equal(big.status, 413, big.text.slice(0, 200));
    assert.equal(big.json.error.code, 'RequestEntityTooLarge');
    const bad = await rawRequest(s.url, 'POST', '/v1/enroll', { body: '{"certificatePem": ', headers: { authorization: `Bearer ${ENROLL}` } });
    assert.equal(bad.status, 400, 'with a token, the body is read and judged as before');
    assert.equal((await call(s.url, 'GET', `${ARC}/edge-huge?${AV}`)).status, 404, 'nothing registered');
  });

  test('a malformed enrollment (a certificate that is not self-signed by an RSA key) is 400 and registers nothing', async () => {
    const notACert = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'.padEnd(120, ' ');
    const body = JSON.stringify({ ...enrollBody(machineIdentity(), { name: 'edge-bad' }), certificatePem: notACert });
    const r = await rawRequest(s.url, 'POST', '/v1/enroll', { body, headers: { authorization: `Bearer ${ENROLL}` } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'InvalidCertificate');
    assert.equal((await call(s.url, 'GET', `${ARC}/edge-bad?${AV}`)).status, 404);
  });

  test('mTLS: machine A\'s certificate on B\'s goal state is 403, no certificate is 401, a certificate of another CA is 401; ARM clients still work', async () => {
    const a = await TestAgent.enroll(s.url, ENROLL, { name: 'mtls-a' });
    const b = await TestAgent.enroll(s.url, ENROLL, { name: 'mtls-b' });
    try {
      assert.equal((await a.goalState()).status, 200);
      const cross = await a.call('GET', `/v1/agents/${b.agentId}/goalstate`);
      assert.equal(cross.status, 403);
      assert.equal(cross.json.error.code, 'AuthorizationFailed');
      const crossStatus = await a.call('PUT', `/v1/agents/${b.agentId}/status`, { version: '1.1' });
      assert.equal(crossStatus.status, 403);
      const none = await rawRequest(s.url, 'GET', `/v1/agents/${a.agentId}/goalstate`);
      assert.equal(none.status, 401);
      // A self-signed client certificate (not issued by the agent CA) does not authenticate.
      const id = machineIdentity();
      const forged = await rawRequest(s.url, 'GET', `/v1/agents/${a.agentId}/goalstate`, { agent: new Agent({ ca: readFileSync(CERT, 'utf8'), key: id.keyPem, cert: id.certPem }) });
      assert.equal(forged.status, 401);
      assert.equal((await call(s.url, 'GET', `/subscriptions/${SUB}/resourceGroups/rg1?${AV}`)).status, 200, 'bearer clients without certificates');
      // Deleting the machine revokes its credential.
      assert.equal((await call(s.url, 'DELETE', `${ARC}/mtls-b?${AV}`)).status, 200);
      const revoked = await b.goalState();
      assert.equal(revoked.status, 401);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('goal states', () => {
  let s: TestServer;
  let a: TestAgent;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] });
    assert.equal((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor', { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/1.0.0.0', { os: ['linux'] }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await uploadPackage(s, 'Contoso', 'Monitor', '1.0.0.0', await handlerZip('v1'))).status, 201);
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'gs-1' });
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  test('ETag and If-None-Match: an unchanged goal state is 304; a long poll is released by a change', async () => {
    const first = await a.goalState();
    assert.equal(first.status, 200);
    const etag = first.headers.etag as string;
    const gs = first.json as GoalState;
    assert.equal(gs.schemaVersion, '1.0');
    assert.deepEqual(gs.extensions, []);
    assert.equal((await a.goalState(etag)).status, 304);
    const t0 = Date.now();
    const timedOut = await a.goalState(etag, 1);
    assert.equal(timedOut.status, 304);
    assert.ok(Date.now() - t0 >= 900, 'the long poll waited');
    const bad = await a.call('GET', `/v1/agents/${a.agentId}/goalstate?wait=999`);
    assert.equal(bad.status, 400);
    // A change (an extension installed through ARM) releases a waiting long poll at once.
    const waiting = a.goalState(etag, 30);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const put = await call(s.url, 'PUT', `${ARC}/gs-1/extensions/mon?${AV}`, {
      location: 'westus', properties: { publisher: 'Contoso', type: 'Monitor', typeHandlerVersion: '1.0', settings: { level: 3 }, protectedSettings: { password: 'hunter2-secret' } },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const changed = await waiting;
    assert.equal(changed.status, 200);
    assert.ok(Date.now() - started < 10_000);
    const next = changed.json as GoalState;
    assert.ok(next.goalStateId > gs.goalStateId);
    assert.notEqual(changed.headers.etag, etag);
    assert.equal(next.extensions.length, 1);
    const e = next.extensions[0]!;
    assert.equal(e.name, 'Contoso.Monitor');
    assert.equal(e.version, '1.0.0.0');
    assert.equal(e.state, 'enabled');
    assert.deepEqual(e.settings.publicSettings, { level: 3 });
    assert.ok(e.operationId.length > 0);
    assert.match(e.package.uris[0]!, /\/v1\/packages\/[0-9a-f]{64}$/);
    assert.equal(e.package.signature.keyId, 'test-2026');
  });

  test('protected settings decrypt with the machine\'s private key only; they are in clear neither in the goal state nor in the database', async () => {
    const r = await a.goalState();
    assert.ok(!r.text.includes('hunter2-secret'));
    const e = (r.json as GoalState).extensions[0]!;
    assert.ok(e.settings.protectedSettings);
    assert.match(e.settings.protectedSettingsCertThumbprint!, /^[0-9A-F]{40}$/);
    assert.deepEqual(decryptWithKey(e.settings.protectedSettings!, a.id.certPem, a.id.keyPem), { password: 'hunter2-secret' });
    const other = machineIdentity();
    assert.throws(() => decryptWithKey(e.settings.protectedSettings!, other.certPem, other.keyPem));
    const db = s.store.database;
    for (const table of ['arm_documents', 'agents', 'agent_ops', 'agent_status', 'events', 'event_values', 'actions']) {
      const rows = db.prepare(`SELECT * FROM ${table}`).all();
      assert.ok(!JSON.stringify(rows).includes('hunter2-secret'), `${table} holds no clear protected settings`);
    }
  });
});
