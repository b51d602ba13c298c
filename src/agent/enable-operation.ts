/**
 * Bringing an extension to `enabled` at the goal state's version and seq (agent-protocol §3.2–§3.4):
 *
 *   same version, new seq ──▶ settings ─▶ enable ─▶ terminal status ─▶ health gate ─▶ succeeded (LKG)
 *   nothing installed ─────▶ package ─▶ unpack+init ─▶ settings ─▶ install ─▶ enable ─▶ … ─▶ succeeded
 *   A installed, want B ───▶ package ─▶ unpack+init B ─▶ settings ─▶ disable A ─▶ copy mrseq/status
 *                            ─▶ update (B's; A's on a downgrade) ─▶ uninstall A ─▶ delete A
 *                            ─▶ install B (UpdateWithInstall) ─▶ enable B ─▶ … ─▶ succeeded (LKG = B)
 *   any failure after the package checked out ──▶ rollback.ts (last known good) or failed
 *
 * Every command runs at most once per operation (handler-process journals it), every file step is
 * marked, so replaying this function after `kill -9` continues where the machine was.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GoalStateExtension } from '../protocol/agent-wire.js';
import { copyHandlerFile, writeSettings } from './handler-files.js';
import { ManifestError } from './handler-manifest.js';
import type { HandlerManifest } from './handler-manifest.js';
import type { CommandResult } from './handler-process.js';
import type { ExtensionRecord, OperationJournal, OutcomeRecord } from './journal.js';
import { cachedPackagePath, handlerDir } from './layout.js';
import {
  ensurePackage,
  exitCodeText,
  failureOf,
  once,
  runCommand,
  StepFailure,
  succeeded,
  waitHealthy,
  waitTerminalStatus,
} from './operation-context.js';
import type { AgentRuntime } from './operation-context.js';
import { PackageRejected } from './package-verify.js';
import { compareVersions } from './versions.js';
import { rollBack } from './rollback.js';
import { outcome, prepareVersion } from './prepare-version.js';

function copyHandlerState(fromBase: string, toBase: string): void {
  if (!existsSync(fromBase)) return;
  copyHandlerFile(join(fromBase, 'mrseq'), join(toBase, 'mrseq'));
  const status = join(fromBase, 'status');
  if (!existsSync(status)) return;
  mkdirSync(join(toBase, 'status'), { recursive: true, mode: 0o700 });
  for (const f of readdirSync(status).slice(0, 10_000)) {
    if (/^\d+\.status$/.test(f) && !existsSync(join(toBase, 'status', f))) copyHandlerFile(join(status, f), join(toBase, 'status', f));
  }
}

function ensureOk(rt: AgentRuntime, cmd: Parameters<typeof failureOf>[1], version: string, r: CommandResult): void {
  if (!succeeded(r)) throw failureOf(rt, cmd, version, r);
}

/** enable → terminal success → health gate → Enabled and last known good. */
async function enableAndConfirm(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal, version: string, env: Record<string, string>): Promise<void> {
  const r = await runCommand(rt, rec, op, `enable@${version}`, 'enable', version, env);
  ensureOk(rt, 'enable', version, r);
  rec.state = 'Enabled';
  rec.installedVersion = version;
  rec.installedSeq = op.ext.settingsSeqNo;
  rt.journal.save();
  const status = await waitTerminalStatus(rt, op, version);
  if (status.status !== 'success') {
    throw new StepFailure(`${op.ext.name} ${version} reported error ${status.code}: ${status.formattedMessage?.message ?? '(no message)'}`, status.code || 1009);
  }
  await waitHealthy(rt, op, version, op.steps[`enable@${version}`]?.finishedAt ?? rt.now());
  rec.lastKnownGood = { version, seq: op.ext.settingsSeqNo, package: op.ext.package };
  rec.installedPackage = op.ext.package;
  rec.lastError = null;
  rt.journal.save();
  pruneCache(rt, rec);
}

/** Keeps only the zips of the installed version and the last known good one. */
function pruneCache(rt: AgentRuntime, rec: ExtensionRecord): void {
  const keep = new Set([rec.installedVersion, rec.lastKnownGood?.version].filter((v): v is string => v !== null && v !== undefined).map((v) => cachedPackagePath(rt.dirs, rec.name, v)));
  const dir = join(rt.dirs.lib, '.agent', 'packages');
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (f.startsWith(`${rec.name}__`) && !keep.has(p)) rmSync(p, { force: true });
  }
}

/** Same version: write the new settings and enable (§3.3). No rollback: the version is the same. */
async function changeSettings(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal): Promise<OutcomeRecord> {
  const ext = op.ext;
  if (rec.state === 'Enabled' && rec.installedSeq === ext.settingsSeqNo) {
    return outcome(op, rt, { outcome: 'succeeded', version: ext.version, message: `${ext.name} ${ext.version} is enabled with settings ${ext.settingsSeqNo}` });
  }
  const base = handlerDir(rt.dirs, ext.name, ext.version);
  await once(rt, op, `settings@${ext.version}`, () => writeSettings(base, ext));
  try {
    await enableAndConfirm(rt, rec, op, ext.version, { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: 'NOT_RUN' });
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    rec.lastError = { code: err.code, message: err.message };
    return outcome(op, rt, { outcome: 'failed', version: rec.installedVersion, message: err.message });
  }
  return outcome(op, rt, { outcome: 'succeeded', version: ext.version, message: `${ext.name} ${ext.version} enabled with settings ${ext.settingsSeqNo}` });
}

/** The new version B over A (or over nothing): §3.2 and §3.4. */
async function installVersion(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal): Promise<OutcomeRecord> {
  const ext = op.ext;
  const B = ext.version;
  const A = op.fromVersion; // the snapshot at the start: a replay must take the same path
  if (op.failure) return rollBack(rt, rec, op, new StepFailure(op.failure.message, op.failure.code));
  let manifestB: HandlerManifest;
  try {
    const zip = await ensurePackage(rt, ext.name, B, ext.package);
    manifestB = await prepareVersion(rt, op, B, zip);
  } catch (err) {
    if (err instanceof PackageRejected || err instanceof ManifestError) {
      rmSync(handlerDir(rt.dirs, ext.name, B), { recursive: true, force: true });
      const code = err instanceof ManifestError ? err.code : 1005;
      rec.lastError = { code, message: err.message };
      const what = A ? `; ${A} keeps running` : '';
      return outcome(op, rt, { outcome: err instanceof PackageRejected ? 'rejected' : 'failed', version: A, message: `${err.message}${what}` });
    }
    throw err; // DownloadError: the caller retries later
  }
  try {
    await upgradeSteps(rt, rec, op, A, manifestB);
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    rec.lastError = { code: err.code, message: err.message };
    op.failure = { message: err.message, code: err.code };
    rt.journal.save();
    return rollBack(rt, rec, op, err);
  }
  const how = A === null ? 'installed' : compareVersions(B, A) > 0 ? `upgraded from ${A}` : `downgraded from ${A}`;
  return outcome(op, rt, { outcome: 'succeeded', version: B, message: `${ext.name} ${B} ${how} and enabled` });
}

async function upgradeSteps(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal, A: string | null, manifestB: HandlerManifest): Promise<void> {
  const B = op.ext.version;
  let disableResult: CommandResult | null = null;
  let uninstallResult: CommandResult | null = null;
  if (A !== null) {
    if (op.fromState === 'Enabled') {
      disableResult = await runCommand(rt, rec, op, `disable@${A}`, 'disable', A, {});
      if (!succeeded(disableResult) && !manifestB.continueOnUpdateFailure) throw failureOf(rt, 'disable', A, disableResult);
      rec.state = 'Installed';
      rt.journal.save();
    }
    await once(rt, op, `copy@${A}`, () => copyHandlerState(handlerDir(rt.dirs, op.ext.name, A), handlerDir(rt.dirs, op.ext.name, B)));
    // A downgrade runs the old, higher version's updateCommand (§3.4 "Downgrade").
    const updater = compareVersions(B, A) > 0 ? B : A;
    const update = await runCommand(rt, rec, op, `update@${B}`, 'update', B, {
      VERSION: B,
      AZURE_GUEST_AGENT_UPDATING_FROM_VERSION: A,
      AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE: exitCodeText(disableResult),
    }, updater);
    ensureOk(rt, 'update', B, update);
    uninstallResult = await runCommand(rt, rec, op, `uninstall@${A}`, 'uninstall', A, {});
    if (!succeeded(uninstallResult) && !manifestB.continueOnUpdateFailure) throw failureOf(rt, 'uninstall', A, uninstallResult);
    await once(rt, op, `delete@${A}`, () => {
      rmSync(handlerDir(rt.dirs, op.ext.name, A), { recursive: true, force: true });
      rec.state = 'NotInstalled';
      rec.installedVersion = null;
    });
  }
  const uninstallEnv = { AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE: exitCodeText(uninstallResult) };
  if (A === null || manifestB.updateMode === 'UpdateWithInstall') {
    ensureOk(rt, 'install', B, await runCommand(rt, rec, op, `install@${B}`, 'install', B, uninstallEnv));
  }
  if (rec.installedVersion !== B) {
    rec.state = 'Installed';
    rec.installedVersion = B;
    rec.installedSeq = op.ext.settingsSeqNo;
    rt.journal.save();
  }
  await enableAndConfirm(rt, rec, op, B, uninstallEnv);
}

/** One `enabled` operation, from its journal; throws DownloadError when the package cannot be had now. */
export async function enableOperation(rt: AgentRuntime, rec: ExtensionRecord, op: OperationJournal): Promise<OutcomeRecord> {
  const ext: GoalStateExtension = op.ext;
  return op.fromVersion === ext.version ? changeSettings(rt, rec, op) : installVersion(rt, rec, op);
}
