/**
 * A follower's proof for a forwarded agent request signs its body (src/api/agent/forwarded-identity.ts):
 * the leader takes the vouched fingerprint only with the body the follower sent. Before, the proof signed
 * the time, method, path and fingerprint only, so a proof seen once could carry any other body (another
 * status report) under the same agent's name for its minute. Against a real server, on the fast path (a
 * status report, a goal-state read) and the router's (scheduled events).
 */
import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BODY_DIGEST_HEADER, bodyDigest, forwardingKey, vouch, vouchedIdentity } from '../src/api/agent/forwarded-identity.js';
import { startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { rawRequest, statusReport, TestAgent } from './helpers/agent-client.js';

const ENROLL = 'enroll-token-forwarded-body-0123456789';
const KEY = forwardingKey(randomBytes(32));

test('the proof covers the body digest: another digest, or the right one under another key, is no proof', () => {
  const now = Date.now();
  const h = vouch(KEY, 'PUT', '/v1/agents/a/status', 'AB:CD', '{"x":1}', now);
  assert.deepEqual(vouchedIdentity(KEY, 'PUT', '/v1/agents/a/status', h, now), { fingerprint: 'AB:CD', bodyDigest: bodyDigest('{"x":1}') });
  assert.equal(vouchedIdentity(KEY, 'PUT', '/v1/agents/a/status', { ...h, [BODY_DIGEST_HEADER]: bodyDigest('{"x":2}') }, now), null);
  assert.equal(vouchedIdentity(forwardingKey(randomBytes(32)), 'PUT', '/v1/agents/a/status', h, now), null);
  const { [BODY_DIGEST_HEADER]: _gone, ...withoutDigest } = h;
  assert.equal(vouchedIdentity(KEY, 'PUT', '/v1/agents/a/status', withoutDigest, now), null, 'a proof without the digest header is none');
  assert.equal(bodyDigest(null), bodyDigest(''), 'no body is the empty body');
});

describe('a leader checks a forwarded agent request\'s body against its proof', () => {
  let s: TestServer;
  let agent: TestAgent;
  let fingerprint: string;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: [{ token: ENROLL, subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }] });
    agent = await TestAgent.enroll(s.url, ENROLL, { name: 'forwarded' });
    fingerprint = new X509Certificate(agent.enrolled.clientCertificatePem).fingerprint256;
    // As a replica that leads: forwarded requests are vouched for under the shared key.
    s.agents.vouchedIdentity = (req) => vouchedIdentity(KEY, req.method ?? '', req.url ?? '', req.headers, Date.now());
  });
  after(async () => {
    agent?.close();
    await s?.stop();
  });

  /** A request as a follower forwards it: no client certificate, the vouching headers for `signed`, and `sent`. */
  const forwarded = (method: string, path: string, signed: string | null, sent: string | undefined) =>
    rawRequest(s.url, method, path, {
      ...(sent !== undefined ? { body: sent } : {}),
      headers: vouch(KEY, method, path, fingerprint, signed, Date.now()),
    });

  test('a status report: the signed body is taken (204), a changed one is 401 and not stored', async () => {
    const path = `/v1/agents/${agent.agentId}/status`;
    const report = JSON.stringify(statusReport({ app: 'Healthy' }));
    const ok = await forwarded('PUT', path, report, report);
    assert.equal(ok.status, 204, ok.text);
    const before = s.agents.driver.agentByFingerprint(fingerprint);
    const tampered = JSON.stringify(statusReport({ app: 'Unhealthy' }));
    const refused = await forwarded('PUT', path, report, tampered);
    assert.equal(refused.status, 401, refused.text);
    assert.equal(refused.json.error.code, 'AuthenticationFailed');
    assert.match(refused.json.error.message, /not the one the forwarding replica signed/);
    assert.deepEqual(s.agents.driver.agentByFingerprint(fingerprint), before, 'nothing of the tampered report was kept');
  });

  test('a goal-state read carries no body: a proof signed for a body is refused', async () => {
    const path = `/v1/agents/${agent.agentId}/goalstate`;
    assert.equal((await forwarded('GET', path, null, undefined)).status, 200);
    assert.equal((await forwarded('GET', path, '{"a":1}', undefined)).status, 401);
  });

  test('scheduled events (the router\'s path): a changed body is 401', async () => {
    const path = `/v1/agents/${agent.agentId}/scheduledevents`;
    const signed = JSON.stringify({ StartRequests: [{ EventId: 'ev-1' }] });
    // Authenticated, then judged: the machine has no such event (400, not 401).
    const judged = await forwarded('POST', path, signed, signed);
    assert.equal(judged.status, 400, judged.text);
    assert.equal(judged.json.error.target, 'StartRequests[0].EventId');
    const other = await forwarded('POST', path, signed, JSON.stringify({ StartRequests: [{ EventId: 'ev-2' }] }));
    assert.equal(other.status, 401, other.text);
    assert.equal(other.json.error.code, 'AuthenticationFailed');
  });
});
