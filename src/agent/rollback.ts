/**
 * Rollback on the machine (R22, R30, R31), as Arc does it: after a failed install, update or enable of
 * B (or a failed health gate), uninstall B (best effort), reinstall the last known good A from the
 * rollback cache (install then enable, the same seq's settings) and report `rolledBack` with a Rollback
 * substatus. If that fails too the extension is `Failed` until the goal state removes it and adds it again.
 *
 *   failure of B ─▶ uninstall B ─▶ delete B ─▶ A's folder still there? ── yes ─▶ settings ─▶ enable A
 *                                                   │ no
 *                                                   ▼
 *                                unpack A from cache ─▶ settings ─▶ install A ─▶ enable A
 *                                                   ▼
 *                             terminal success? ── yes ─▶ rolledBack   no ─▶ Failed (terminal)
 */
import { existsSync, rmSync } from 'node:fs';
import { outcome, prepareVersion } from './prepare-version.js';
import { writeSettings } from './handler-files.js';
import type { ExtensionRecord, OperationJournal, OutcomeRecord } from './journal.js';
import { handlerDir } from './layout.js';
import { ensurePackage, failureOf, once, runCommand, StepFailure, succeeded, waitTerminalStatus } from './operation-context.js';
import type { AgentRuntime } from './operation-context.js';

function stateAfterFailure(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal, failure: StepFailure): OutcomeRecord {
  const left = rec.installedVersion;
  const tail = left ? `; ${op.ext.name} ${left} is ${rec.state === 'Enabled' ? 'enabled' : rec.state.toLowerCase()}` : '';
  return outcome(op, rt, { outcome: 'failed', version: left, message: `${failure.message}${tail}` });
}

function anyCommandOf(op: OperationJournal, version: string): boolean {
  return Object.keys(op.steps).some((k) => k.endsWith(`@${version}`) && !k.startsWith('rollback:') && !k.startsWith('disable@') && !k.startsWith('uninstall@'));
}

export async function rollBack(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal, failure: StepFailure): Promise<OutcomeRecord> {
  const lkg = op.lastKnownGood;
  const B = op.ext.version;
  if (!op.ext.rollback.enabled || lkg === null || lkg.version === B) return stateAfterFailure(rt, rec, op, failure);
  const A = lkg.version;
  rt.log(`${rec.name}: ${failure.message}; rolling back to ${A}`);
  try {
    const baseB = handlerDir(rt.dirs, rec.name, B);
    if (existsSync(baseB) && anyCommandOf(op, B)) {
      const r = await runCommand(rt, rec, op, `rollback:uninstall@${B}`, 'uninstall', B, {});
      if (!succeeded(r)) rt.log(`${rec.name}: uninstall of ${B} during rollback failed (ignored): exit ${r.exitCode ?? 'none'}`);
    }
    await once(rt, op, `rollback:delete@${B}`, () => {
      rmSync(baseB, { recursive: true, force: true });
      if (rec.installedVersion === B) rec.installedVersion = null;
      rec.state = 'NotInstalled';
    });
    const baseA = handlerDir(rt.dirs, rec.name, A);
    const aStillInstalled = existsSync(baseA) && !op.marks.includes(`delete@${A}`) && !op.marks.includes('rollback:reinstall');
    const env = { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN' };
    if (aStillInstalled) {
      await once(rt, op, `rollback:settings@${A}`, () => writeSettings(baseA, op.ext));
    } else {
      await once(rt, op, 'rollback:reinstall', () => undefined);
      const zip = await ensurePackage(rt, rec.name, A, lkg.package);
      await prepareVersion(rt, op, A, zip, 'rollback:');
      const install = await runCommand(rt, rec, op, `rollback:install@${A}`, 'install', A, env);
      if (!succeeded(install)) throw failureOf(rt, 'install', A, install);
    }
    rec.installedVersion = A;
    rec.state = 'Installed';
    rt.journal.save();
    const enable = await runCommand(rt, rec, op, `rollback:enable@${A}`, 'enable', A, env);
    if (!succeeded(enable)) throw failureOf(rt, 'enable', A, enable);
    rec.state = 'Enabled';
    rec.installedSeq = op.ext.settingsSeqNo;
    rec.installedPackage = lkg.package;
    rt.journal.save();
    const status = await waitTerminalStatus(rt, op, A);
    if (status.status !== 'success') throw new StepFailure(`${A} reported error ${status.code} after the rollback`, status.code || 1009);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    rec.state = 'Failed';
    rec.lastError = { code: failure.code, message: `${failure.message}; the rollback to ${A} failed too: ${why}` };
    rt.journal.save();
    return outcome(op, rt, {
      outcome: 'failed',
      version: null,
      message: `${failure.message}; the rollback to ${A} failed too: ${why}. ${rec.name} is Failed until it is removed and added again`,
      rollback: { status: 'error', message: `rollback to ${A} failed: ${why}` },
    });
  }
  return outcome(op, rt, { outcome: 'rolledBack', version: A, message: failure.message, rollback: { status: 'success', message: `rolled back to ${A}` } });
}
