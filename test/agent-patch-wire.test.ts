/**
 * Guest OS patching on the server side of the agent channel: the AgentDriver's PatchDriver on a real
 * SQLite store (a request becomes a goal-state entry, the agent's report the ARM-shaped result, an
 * installation is idempotent by key across a restart of the driver), and the bounds both sides check
 * (goal-state entries on the agent, status reports on the server).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { GoalStateError, parseGoalState } from '../src/agent/goal-state-schema.js';
import { statusReportSchema } from '../src/api/agent/status-schema.js';
import { AgentDriver, WINDOWS_UNSUPPORTED } from '../src/drivers/agent/agent-driver.js';
import { AgentStore } from '../src/drivers/agent/agent-store.js';
import { installOperationOf, PatchRequestError } from '../src/drivers/agent/patch-wire.js';
import { emptyFleet } from '../src/engine/state.js';
import { installationCounts } from '../src/model/patches.js';
import type { PatchInstallRequest } from '../src/model/patches.js';
import type { PatchOperationReport, StatusReport } from '../src/protocol/agent-wire.js';
import { goal } from './helpers/agent-kit.js';
import { statusReport } from './helpers/agent-client.js';

const req = (over: Partial<PatchInstallRequest> = {}): PatchInstallRequest => ({
  key: 'run-1', maximumDurationMs: 2 * 3600_000, rebootSetting: 'IfRequired', classifications: ['Critical', 'Security'], include: [], exclude: ['kernel*'], ...over,
});

function open(file: string) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const now = 1_000_000;
  const driver = new AgentDriver({ store: new AgentStore(db), fleet: () => emptyFleet(), engineNow: () => now, wallNow: () => now, statusIntervalSeconds: 10, hasPackage: () => true });
  return { db, driver, now };
}

function installReport(operationId: string, status: PatchOperationReport['status'] = 'CompletedWithWarnings'): StatusReport {
  const r: PatchOperationReport = {
    operationId, kind: 'install', status, packageManager: 'apt', startedAt: '2026-12-05T10:00:00.000Z', finishedAt: status === 'InProgress' ? null : '2026-12-05T10:05:00.000Z',
    counts: { critical: 0, security: 3, other: 1, installed: 1, failed: 1, pending: 0, notSelected: 1, excluded: 1 },
    patches: [
      { name: 'openssl', version: '3.0.22-1', classifications: ['Security'], rebootBehavior: 'CanRequestReboot', installationState: 'Installed' },
      { name: 'postgresql-15', version: '15.14-0', classifications: ['Security'], rebootBehavior: 'CanRequestReboot', installationState: 'Failed', message: 'dpkg: error processing package postgresql-15 (--configure):' },
      { name: 'kernel-core', version: '5.14.0', classifications: ['Security'], rebootBehavior: 'AlwaysRequiresReboot', installationState: 'Excluded' },
      { name: 'tzdata', version: '2026f-0', classifications: ['Other'], rebootBehavior: 'Unknown', installationState: 'NotSelected' },
    ],
    truncated: false, rebootPending: false, rebootStatus: 'NotNeeded', maintenanceWindowExceeded: false, error: null,
  };
  return { ...statusReport(), patchOperations: [r] };
}

test('installPatches: goal-state entry, ARM-shaped answer from the report, idempotent by key across a restart of the driver', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'pw-patch-driver-')), 'db.sqlite');
  let { db, driver, now } = open(file);
  driver.bind({ agentId: 'a1', machineId: 'm1', resourceId: '/x/m1', fingerprint: 'F', machineCertPem: '', thumbprint: 'T', enrolledAtMs: now, revokedAtMs: null, info: { agentVersion: '1', osName: 'L', osVersion: '1', computerName: 'h' } });
  const first = driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req());
  const ops = driver.goal('a1')!.patchOps!;
  assert.deepEqual(Object.values(ops).map((e) => e.op), [{
    operationId: 'install:run-1', kind: 'install',
    install: { maximumDurationSeconds: 7200, rebootSetting: 'IfRequired', classificationsToInclude: ['Critical', 'Security'], packageNameMasksToInclude: [], packageNameMasksToExclude: ['kernel*'], rebootNoticeSeconds: 900 },
  }]);
  // A report still in progress answers nothing.
  driver.onReport('a1', installReport('install:run-1', 'InProgress'), now);
  assert.equal(Object.keys(driver.goal('a1')!.patchOps!).length, 1);

  // serve restarts: the first caller is gone; the operation stays in the goal state and is answered by key.
  first.catch(() => undefined);
  db.close();
  ({ db, driver, now } = open(file));
  assert.deepEqual(Object.keys(driver.goal('a1')!.patchOps!), ['install:run-1']);
  const resent = driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req());
  driver.onReport('a1', installReport('install:run-1'), now);
  const result = await resent;
  assert.equal(result.status, 'CompletedWithWarnings');
  assert.equal(result.rebootStatus, 'NotNeeded');
  assert.deepEqual(result.patches.map((p) => [p.patchId, p.installationState]), [
    ['openssl_3.0.22-1', 'Installed'], ['postgresql-15_15.14-0', 'Failed'], ['kernel-core_5.14.0', 'Excluded'], ['tzdata_2026f-0', 'NotSelected'],
  ]);
  assert.deepEqual(installationCounts(result), { installed: 1, failed: 1, pending: 0, notSelected: 1, excluded: 1 });
  assert.deepEqual(driver.goal('a1')!.patchOps, {}, 'answered: out of the goal state');
  // The same key again: the stored answer, nothing sent to the machine.
  const again = await driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req());
  assert.deepEqual(again, result);
  assert.deepEqual(driver.goal('a1')!.patchOps, {});

  // An assessment: a fresh operation id each time, answered with the patches on offer.
  const assessing = driver.patches.assessPatches({ machineId: 'm1', os: 'linux' });
  const id = Object.keys(driver.goal('a1')!.patchOps!)[0]!;
  assert.match(id, /^assess:/);
  const rep = installReport(id, 'Succeeded');
  rep.patchOperations![0] = { ...rep.patchOperations![0]!, kind: 'assess', rebootPending: true, patches: rep.patchOperations![0]!.patches.map(({ installationState: _s, message: _m, ...p }) => p) };
  driver.onReport('a1', rep, now);
  const a = await assessing;
  assert.equal(a.status, 'Succeeded');
  assert.equal(a.rebootPending, true);
  assert.deepEqual(a.availablePatches.map((p) => [p.name, p.classifications[0], p.rebootBehavior]), [
    ['openssl', 'Security', 'CanRequestReboot'], ['postgresql-15', 'Security', 'CanRequestReboot'], ['kernel-core', 'Security', 'AlwaysRequiresReboot'], ['tzdata', 'Other', 'CanRequestReboot'],
  ]);
  db.close();
});

test('bad patch requests are refused before anything reaches the goal state; Windows and unknown machines are refused', async () => {
  const { db, driver, now } = open(join(mkdtempSync(join(tmpdir(), 'pw-patch-driver-')), 'db.sqlite'));
  driver.bind({ agentId: 'a1', machineId: 'm1', resourceId: '/x/m1', fingerprint: 'F', machineCertPem: '', thumbprint: 'T', enrolledAtMs: now, revokedAtMs: null, info: { agentVersion: '1', osName: 'L', osVersion: '1', computerName: 'h' } });
  await assert.rejects(driver.patches.installPatches({ machineId: 'm1', os: 'windows' }, req()), { message: WINDOWS_UNSUPPORTED });
  await assert.rejects(driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req({ key: 'b1', exclude: ['kernel; rm -rf /'] })),
    /packageNameMasksToExclude\[0\]: 'kernel; rm -rf \/' is not a package name mask/);
  await assert.rejects(driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req({ key: 'b2', classifications: ['Security', 'UpdateRollUp'] })), /UpdateRollUp do not exist on Linux/);
  await assert.rejects(driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req({ key: 'b3', maximumDurationMs: 60_000 })), /maximumDuration must be between 30 minutes and 4 hours/);
  await assert.rejects(driver.patches.assessPatches({ machineId: 'nope', os: 'linux' }), /no enrolled agent/);
  assert.deepEqual(driver.goal('a1')!.patchOps ?? {}, {});
  assert.throws(() => installOperationOf('x', req({ include: Array.from({ length: 65 }, (_, i) => `p${i}`) })), PatchRequestError);
  db.close();
});

test('the agent refuses a goal state with a bad patch operation, and the server a report beyond the bounds', () => {
  const base = goal(1, []);
  const op = installOperationOf('install:k', req());
  assert.equal(parseGoalState(Buffer.from(JSON.stringify({ ...base, patchOperations: [op] }))).patchOperations?.[0]?.operationId, 'install:k');
  const bad = (o: unknown, re: RegExp) => assert.throws(() => parseGoalState(Buffer.from(JSON.stringify({ ...base, patchOperations: [o] }))), (e: Error) => e instanceof GoalStateError && re.test(e.message));
  bad({ ...op, install: { ...op.install!, packageNameMasksToExclude: ['$(reboot)'] } }, /patchOperations\.0\.install\.packageNameMasksToExclude\.0/);
  bad({ ...op, install: { ...op.install!, maximumDurationSeconds: 5 } }, /maximumDurationSeconds/);
  bad({ ...op, install: { ...op.install!, rebootSetting: 'Sometimes' } }, /rebootSetting/);
  bad({ operationId: 'a', kind: 'assess', install: op.install }, /an assessment must not have it/);
  assert.throws(() => parseGoalState(Buffer.from(JSON.stringify({ ...base, patchOperations: [op, op] }))), /lists patch operation install:k twice/);

  const ok = installReport('install:k');
  assert.equal(statusReportSchema.safeParse(ok).success, true);
  const entry = ok.patchOperations![0]!.patches[0]!;
  const many = { ...ok, patchOperations: [{ ...ok.patchOperations![0]!, patches: Array.from({ length: 257 }, () => entry) }] };
  assert.equal(statusReportSchema.safeParse(many).success, false, 'more than 256 patches in one report');
  const odd = { ...ok, patchOperations: [{ ...ok.patchOperations![0]!, patches: [{ ...entry, classifications: ['Important'] }] }] };
  assert.equal(statusReportSchema.safeParse(odd).success, false);
});

test('a report naming a patch operation after an Object member (constructor, toString, …) answers nothing and does not stop the report\'s processing', async () => {
  // The operations in flight were a plain object: `ops['constructor']` found Object's constructor, and
  // reading its `.op.kind` threw inside the report's processing, so the machine's real answer in the same
  // report and its health were lost (logged as "agent report processing failed"), report after report.
  const { db, driver, now } = open(join(mkdtempSync(join(tmpdir(), 'pw-patch-driver-')), 'db.sqlite'));
  driver.bind({
    agentId: 'a1', machineId: 'm1', resourceId: '/x/m1', fingerprint: 'F', machineCertPem: '', thumbprint: 'T', enrolledAtMs: now, revokedAtMs: null,
    info: { agentVersion: '1', osName: 'L', osVersion: '1', computerName: 'h' },
  });
  const pending = driver.patches.installPatches({ machineId: 'm1', os: 'linux' }, req({ key: 'proto' }));
  const real = installReport('install:proto').patchOperations![0]!;
  const report: StatusReport = {
    ...statusReport(),
    patchOperations: ['constructor', 'toString', 'hasOwnProperty', 'valueOf', 'install:proto'].map((operationId) => ({ ...real, operationId })),
  };
  assert.doesNotThrow(() => driver.onReport('a1', report, now));
  const result = await pending;
  assert.equal(result.status, 'CompletedWithWarnings', 'the real operation in the same report was answered');
  assert.deepEqual(driver.goal('a1')!.patchOps, {});
  db.close();
});
