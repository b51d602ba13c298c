/**
 * Guest OS patch operations on the machine (issue 16), each run at most once per operationId:
 *
 *   assess ─ the package manager's read-only commands; the list is journaled
 *   install ─ assess, select (classifications, masks), then one journaled install command per package
 *     │       (a restart picks a running one up, never starts it twice); no package is started that
 *     │       the maximum duration cannot fit: the rest are Pending, maintenanceWindowExceeded
 *     ▼
 *   reboot ─ rebootSetting (Never / IfRequired / Always) and the manager's reboot check decide; a reboot
 *            is announced first as a `Reboot` scheduled event (R83) and starts when approved or at its
 *            NotBefore; the boot id journaled before the command tells a restart it happened (Completed)
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GoalState, GoalStatePatchOperation, PatchClassification, PatchOperationReport, PatchReportEntry, ScheduledEvent } from '../protocol/agent-wire.js';
import { PATCH_LIMITS } from '../protocol/agent-wire.js';
import { runStep } from './handler-process.js';
import type { ProcessRuntime } from './handler-process.js';
import type { Journal, PatchOpJournal } from './journal.js';
import type { AgentDirs } from './layout.js';
import { commandEnv, resolveBinary, runArgv, shellLine } from './patching/commands.js';
import { selectionOf } from './patching/selection.js';
import { AssessmentError, invalidPackage } from './patching/types.js';
import type { PackageManager } from './patching/types.js';

export interface PatchRuntime extends ProcessRuntime {
  dirs: AgentDirs;
  journal: Journal;
  /** null: the machine has no package manager the agent knows (operations fail, saying so). */
  manager: PackageManager | null;
  binDirs: string[];
  /** A shell command line that reboots the machine. */
  rebootCommand: string;
  /** Multiplies durations from the goal state (maximum duration, reboot notice); tests use < 1. */
  timeScale: number;
  /** Time a package install is assumed to need: none starts with less left in the window. */
  packageBudgetMs: number;
  /** Timeout of each read-only command (assessment, reboot check). */
  commandTimeoutMs: number;
  readBootId: () => string | null;
  /** Something a status report shows changed (a package done, a reboot announced). */
  changed: () => void;
}

const DONE_IDS = 256;
const RANK: Record<PatchClassification, number> = { Critical: 0, Security: 1, Other: 2 };

export function readBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function eventIdOf(operationId: string): string {
  const h = createHash('sha256').update(`reboot|${operationId}`).digest('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The agent's own scheduled events: the announced reboot of the patch operation in flight. */
export function patchEvents(journal: Journal, resourceId: string): ScheduledEvent[] {
  const op = journal.state.patches.current;
  if (!op?.reboot) return [];
  return [{
    EventId: op.reboot.eventId,
    EventType: 'Reboot',
    ResourceType: 'VirtualMachine',
    Resources: [resourceId],
    EventStatus: op.reboot.state === 'started' ? 'Started' : 'Scheduled',
    NotBefore: new Date(op.reboot.notBefore).toUTCString(),
    Description: `Reboot after installing guest OS patches (operation ${op.request.operationId})`,
    EventSource: 'Platform',
    DurationInSeconds: -1,
  }];
}

/**
 * Approves the announced reboot (IMDS StartRequests); false when `eventId` is not it. The server's
 * notice of this run's reboot (same EventId) may be approved before the agent announces its own: kept.
 */
export function approvePatchReboot(journal: Journal, eventId: string): boolean {
  const op = journal.state.patches.current;
  const r = op?.reboot;
  if (r && r.eventId.toLowerCase() === eventId.toLowerCase()) {
    r.approved = true;
    journal.save();
    return true;
  }
  if (!op || r || op.request.install?.rebootEventId?.toLowerCase() !== eventId.toLowerCase()) return false;
  op.rebootApprovedEarly = true;
  journal.save();
  return true;
}

/** After a start: reboots started by an earlier boot have completed. */
export function noteBoot(journal: Journal, bootId: string | null): void {
  let changed = false;
  for (const h of journal.state.patches.history) {
    if (h.report.rebootStatus === 'Started' && h.bootId && bootId && h.bootId !== bootId) {
      h.report.rebootStatus = 'Completed';
      changed = true;
    }
  }
  if (changed) journal.save();
}

const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);

type PatchResult = PatchOpJournal['results'][string];

/**
 * A package's result, by name. Names come from the repository: `constructor` or `toString` must not find
 * Object's members (they were taken for done and never installed), nor `__proto__` set the prototype.
 */
function resultOf(op: PatchOpJournal, name: string): PatchResult | undefined {
  return Object.hasOwn(op.results, name) ? op.results[name] : undefined;
}

function setResult(op: PatchOpJournal, name: string, r: PatchResult): void {
  Object.defineProperty(op.results, name, { value: r, enumerable: true, writable: true, configurable: true });
}

/** The result document of an operation (in progress or finished), bounded for the status report. */
export function reportOf(op: PatchOpJournal, finishedAt: number | null, rebootStatus: PatchOperationReport['rebootStatus']): PatchOperationReport {
  const counts = { critical: 0, security: 0, other: 0, installed: 0, failed: 0, pending: 0, notSelected: 0, excluded: 0 };
  const patches: PatchReportEntry[] = [];
  const install = op.request.install;
  for (const p of op.available ?? []) {
    const c = p.classifications[0] ?? 'Other';
    if (c === 'Critical') counts.critical++;
    else if (c === 'Security') counts.security++;
    else counts.other++;
    const entry: PatchReportEntry = {
      name: cut(p.name, PATCH_LIMITS.patchNameChars),
      version: cut(p.version, PATCH_LIMITS.patchVersionChars),
      classifications: p.classifications,
      rebootBehavior: p.rebootBehavior,
    };
    if (install) {
      const verdict = selectionOf(p, install);
      const r = resultOf(op, p.name);
      const state = verdict === 'Selected' ? (r?.state ?? 'Pending') : verdict;
      entry.installationState = state;
      if (r?.message) entry.message = cut(r.message, 500);
      if (state === 'Installed') counts.installed++;
      else if (state === 'Failed') counts.failed++;
      else if (state === 'Pending') counts.pending++;
      else if (state === 'NotSelected') counts.notSelected++;
      else counts.excluded++;
    }
    patches.push(entry);
  }
  const failedAll = install && counts.failed > 0 && counts.installed === 0;
  const warnings = (install && (counts.failed > 0 || op.windowExceeded)) || rebootStatus === 'Failed';
  const status: PatchOperationReport['status'] = finishedAt === null ? 'InProgress' : op.error || failedAll ? 'Failed' : warnings ? 'CompletedWithWarnings' : 'Succeeded';
  const order = (e: PatchReportEntry) => (e.installationState === 'Failed' ? 0 : e.installationState === 'Installed' ? 1 : 2) * 10 + RANK[e.classifications[0] ?? 'Other'];
  patches.sort((a, b) => order(a) - order(b) || a.name.localeCompare(b.name));
  return {
    operationId: op.request.operationId,
    kind: op.request.kind,
    status,
    packageManager: op.manager,
    startedAt: new Date(op.startedAt).toISOString(),
    finishedAt: finishedAt === null ? null : new Date(finishedAt).toISOString(),
    counts,
    patches: patches.slice(0, PATCH_LIMITS.patchesPerReport),
    truncated: patches.length > PATCH_LIMITS.patchesPerReport,
    rebootPending: op.rebootRequired ?? op.rebootPending ?? false,
    rebootStatus,
    maintenanceWindowExceeded: op.windowExceeded,
    error: op.error,
  };
}

/** The reports the status document carries: the goal state's operations, in progress or done. */
export function patchReports(journal: Journal, goal: GoalState | null): PatchOperationReport[] {
  const ps = journal.state.patches;
  const out: PatchOperationReport[] = [];
  let budget: number = PATCH_LIMITS.patchesPerReport;
  for (const req of goal?.patchOperations ?? []) {
    const r = ps.current?.request.operationId === req.operationId
      ? reportOf(ps.current, null, ps.current.reboot ? 'Required' : 'NotNeeded')
      : ps.history.find((x) => x.report.operationId === req.operationId)?.report;
    if (!r) continue;
    // All operations of one report share the budget; the list is cut, never the counts.
    const patches = r.patches.slice(0, budget);
    budget -= patches.length;
    out.push({ ...r, patches, truncated: r.truncated || patches.length < r.patches.length });
  }
  return out;
}

async function rebootNeeded(prt: PatchRuntime, m: PackageManager): Promise<boolean> {
  const check = m.rebootCheck();
  if ('file' in check) return existsSync(check.file);
  const o = await runArgv(check.argv, prt.binDirs, prt.commandTimeoutMs);
  if (o.exitCode === 127) prt.log(`patching: ${check.argv[0]} is not installed; reboot need unknown, taken as not needed`);
  return check.requiredWhen(o);
}

async function assess(prt: PatchRuntime, m: PackageManager, op: PatchOpJournal): Promise<void> {
  const outputs = [];
  for (const argv of m.assessCommands()) outputs.push(await runArgv(argv, prt.binDirs, prt.commandTimeoutMs));
  for (const argv of m.followUpCommands?.(outputs) ?? []) outputs.push(await runArgv(argv, prt.binDirs, prt.commandTimeoutMs));
  op.available = m.parseAssessment(outputs);
  op.rebootPending = await rebootNeeded(prt, m);
  prt.journal.save();
  prt.log(`patching ${op.request.operationId}: ${m.name} offers ${op.available.length} updates`);
}

function finish(prt: PatchRuntime, op: PatchOpJournal, rebootStatus: PatchOperationReport['rebootStatus'], bootId: string | null = null): void {
  const ps = prt.journal.state.patches;
  const report = reportOf(op, prt.now(), rebootStatus);
  ps.history = [{ report, bootId }, ...ps.history.filter((h) => h.report.operationId !== report.operationId)].slice(0, PATCH_LIMITS.historyPerAgent);
  ps.doneIds = [op.request.operationId, ...ps.doneIds.filter((id) => id !== op.request.operationId)].slice(0, DONE_IDS);
  ps.current = null;
  ps.eventSeq += op.reboot ? 1 : 0;
  prt.journal.save();
  prt.journal.forgetRuns(op.steps);
  prt.log(`patching ${report.operationId}: ${report.status} (installed ${report.counts.installed}, failed ${report.counts.failed}, pending ${report.counts.pending}; reboot ${rebootStatus})`);
  prt.changed();
}

async function installSelected(prt: PatchRuntime, m: PackageManager, op: PatchOpJournal): Promise<void> {
  const req = op.request.install!;
  const windowMs = req.maximumDurationSeconds * 1000 * prt.timeScale;
  const selected = (op.available ?? []).filter((p) => selectionOf(p, req) === 'Selected')
    .sort((a, b) => RANK[a.classifications[0] ?? 'Other'] - RANK[b.classifications[0] ?? 'Other'] || a.name.localeCompare(b.name));
  for (const p of selected) {
    if (resultOf(op, p.name)) continue;
    const key = `install:${p.name}`;
    const left = op.startedAt + windowMs - prt.now();
    if (!op.steps[key] && left < prt.packageBudgetMs) {
      op.windowExceeded = true;
      for (const rest of selected) if (!resultOf(op, rest.name)) setResult(op, rest.name, { state: 'Pending', message: 'not started: the maximum duration would have been exceeded' });
      prt.journal.save();
      prt.log(`patching ${op.request.operationId}: ${Math.max(0, Math.round(left / 1000))} s left of the window; the rest stays pending`);
      return;
    }
    // Checked here, where the name becomes an argument: the assessment's list is the repository's words.
    const invalid = invalidPackage(p, m.name === 'apt');
    if (invalid) {
      setResult(op, p.name, { state: 'Failed', message: invalid });
      prt.journal.save();
      prt.log(`patching ${op.request.operationId}: ${invalid}`);
      continue;
    }
    const argv = m.installCommand(p);
    const bin = resolveBinary(argv[0]!, prt.binDirs);
    if (!bin) {
      setResult(op, p.name, { state: 'Failed', message: `${argv[0]} not found in ${prt.binDirs.join(':')}` });
      prt.journal.save();
      continue;
    }
    const r = await runStep(prt.dirs, prt.journal, 'patching', { operationId: op.request.operationId, steps: op.steps }, {
      key, command: shellLine(bin, argv.slice(1)), cwd: '/', env: commandEnv(), timeoutMs: Math.max(1000, left),
      logFile: join(prt.dirs.log, 'patching.log'), outputKeep: 256 * 1024,
    }, prt);
    const o = m.parseInstall({ stdout: r.output, exitCode: r.exitCode });
    if (r.timedOut) setResult(op, p.name, { state: 'Failed', message: 'the install command ran past the maximum duration and was killed' });
    else if (o.installed.get(p.name) === p.version || (r.exitCode === 0 && !o.failed.has(p.name))) setResult(op, p.name, { state: 'Installed' });
    else setResult(op, p.name, { state: 'Failed', message: o.failed.get(p.name) ?? o.error ?? `exit ${r.exitCode ?? 'unknown'}` });
    // Selected packages this command upgraded as dependencies are done too: their own command is not run.
    for (const other of selected) if (!resultOf(op, other.name) && o.installed.get(other.name) === other.version) setResult(op, other.name, { state: 'Installed' });
    op.steps[key]!.output = cut(r.output, 500); // the journal keeps the gist, the log file the rest
    prt.journal.save();
    prt.changed();
  }
}

function runReboot(prt: PatchRuntime): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile('/bin/sh', ['-c', prt.rebootCommand], { env: commandEnv(), timeout: 120_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}`.trim().slice(0, 500) });
    });
  });
}

/** Runs (or continues) `op`; returns the time to come back (a reboot's NotBefore) or null when it finished. */
async function continueOp(prt: PatchRuntime, op: PatchOpJournal): Promise<number | null> {
  const m = prt.manager;
  if (!m) {
    op.error = { code: 'NoPackageManager', message: 'no package manager this agent knows (apt, dnf, yum, zypper) was found; Windows Update is not supported' };
    finish(prt, op, 'NotNeeded');
    return null;
  }
  if (!op.available) {
    try {
      await assess(prt, m, op);
    } catch (err) {
      if (!(err instanceof AssessmentError)) throw err;
      op.error = { code: 'AssessmentFailed', message: cut(err.message, 1000) };
      finish(prt, op, 'NotNeeded');
      return null;
    }
  }
  const req = op.request.install;
  if (!req) {
    finish(prt, op, op.rebootPending ? 'Required' : 'NotNeeded');
    return null;
  }
  if (!op.reboot) {
    await installSelected(prt, m, op);
    if (op.rebootRequired === null) {
      op.rebootRequired = await rebootNeeded(prt, m);
      prt.journal.save();
    }
    const need = req.rebootSetting === 'Always' || (req.rebootSetting === 'IfRequired' && op.rebootRequired);
    if (!need) {
      finish(prt, op, op.rebootRequired ? 'Required' : 'NotNeeded');
      return null;
    }
    // R83: announced before it happens, with NotBefore the notice period away.
    op.reboot = {
      eventId: req.rebootEventId ?? eventIdOf(op.request.operationId), notBefore: prt.now() + req.rebootNoticeSeconds * 1000 * prt.timeScale,
      approved: op.rebootApprovedEarly === true, state: 'announced', bootId: null,
    };
    prt.journal.state.patches.eventSeq++;
    prt.journal.save();
    prt.log(`patching ${op.request.operationId}: reboot announced (event ${op.reboot.eventId}, not before ${new Date(op.reboot.notBefore).toISOString()})`);
    prt.changed();
  }
  const r = op.reboot;
  if (r.state === 'announced') {
    if (!r.approved && prt.now() < r.notBefore) return r.notBefore;
    r.state = 'started';
    r.bootId = prt.readBootId();
    prt.journal.state.patches.eventSeq++;
    prt.journal.save(); // before the command: a restart after it never reboots again
    prt.changed();
    const done = await runReboot(prt);
    prt.log(`patching ${op.request.operationId}: reboot command ${done.ok ? 'started the reboot' : `failed: ${done.output}`}`);
    finish(prt, op, done.ok ? 'Started' : 'Failed', r.bootId);
    return null;
  }
  // Started before a restart: it ran (or the machine went down with it) — never run twice.
  const now = prt.readBootId();
  finish(prt, op, r.bootId && now && r.bootId !== now ? 'Completed' : 'Started', r.bootId);
  return null;
}

function newOp(req: GoalStatePatchOperation, prt: PatchRuntime): PatchOpJournal {
  return {
    request: structuredClone(req), startedAt: prt.now(), manager: prt.manager?.name ?? 'none', available: null, rebootPending: null,
    results: {}, steps: {}, windowExceeded: false, rebootRequired: null, reboot: null, error: null,
  };
}

/** One pass over the goal state's patch operations; the time to come back for a pending reboot, or null. */
export async function patchPass(prt: PatchRuntime, goal: GoalState): Promise<number | null> {
  const ps = prt.journal.state.patches;
  if (ps.current) {
    prt.log(`patching ${ps.current.request.operationId}: continuing`);
    const at = await continueOp(prt, ps.current);
    if (at !== null) return at;
  }
  for (const req of goal.patchOperations ?? []) {
    if (ps.doneIds.includes(req.operationId)) continue;
    ps.current = newOp(req, prt);
    prt.journal.save();
    prt.changed();
    prt.log(`patching ${req.operationId}: ${req.kind} started with ${ps.current.manager}`);
    const at = await continueOp(prt, ps.current);
    if (at !== null) return at;
  }
  return null;
}
