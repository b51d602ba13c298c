/**
 * The release routes over HTTPS against a real server (R22's fleet-wide hold): read, hold and resume a
 * release, ARM error bodies for unknown releases and wrong states, roles, and the activity-log entry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, READER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AMA = '/phasewise/publishers/Microsoft.Azure.Monitor/extensionTypes/AzureMonitorLinuxAgent';
const RELEASE = '/phasewise/releases/Microsoft.Azure.Monitor/AzureMonitorLinuxAgent/versions/1.30.0.0';

describe('release hold and resume (R22)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
    assert.equal((await call(s.url, 'PUT', AMA, { supportsAutomaticUpgrade: true })).status, 201);
    assert.equal((await call(s.url, 'PUT', `${AMA}/versions/1.30.0.0`, { os: ['linux'] })).status, 201);
  });
  after(async () => s?.stop());

  test('R22: an operator holds a release and resumes it; wrong states are 409, unknown releases 404', async () => {
    const read = await call(s.url, 'GET', RELEASE, undefined, READER_TOKEN);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.held, false);
    const notHeld = await call(s.url, 'POST', `${RELEASE}/resume`);
    assert.equal(notHeld.status, 409);
    assert.equal(notHeld.body.error.code, 'ReleaseNotHeld');
    const unknown = await call(s.url, 'POST', RELEASE.replace('1.30.0.0', '9.9.9.9') + '/resume');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'ReleaseNotFound');
    const reader = await call(s.url, 'POST', `${RELEASE}/hold`, { reason: 'tickets' }, READER_TOKEN);
    assert.equal(reader.status, 403);
    const noReason = await call(s.url, 'POST', `${RELEASE}/hold`, {});
    assert.equal(noReason.status, 400);
    const held = await call(s.url, 'POST', `${RELEASE}/hold`, { reason: 'support tickets about 1.30' });
    assert.equal(held.status, 200, JSON.stringify(held.body));
    assert.equal(held.body.held, true);
    assert.equal(held.body.hold.kind, 'operator');
    assert.equal(held.body.hold.caller, 'alice@contoso.com');
    assert.equal((await call(s.url, 'POST', `${RELEASE}/hold`, { reason: 'again' })).status, 409);
    const resumed = await call(s.url, 'POST', `${RELEASE}/resume`);
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal(resumed.body.held, false);
    const range = `eventTimestamp ge '2000-01-01T00:00:00Z' and eventTimestamp le '2999-01-01T00:00:00Z'`;
    const log = await call(s.url, 'GET', `/subscriptions/${SUB}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter=${encodeURIComponent(range)}`);
    assert.equal(log.status, 200, JSON.stringify(log.body));
    const ops = (log.body.value as Array<{ operationName: { value: string }; description: string }>).map((e) => e.operationName.value);
    assert.ok(ops.includes('Phasewise/releases/hold/action'), ops.join(', '));
    assert.ok(ops.includes('Phasewise/releases/resume/action'), ops.join(', '));
  });

  test('a hold worded as the fleet-wide stop\'s (\'fleet-wide stop by …\') is refused: fleet resume, even with no stop in effect, lifted it', async () => {
    const fake = await call(s.url, 'POST', `${RELEASE}/hold`, { reason: 'fleet-wide stop by bob: keep held until the vendor answers' });
    assert.equal(fake.status, 400, JSON.stringify(fake.body));
    assert.equal(fake.body.error.code, 'InvalidParameter');
    assert.match(fake.body.error.message, /may not start with 'fleet-wide stop by '/);
    assert.equal((await call(s.url, 'GET', RELEASE)).body.held, false, 'nothing held');
    // The same words further in are a reason like any other, and the fleet's resume leaves that hold alone.
    assert.equal((await call(s.url, 'POST', `${RELEASE}/hold`, { reason: 'as the fleet-wide stop by bob: keep held' })).status, 200);
    const go = await call(s.url, 'POST', '/phasewise/fleet/resume', {});
    assert.deepEqual(go.body, { resumed: [], ended: null });
    assert.equal((await call(s.url, 'GET', RELEASE)).body.held, true, 'fleet resume lifts only the stop\'s holds');
    assert.equal((await call(s.url, 'POST', `${RELEASE}/resume`)).status, 200);
  });
});
