/**
 * One pass over a goal state: every extension brought to what the goal state asks, serially.
 *
 *   1. operations in flight from before a restart are finished first, with their own snapshot
 *   2. removals: handlers absent from the goal state, then `uninstall` entries (highest level first)
 *   3. `enabled` entries by dependencyLevel; an entry whose lower-level dependency is not enabled
 *      fails with the dependency's name (WALinuxAgent's rule), nothing of it runs
 *
 * An operation runs at most once per operationId: an outcome in the history is re-reported, never
 * re-executed. Two exceptions that ran nothing: `blocked` is re-evaluated when local policy changes,
 * and a download that failed for a transient reason is retried later (the operation stays open).
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GoalState, GoalStateExtension } from '../protocol/agent-wire.js';
import { enableOperation } from './enable-operation.js';
import type { ExtensionRecord, OperationJournal } from './journal.js';
import { downloadsDir, handlerDir } from './layout.js';
import { policyVerdict } from './local-policy.js';
import type { AgentRuntime } from './operation-context.js';
import { DownloadError, DownloadRejected } from './package-download.js';
import { outcome } from './prepare-version.js';
import { removeOperation } from './remove-operation.js';

export interface PassResult {
  /** Anything ran or any outcome was recorded (the status should be reported now). */
  changed: boolean;
  /** The earliest time an open operation wants to be tried again, or null. */
  retryAt: number | null;
}

const MAX_DOWNLOAD_BACKOFF_MS = 5 * 60_000;

function newOperation(rt: AgentRuntime, rec: ExtensionRecord, ext: GoalStateExtension): OperationJournal {
  const present = rec.installedVersion !== null && existsSync(handlerDir(rt.dirs, rec.name, rec.installedVersion));
  return {
    operationId: ext.operationId,
    ext: structuredClone(ext),
    fromVersion: present ? rec.installedVersion : null,
    fromState: present ? rec.state : 'NotInstalled',
    startedAt: rt.now(),
    steps: {},
    marks: [],
    waits: {},
    lastKnownGood: rec.lastKnownGood,
    retryAt: null,
    attempts: 0,
    lastError: null,
  };
}

/** Runs (or continues) `rec.op`; false when it stays open for a later retry. */
async function runOperation(rt: AgentRuntime, rec: ExtensionRecord, result: PassResult): Promise<boolean> {
  const op = rec.op;
  if (!op) return true;
  if (op.retryAt !== null && rt.now() < op.retryAt) {
    result.retryAt = Math.min(result.retryAt ?? Infinity, op.retryAt);
    return false;
  }
  result.changed = true;
  try {
    const o = op.ext.state === 'uninstall' ? await removeOperation(rt, rec, op) : await enableOperation(rt, rec, op);
    rt.log(`${rec.name}: operation ${op.operationId}: ${o.outcome}: ${o.message}`);
    rt.journal.finish(rec, o);
    return true;
  } catch (err) {
    if (err instanceof DownloadRejected) {
      rec.lastError = { code: 1004, message: err.message };
      rt.journal.finish(rec, outcome(op, rt, { outcome: 'rejected', version: rec.installedVersion, message: err.message }));
      return true;
    }
    if (!(err instanceof DownloadError)) throw err;
    op.attempts++;
    op.retryAt = rt.now() + Math.min(rt.downloadRetryMs * 2 ** (op.attempts - 1), MAX_DOWNLOAD_BACKOFF_MS);
    op.lastError = err.message;
    rec.lastError = { code: 1004, message: `${err.message}; retrying` };
    rt.journal.save();
    rt.log(`${rec.name}: ${err.message}; retrying in ${Math.round((op.retryAt - rt.now()) / 1000)} s`);
    result.retryAt = Math.min(result.retryAt ?? Infinity, op.retryAt);
    return false;
  }
}

/** Whether the goal-state entry still needs work. */
function needsWork(rt: AgentRuntime, rec: ExtensionRecord, ext: GoalStateExtension): boolean {
  const prior = rt.journal.outcomeOf(ext.name, ext.operationId);
  if (!prior) return true;
  return prior.outcome === 'blocked' && policyVerdict(rt.policy(), ext.name) === null && rec.op === null;
}

async function processEntry(rt: AgentRuntime, ext: GoalStateExtension, blockedBy: string | null, result: PassResult): Promise<void> {
  const rec = rt.journal.record(ext.name);
  if (rec.op && rec.op.operationId !== ext.operationId) {
    if (Object.keys(rec.op.steps).length > 0) await runOperation(rt, rec, result);
    else {
      rt.log(`${rec.name}: operation ${rec.op.operationId} superseded by ${ext.operationId} before anything ran`);
      rec.op = null;
      rt.journal.save();
    }
    if (rec.op) return; // still open (download retry): finish it before starting the next
  }
  if (!rec.op && !needsWork(rt, rec, ext)) return;
  if (!rec.op) {
    const verdict = policyVerdict(rt.policy(), ext.name);
    const refuse = (outcomeKind: 'blocked' | 'failed', code: number, message: string) => {
      result.changed = true;
      rec.lastError = { code, message };
      if (outcomeKind === 'blocked' && rec.installedVersion === null) rec.state = 'Blocked';
      rt.journal.finish(rec, { operationId: ext.operationId, outcome: outcomeKind, version: rec.installedVersion, message, finishedAt: new Date(rt.now()).toISOString() });
      rt.log(`${rec.name}: operation ${ext.operationId}: ${outcomeKind}: ${message}`);
    };
    if (verdict) return refuse('blocked', ext.state === 'uninstall' ? 1010 : 1009, `${verdict}; nothing ran`);
    if (rec.state === 'Blocked') rec.state = 'NotInstalled';
    if (ext.state === 'enabled' && rec.state === 'Failed') {
      return refuse('failed', 1009, `${ext.name} is Failed after a failed rollback; remove it (uninstall) and add it again`);
    }
    if (ext.state === 'enabled' && blockedBy) return refuse('failed', 1009, `dependency ${blockedBy} is not enabled; nothing ran`);
    rec.op = newOperation(rt, rec, ext);
    rt.journal.save();
  }
  await runOperation(rt, rec, result);
}

/** A removal entry for a handler the goal state no longer lists. */
function removalOf(rec: ExtensionRecord): GoalStateExtension {
  // Removal downloads nothing; the reference is only there to fill the entry.
  const none = { uris: ['https://localhost/'], sha256: '0'.repeat(64), size: 1, signature: { alg: 'ed25519' as const, keyId: 'none', sig: '' } };
  const pkg = rec.installedPackage ?? rec.lastKnownGood?.package ?? none;
  return {
    name: rec.name,
    extensionName: rec.name,
    version: rec.installedVersion ?? '0',
    state: 'uninstall',
    autoUpgrade: false,
    package: pkg,
    dependencyLevel: 0,
    settingsSeqNo: rec.installedSeq ?? 0,
    settings: { publicSettings: null, protectedSettings: null, protectedSettingsCertThumbprint: null },
    operationId: `removed-from-goal-state:${rec.name}`,
    rollback: { enabled: false, healthGateSeconds: 0 },
  };
}

export async function convergeOnce(rt: AgentRuntime, goal: GoalState): Promise<PassResult> {
  const result: PassResult = { changed: false, retryAt: null };
  const listed = new Set(goal.extensions.map((e) => e.name));
  for (const rec of Object.values(rt.journal.state.extensions)) {
    if (listed.has(rec.name)) continue;
    if (rec.op && rec.op.ext.state !== 'uninstall') {
      if (Object.keys(rec.op.steps).length > 0) await runOperation(rt, rec, result); // finish what started
      else {
        rt.log(`${rec.name}: operation ${rec.op.operationId} dropped before anything ran: the goal state no longer lists ${rec.name}`);
        rec.op = null;
        rt.journal.save();
      }
      if (rec.op) continue; // still open (a download for its rollback): removal comes after it
    }
    if (rec.installedVersion === null && rec.op === null && rec.state !== 'Failed') {
      delete rt.journal.state.extensions[rec.name];
      rt.journal.save();
      continue;
    }
    await processEntry(rt, removalOf(rec), null, result);
    if (rec.op === null) {
      delete rt.journal.state.extensions[rec.name];
      rt.journal.save();
    }
  }
  const byLevel = (a: GoalStateExtension, b: GoalStateExtension) => a.dependencyLevel - b.dependencyLevel;
  const uninstalls = goal.extensions.filter((e) => e.state === 'uninstall').sort(byLevel).reverse();
  for (const ext of uninstalls) await processEntry(rt, ext, null, result);
  let notEnabled: { name: string; level: number } | null = null;
  for (const ext of goal.extensions.filter((e) => e.state === 'enabled').sort(byLevel)) {
    const blockedBy = notEnabled && notEnabled.level < ext.dependencyLevel ? notEnabled.name : null;
    await processEntry(rt, ext, blockedBy, result);
    const rec = rt.journal.state.extensions[ext.name];
    if (!notEnabled && rec?.state !== 'Enabled') notEnabled = { name: ext.name, level: ext.dependencyLevel };
  }
  pruneDownloads(rt, goal);
  return result;
}

/**
 * Deletes partial downloads no operation can resume: an operation dropped or superseded while its
 * download was failing leaves its `.part` behind (up to a package's size each), and a server that keeps
 * changing the goal state would otherwise fill the disk with them.
 */
function pruneDownloads(rt: AgentRuntime, goal: GoalState): void {
  const live = new Set(goal.extensions.map((e) => e.package.sha256.toLowerCase()));
  for (const rec of Object.values(rt.journal.state.extensions)) {
    for (const ref of [rec.op?.ext.package, rec.installedPackage, rec.lastKnownGood?.package]) if (ref) live.add(ref.sha256.toLowerCase());
  }
  const dir = downloadsDir(rt.dirs);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // nothing downloaded yet
  }
  for (const n of names) {
    const m = /^([0-9a-f]{64})\.part$/.exec(n);
    if (!m || live.has(m[1]!)) continue;
    rmSync(join(dir, n), { force: true });
    rt.log(`removed the partial download ${n}: no operation needs it any more`);
  }
}
