/**
 * The agent driver on its own store (a real SQLite database): idempotency keys across resends and a
 * restart of the driver, and the mapping of reports to observations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { AgentDriver, REIMAGE_UNSUPPORTED } from '../src/drivers/agent/agent-driver.js';
import { AgentStore } from '../src/drivers/agent/agent-store.js';
import type { DriverAction, Observation } from '../src/engine/driver.js';
import { emptyFleet } from '../src/engine/state.js';
import { packGroup, reportBytes, unpackGroup } from '../src/api/agent/status-writer.js';
import { statusReport } from './helpers/agent-client.js';

const action = (key: string, toVersion: string, kind: DriverAction['kind'] = 'upgrade'): DriverAction => ({
  kind, key, machineId: 'm1', artifact: { kind: 'extension', publisher: 'Contoso', type: 'Monitor' }, artifactKey: 'extension:contoso.monitor',
  fromVersion: '1.0.0.0', toVersion, settings: {},
});

function open(file: string, now: { t: number }) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const driver = new AgentDriver({
    store: new AgentStore(db), fleet: () => emptyFleet(), engineNow: () => now.t, wallNow: () => now.t, statusIntervalSeconds: 10,
    hasPackage: (_k, v) => v !== '9.9.9.9',
  });
  const drain = () => {
    const out: Observation[] = [];
    driver.deliverDue(now.t, (o) => out.push(o));
    return out;
  };
  return { db, driver, drain };
}

test('a resent key changes nothing and re-answers its outcome, also after the driver restarts; reports map to results and health', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-agent-driver-'));
  const now = { t: 1_000_000 };
  try {
    let { db, driver, drain } = open(join(dir, 'db.sqlite'), now);
    driver.bind({
      agentId: 'a1', machineId: 'm1', resourceId: '/x/m1', fingerprint: 'F', machineCertPem: '', thumbprint: 'T', enrolledAtMs: now.t, revokedAtMs: null,
      info: { agentVersion: '1', osName: 'L', osVersion: '1', computerName: 'h' },
    });
    driver.send(action('k1', '1.1.0.0'));
    const goal1 = JSON.stringify(driver.goal('a1'));
    assert.equal(driver.goal('a1')!.entries['extension:contoso.monitor']!.operationId, 'k1');
    driver.send(action('k1', '1.1.0.0'));
    assert.equal(JSON.stringify(driver.goal('a1')), goal1, 'a resend in flight changes nothing');
    assert.deepEqual(drain(), []);

    // serve restarts before the agent answers: the open operation is reloaded.
    db.close();
    ({ db, driver, drain } = open(join(dir, 'db.sqlite'), now));
    assert.equal(JSON.stringify(driver.goal('a1')), goal1);
    driver.onReport('a1', statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0', op: { id: 'k1', outcome: 'succeeded' } } } }), now.t);
    const first = drain();
    assert.deepEqual(first[0], { kind: 'actionResult', key: 'k1', machineId: 'm1', ok: true, version: '1.1.0.0' });
    assert.deepEqual(first[1], { kind: 'health', machineId: 'm1', signals: { platform: true } });
    // The same report again answers nothing more; a resend of the key answers the known outcome again.
    driver.onReport('a1', statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0', op: { id: 'k1', outcome: 'succeeded' } } } }), now.t);
    assert.deepEqual(drain(), []);
    driver.send(action('k1', '1.1.0.0'));
    assert.deepEqual(drain(), [first[0]]);

    // A failure reports what runs now, and the goal keeps it.
    driver.send(action('k2', '1.2.0.0'));
    driver.onReport('a1', statusReport({ ext: { 'Contoso.Monitor': { version: '1.1.0.0', op: { id: 'k2', outcome: 'rolledBack', message: 'enable exited 1' } } } }), now.t);
    const failed = drain()[0]!;
    assert.deepEqual(failed, { kind: 'actionResult', key: 'k2', machineId: 'm1', ok: false, version: '1.1.0.0', reason: 'rolledBack on the machine: enable exited 1' });
    assert.equal(driver.goal('a1')!.entries['extension:contoso.monitor']!.version, '1.1.0.0');

    // No package, or an OS image: refused at once, never in the goal.
    driver.send(action('k3', '9.9.9.9'));
    assert.match((drain()[0] as { reason: string }).reason, /no package is uploaded for Contoso\.Monitor 9\.9\.9\.9/);
    driver.send({ ...action('k4', '24.04.1'), artifact: { kind: 'osImage', publisher: 'C', offer: 'o', sku: 's' }, artifactKey: 'osimage:c:o:s' });
    assert.equal((drain()[0] as { reason: string }).reason, REIMAGE_UNSUPPORTED);
    assert.equal(driver.goal('a1')!.entries['extension:contoso.monitor']!.operationId, 'k2');

    // Silent for more than three intervals (wall clock): platform false; a report reconnects.
    now.t += 31_000;
    driver.sweep();
    assert.deepEqual(drain(), [{ kind: 'health', machineId: 'm1', signals: { platform: false } }]);
    assert.equal(driver.connection('m1')!.status, 'Disconnected');
    driver.onReport('a1', statusReport({ app: 'Initializing' }), now.t);
    assert.deepEqual(drain(), [], 'no verdict while application health initializes');
    driver.onReport('a1', statusReport({ app: 'Unhealthy' }), now.t);
    assert.deepEqual(drain(), [{ kind: 'health', machineId: 'm1', signals: { platform: true, application: false } }]);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("R25: the server's own downtime does not disconnect its machines; silence counts from its restart", () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-agent-driver-'));
  const now = { t: 1_000_000 };
  const record = (agentId: string, machineId: string) => ({
    agentId, machineId, resourceId: `/x/${machineId}`, fingerprint: `F-${agentId}`, machineCertPem: '', thumbprint: `T-${agentId}`, enrolledAtMs: 0, revokedAtMs: null,
    info: { agentVersion: '1', osName: 'L', osVersion: '1', computerName: machineId },
  });
  try {
    let { db, driver } = open(join(dir, 'db.sqlite'), now);
    const store = driver.store;
    driver.bind(record('a1', 'm1'));
    driver.bind(record('a2', 'm2'));
    // m2 went silent 40 s (four intervals of 10 s) before the server stopped; m1 reported just before.
    store.putStatuses([{ agentId: 'a2', receivedAtMs: now.t - 40_000, json: JSON.stringify(statusReport({})) }]);
    store.putStatuses([{ agentId: 'a1', receivedAtMs: now.t, json: JSON.stringify(statusReport({})) }]);
    db.close();
    // The server comes back ten minutes later.
    now.t += 600_000;
    ({ db, driver } = open(join(dir, 'db.sqlite'), now));
    assert.equal(driver.connection('m1')!.status, 'Connected', 'm1 was connected when the server stopped');
    assert.equal(driver.connection('m2')!.status, 'Disconnected', 'm2 was silent already');
    now.t += 29_000;
    driver.sweep();
    assert.equal(driver.connection('m1')!.status, 'Connected', 'three intervals from the restart to report again');
    now.t += 2_000;
    driver.sweep();
    assert.equal(driver.connection('m1')!.status, 'Disconnected', 'silent for three intervals after the restart');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('status groups cross to the writer thread in one shared buffer and come back the same', () => {
  const rows: Array<[string, number, Buffer]> = [
    ['3f2c-agent', 1_764_000_000_000, Buffer.from('{"a":"b\\u0000c","d":[1,2]}')], ['other', 2, Buffer.from('{"é":"日本"}')], ['empty', 3, Buffer.alloc(0)],
  ];
  const back = unpackGroup(packGroup(rows));
  assert.deepEqual(back.map(([a, t, b]) => [a, t, b.toString('utf8')]), rows.map(([a, t, b]) => [a, t, b.toString('utf8')]));
  assert.deepEqual(unpackGroup(packGroup([])), []);
  // The writer reuses one shared buffer for groups that fit, and gives a larger group its own.
  const shared = new SharedArrayBuffer(64);
  const small = packGroup(rows, shared);
  assert.equal(small.data, shared);
  assert.deepEqual(unpackGroup(small).map(([a, t, b]) => [a, t, b.toString('utf8')]), rows.map(([a, t, b]) => [a, t, b.toString('utf8')]));
  const large = packGroup([['big', 4, Buffer.alloc(65, 0x61)]], shared);
  assert.notEqual(large.data, shared);
  assert.equal(unpackGroup(large)[0]![2].toString(), 'a'.repeat(65));
  // What is stored is valid UTF-8: a body that is not is stored as its decoded text.
  assert.equal(reportBytes(Buffer.from([0x7b, 0x7d])).toString(), '{}');
  assert.equal(reportBytes(Buffer.from([0x22, 0xff, 0x22])).toString(), '"\ufffd"');
});
