/**
 * The machine side of issue 11, driven through one convergence pass at a time with real shell-script
 * handlers, real zips, real signatures and a loopback HTTPS package server.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convergeOnce } from '../src/agent/converge.js';
import { readPolicy } from '../src/agent/local-policy.js';
import { buildStatusReport } from '../src/agent/status-report.js';
import { calls, extension, goal, HANDLER, handlerScript, handlerZip, manifest, newPublisher, PackageServer } from './helpers/agent-kit.js';
import { packageRef, runtime, tempDirs, trust, writeStatus, zipOf } from './helpers/agent-kit.js';

const server = new PackageServer();
const publisher = newPublisher();
before(() => server.start());
after(() => server.stop());

async function setup() {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  return { dirs, rt };
}

const cmdsOf = (log: string) => calls(log).map((l) => l.split(' ').slice(0, 2).join(' '));

test('first install (§3.2): install then enable, the on-disk layout handlers expect, settings kept as ciphertext', async () => {
  const { dirs, rt } = await setup();
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]));
  assert.deepEqual(cmdsOf(dirs.callLog), ['install 1.0.0', 'enable 1.0.0']);
  const base = join(dirs.lib, `${HANDLER}-1.0.0`);
  const env = JSON.parse(readFileSync(join(base, 'HandlerEnvironment.json'), 'utf8'));
  assert.equal(env[0].version, 1.0);
  assert.equal(env[0].handlerEnvironment.logFolder, join(dirs.log, HANDLER));
  assert.equal(statSync(join(base, 'config')).mode & 0o777, 0o700);
  assert.equal(statSync(join(base, 'status')).mode & 0o777, 0o700);
  assert.ok(statSync(join(base, 'bin/handler.sh')).mode & 0o100, 'u+x on extracted files');
  const settings = JSON.parse(readFileSync(join(base, 'config/1.settings'), 'utf8'));
  assert.equal(settings.runtimeSettings[0].handlerSettings.protectedSettings, 'MIIBcmsCiphertext');
  assert.deepEqual(settings.runtimeSettings[0].handlerSettings.publicSettings, { level: 1 });
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.state, 'Enabled');
  assert.equal(rec.lastKnownGood?.version, '1.0.0');
  assert.equal(rec.history[0]?.outcome, 'succeeded');
  assert.ok(existsSync(join(dirs.lib, '.agent/packages', `${HANDLER}__1.0.0.zip`)), 'the verified zip is the rollback cache');
  assert.match(calls(dirs.callLog)[0]!, / 1 op-1 /, 'ConfigSequenceNumber and the operation id reach the handler');
});

test('an operation seen again is re-reported, never re-run; a settings change runs enable only (§3.3)', async () => {
  const { dirs, rt } = await setup();
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const g1 = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
  await convergeOnce(rt, g1);
  await convergeOnce(rt, g1);
  await convergeOnce(rt, goal(2, g1.extensions));
  assert.deepEqual(cmdsOf(dirs.callLog), ['install 1.0.0', 'enable 1.0.0']);
  await convergeOnce(rt, goal(3, [extension({ version: '1.0.0', package: ref, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.deepEqual(cmdsOf(dirs.callLog), ['install 1.0.0', 'enable 1.0.0', 'enable 1.0.0']);
  assert.ok(existsSync(join(dirs.lib, `${HANDLER}-1.0.0/config/2.settings`)));
  assert.equal(rt.journal.state.extensions[HANDLER]!.installedSeq, 2);
});

test('upgrade A→B (§3.4): disable A, update B, uninstall A, install B, enable B; mrseq and status copied', async () => {
  const { dirs, rt } = await setup();
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { update: 'test -f mrseq || exit 7' }));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-1' })]));
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.deepEqual(cmdsOf(dirs.callLog), ['install 1.0.0', 'enable 1.0.0', 'disable 1.0.0', 'update 1.1.0', 'uninstall 1.0.0', 'install 1.1.0', 'enable 1.1.0']);
  const update = calls(dirs.callLog)[3]!;
  assert.match(update, /from=1\.0\.0 dis=0/);
  assert.match(calls(dirs.callLog)[5]!, /unin=0/);
  assert.ok(!existsSync(join(dirs.lib, `${HANDLER}-1.0.0`)), 'A is deleted after uninstall');
  assert.ok(existsSync(join(dirs.lib, `${HANDLER}-1.1.0/status/1.status`)), 'A\'s status files were copied into B');
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.installedVersion, '1.1.0');
  assert.equal(rec.lastKnownGood?.version, '1.1.0');
  assert.ok(!existsSync(join(dirs.lib, '.agent/packages', `${HANDLER}__1.0.0.zip`)), 'the old cache entry goes once B is the last known good');
});

test('UpdateWithoutInstall skips install(B); a downgrade runs the higher version\'s update command', async () => {
  const { dirs, rt } = await setup();
  const update = `echo "$AZURE_GUEST_AGENT_EXTENSION_PATH VERSION=$VERSION" >> '${dirs.root}/updater.txt'`;
  const a = packageRef(server, publisher, HANDLER, '2.0.0', await handlerZip(dirs.callLog, { update }));
  const b = packageRef(server, publisher, HANDLER, '1.9.0', await handlerZip(dirs.callLog, { updateMode: 'UpdateWithoutInstall' }));
  await convergeOnce(rt, goal(1, [extension({ version: '2.0.0', package: a, operationId: 'op-1' })]));
  await convergeOnce(rt, goal(2, [extension({ version: '1.9.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.deepEqual(cmdsOf(dirs.callLog), ['install 2.0.0', 'enable 2.0.0', 'disable 2.0.0', 'update 2.0.0', 'uninstall 2.0.0', 'enable 1.9.0']);
  assert.equal(rt.journal.state.extensions[HANDLER]!.installedVersion, '1.9.0');
  const updater = readFileSync(join(dirs.root, 'updater.txt'), 'utf8');
  assert.match(updater, new RegExp(`${HANDLER}-2\\.0\\.0 VERSION=1\\.9\\.0`), '2.0.0\'s update command ran, told the target');
});

test('R22: a failed install of B rolls back to the last known good A: uninstall B, install A, enable A (R31)', async () => {
  const { dirs, rt } = await setup();
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { install: 'echo boom >&2; exit 3' }));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-1' })]));
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.deepEqual(cmdsOf(dirs.callLog).slice(2), ['disable 1.0.0', 'update 1.1.0', 'uninstall 1.0.0', 'install 1.1.0', 'uninstall 1.1.0', 'install 1.0.0', 'enable 1.0.0']);
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.history[0]?.outcome, 'rolledBack');
  assert.match(rec.history[0]!.message, /install of 1\.1\.0 failed with exit code 3: boom/);
  assert.deepEqual(rec.history[0]?.rollback, { status: 'success', message: 'rolled back to 1.0.0' });
  assert.equal(rec.state, 'Enabled');
  assert.equal(rec.installedVersion, '1.0.0');
  assert.ok(!existsSync(join(dirs.lib, `${HANDLER}-1.1.0`)));
  // the same operation is never retried
  await convergeOnce(rt, goal(3, [extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.equal(calls(dirs.callLog).length, 9);
});

test('R30: a failed update, then an error status from enable(B), roll back to A with the same settings; A\'s folder, kept when update fails, is re-enabled', async () => {
  const { dirs, rt } = await setup();
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { update: 'exit 9' }));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-1' })]));
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.deepEqual(cmdsOf(dirs.callLog).slice(2), ['disable 1.0.0', 'update 1.1.0', 'uninstall 1.1.0', 'enable 1.0.0']);
  assert.equal(rt.journal.state.extensions[HANDLER]!.history[0]?.outcome, 'rolledBack');

  const c = packageRef(server, publisher, HANDLER, '1.2.0', await handlerZip(dirs.callLog, { enable: writeStatus('error', 'cannot start') }));
  await convergeOnce(rt, goal(3, [extension({ version: '1.2.0', package: c, operationId: 'op-3', settingsSeqNo: 3 })]));
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.history[0]?.outcome, 'rolledBack');
  assert.match(rec.history[0]!.message, /cannot start/);
  assert.equal(rec.installedVersion, '1.0.0');
  assert.equal(rec.installedSeq, 3);
  const settingsOf = (v: string) => readFileSync(join(dirs.lib, `${HANDLER}-${v}`, 'config/3.settings'), 'utf8');
  assert.match(settingsOf('1.0.0'), /"protectedSettings":"MIIBcmsCiphertext"/, 'A runs with the settings B was given');
  assert.match(calls(dirs.callLog).at(-1)!, /^enable 1\.0\.0 3 op-3 /);
});

test('R31: when the rollback fails too the extension is Failed until it is removed and added again', async () => {
  const { dirs, rt } = await setup();
  const flag = join(dirs.root, 'a-broken');
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { install: `test ! -f '${flag}'` }));
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { install: 'exit 4' }));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-1' })]));
  writeFileSync(flag, '');
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]));
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.state, 'Failed');
  assert.equal(rec.history[0]?.outcome, 'failed');
  assert.equal(rec.history[0]?.rollback?.status, 'error');
  const n = calls(dirs.callLog).length;
  await convergeOnce(rt, goal(3, [extension({ version: '1.0.0', package: a, operationId: 'op-3', settingsSeqNo: 3 })]));
  assert.equal(calls(dirs.callLog).length, n, 'nothing runs on a Failed extension');
  assert.match(rec.history[0]!.message, /Failed after a failed rollback/);
  await convergeOnce(rt, goal(4, [extension({ version: '1.0.0', package: a, operationId: 'op-4', state: 'uninstall' })]));
  rmSync(flag);
  await convergeOnce(rt, goal(5, [extension({ version: '1.0.0', package: a, operationId: 'op-5', settingsSeqNo: 5 })]));
  assert.equal(rt.journal.state.extensions[HANDLER]!.state, 'Enabled');
  assert.deepEqual(cmdsOf(dirs.callLog).slice(-2), ['install 1.0.0', 'enable 1.0.0']);
});

test('a HandlerManifest.json deeper in the zip is copied to the base dir root (§3.2 #3); no settings writes an empty 0.settings', async () => {
  const { dirs, rt } = await setup();
  const zip = await zipOf({ 'meta/HandlerManifest.json': manifest({}), 'bin/handler.sh': handlerScript(dirs.callLog, {}) });
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', zip);
  const none = { publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null };
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1', settingsSeqNo: 0, settings: none })]));
  const base = join(dirs.lib, `${HANDLER}-1.0.0`);
  assert.ok(existsSync(join(base, 'HandlerManifest.json')));
  assert.equal(readFileSync(join(base, 'config/0.settings'), 'utf8'), '');
  assert.equal(rt.journal.state.extensions[HANDLER]!.history[0]?.outcome, 'succeeded');
});

test('status report: the rolled-back operation shows error with the Rollback substatus; unsupported required features fail the goal state (2001)', async () => {
  const { dirs, rt } = await setup();
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { enable: 'exit 2' }));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-1' })]));
  const g = goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2 })]);
  await convergeOnce(rt, g);
  const input = {
    dirs,
    journal: rt.journal,
    goal: g,
    processedGoalStateId: 2,
    goalStateError: null,
    policy: readPolicy(dirs),
    health: null,
    agentVersion: '0.1.0',
    os: { computerName: 'm', osName: 'Linux', osVersion: '6' },
    nowMs: Date.now(),
  };
  const r = buildStatusReport(input);
  const h = r.aggregateStatus.handlerAggregateStatus[0]!;
  assert.equal(h.handlerVersion, '1.1.0');
  assert.equal(h.runtimeSettingsStatus?.sequenceNumber, 2);
  assert.equal(h.runtimeSettingsStatus?.settingsStatus.status.status, 'error');
  const rollback = { name: 'Rollback', status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: 'rolled back to 1.0.0' } };
  assert.deepEqual(h.runtimeSettingsStatus?.settingsStatus.status.substatus?.[0], rollback);
  assert.equal(r.agentState[HANDLER]?.lastOperation?.outcome, 'rolledBack');
  assert.equal(r.agentState[HANDLER]?.lastKnownGood, '1.0.0');
  assert.equal(r.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.status, 'Success');
  const failed = buildStatusReport({ ...input, goal: { ...g, requiredFeatures: ['MultipleExtensionsPerHandler'] } });
  assert.equal(failed.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.code, 2001);
});

test('reportHeartbeat: heartbeat.log overrides the handler status in the report; stale is Unresponsive', async () => {
  const { dirs, rt } = await setup();
  const hb = `printf '[{"heartbeat":{"status":"ready","code":0,"formattedMessage":{"lang":"en-US","message":"serving"}}}]' > heartbeat.log`;
  const withHeartbeat = manifest({}).replace('"reportHeartbeat":false', '"reportHeartbeat":true');
  const zip = await zipOf({ 'HandlerManifest.json': withHeartbeat, 'bin/handler.sh': handlerScript(dirs.callLog, { install: hb }) });
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', zip);
  const g = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
  await convergeOnce(rt, g);
  const input = {
    dirs,
    journal: rt.journal,
    goal: g,
    processedGoalStateId: 1,
    goalStateError: null,
    policy: readPolicy(dirs),
    health: null,
    agentVersion: '0.1.0',
    os: { computerName: 'm', osName: 'Linux', osVersion: '6' },
    nowMs: Date.now(),
  };
  const h = buildStatusReport(input).aggregateStatus.handlerAggregateStatus[0]!;
  assert.deepEqual([h.status, h.formattedMessage.message], ['Ready', 'serving']);
  const later = buildStatusReport({ ...input, nowMs: Date.now() + 601_000 }).aggregateStatus.handlerAggregateStatus[0]!;
  assert.equal(later.status, 'Unresponsive');
});
