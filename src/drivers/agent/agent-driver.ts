/**
 * The engine's Driver for machines bound to a `phasewise agent`. An action becomes a change of the
 * agent's goal state (persisted with its idempotency key, so a restart of serve or a resend changes
 * nothing and re-answers a known outcome); the agent's status reports become Observations: the
 * action's result when `agentState[name].lastOperation.operationId` is the key, and health signals
 * (platform: heartbeat fresh on the wall clock; application: the Application Health verdict).
 */
import { randomUUID } from 'node:crypto';
import type { Driver, DriverAction, Observation, PatchDriver } from '../../engine/driver.js';
import type { FleetState } from '../../engine/state.js';
import type { HealthSignals } from '../../model/health.js';
import type { PatchAssessment, PatchInstallation, PatchInstallRequest, PatchTarget } from '../../model/patches.js';
import { installationCounts, platformRebootEventId } from '../../model/patches.js';
import type { AgentExtensionReport, GoalStatePatchOperation, StatusReport } from '../../protocol/agent-wire.js';
import { PATCH_LIMITS } from '../../protocol/agent-wire.js';
import type { AgentGoal, AgentRecord, AgentStore, GoalEntry, OperationRecord } from './agent-store.js';
import { assessmentOf, assessOperationOf, installationOf, installOperationOf, REBOOT_NOTICE_SECONDS } from './patch-wire.js';

export const REIMAGE_UNSUPPORTED = 're-image is not supported on agent-managed machines: Phasewise cannot replace the OS disk of a machine it reaches only through its agent';

export const WINDOWS_UNSUPPORTED =
  'guest OS patching of Windows machines through the Phasewise agent is not supported: the agent patches with apt, dnf, yum or zypper, and Windows Update is out of its reach';

/** Missed status intervals after which a machine is Disconnected (agent-protocol §8, as Arc). */
export const MISSED_INTERVALS = 3;

export interface AgentDriverOptions {
  store: AgentStore;
  fleet: () => FleetState;
  /** The engine's clock (observations are stamped with it). */
  engineNow: () => number;
  /** The wall clock: heartbeats are real time even when the engine's clock runs faster. */
  wallNow: () => number;
  statusIntervalSeconds: number;
  /** True when a package is uploaded for this version (artifactKey `extension:publisher.type`). */
  hasPackage: (artifactKey: string, version: string) => boolean;
  /** R83: notice of a patch reboot, in seconds (default 15 minutes). */
  rebootNoticeSeconds?: number;
}

/** The agent_ops kind of an installation (its key is `patch:<request key>`). */
export const PATCH_OP_KIND = 'installPatches';
/** How long past its own bounds a patch operation may stay unanswered before the caller is told. */
const PATCH_SLACK_MS = 60 * 60_000;

interface PatchWaiter {
  resolve: (v: PatchAssessment | PatchInstallation) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface Connection {
  status: 'Connected' | 'Disconnected';
  lastStatusChangeMs: number;
  lastReportMs: number | null;
  report: StatusReport | null;
}

interface Live {
  record: AgentRecord;
  goal: AgentGoal;
  open: Map<string, OperationRecord>;
  conn: Connection;
  /** JSON of the signals last handed to the engine. */
  lastSignals: string | null;
  /** An action result was answered: the next health report goes out even if unchanged. */
  healthAfterAction: boolean;
}

export class AgentDriver implements Driver {
  private readonly byAgent = new Map<string, Live>();
  private readonly byMachine = new Map<string, Live>();
  private readonly byFingerprint = new Map<string, Live>();
  private readonly queue: Observation[] = [];
  private goalListeners: Array<(agentId: string) => void> = [];
  private wake: () => void = () => {};
  /** Callers waiting for a patch operation's answer, by operationId (several may wait on one resend). */
  private readonly patchWaiters = new Map<string, PatchWaiter[]>();

  readonly store: AgentStore;
  /** Wall time the driver (the server) started: silence is counted from then at the earliest. */
  private readonly startedAtMs: number;

  constructor(private readonly opts: AgentDriverOptions) {
    this.store = opts.store;
    this.startedAtMs = opts.wallNow();
    const statuses = new Map(opts.store.statuses().map((s) => [s.agentId, s]));
    const open = opts.store.openOperations();
    // The server's own downtime is not the machines' fault: a machine that reported within the limit of
    // the last report the server heard before it stopped was Connected then, and stays so while it has
    // three intervals from now to report again (sweep counts from the start).
    let lastHeard = -Infinity;
    for (const s of statuses.values()) lastHeard = Math.max(lastHeard, s.receivedAtMs);
    for (const { record, goal } of opts.store.loadAgents()) {
      if (record.revokedAtMs !== null) continue;
      const s = statuses.get(record.agentId);
      const last = s?.receivedAtMs ?? null;
      const fresh = Math.max(lastHeard, record.enrolledAtMs) - (last ?? record.enrolledAtMs) <= this.disconnectAfterMs();
      const live: Live = {
        record, goal, open: new Map(),
        conn: { status: fresh ? 'Connected' : 'Disconnected', lastStatusChangeMs: last ?? record.enrolledAtMs, lastReportMs: last, report: s?.report ?? null },
        lastSignals: null, healthAfterAction: false,
      };
      this.index(live);
    }
    for (const op of open) if (op.kind !== PATCH_OP_KIND) this.byAgent.get(op.agentId)?.open.set(op.key, op);
  }

  /**
   * Guest OS patching (issue 16): an operation is put in the machine's goal state and answered from the
   * agent's report. An installation is idempotent by its key (a known answer is given again, one in
   * flight is waited on); both reject when the machine cannot be reached or cannot do it.
   */
  readonly patches: PatchDriver = {
    assessPatches: (m) => this.patchOperation(m, () => assessOperationOf(`assess:${randomUUID()}`), null, 2 * 3600_000) as Promise<PatchAssessment>,
    installPatches: (m, req) => this.install(m, req),
  };

  /**
   * R76: a platform patch baseline on a real machine: its Critical and Security patches through the same
   * installPatches operation an on-demand installation uses; answered when the agent reports.
   */
  private platformPatch(action: DriverAction, op: Parameters<AgentStore['addAnsweredOperation']>[0], refuse: (reason: string) => void): void {
    if (action.kind !== 'upgrade') return refuse('installed patches cannot be uninstalled');
    const m = this.opts.fleet().machines.get(action.machineId);
    if (!m) return refuse('the machine is not in the fleet any more');
    const reboot = action.settings['rebootSetting'];
    const req: PatchInstallRequest = {
      key: action.key, maximumDurationMs: 3600_000, rebootSetting: reboot === 'Never' || reboot === 'Always' ? reboot : 'IfRequired',
      classifications: ['Critical', 'Security'], include: [], exclude: [],
      // The machine's own reboot uses the EventId the engine announced (R83), so it is one event on the machine.
      rebootEventId: platformRebootEventId(action.key.replace(/\/upgrade$/, '')),
    };
    this.install({ machineId: m.id, os: m.os }, req).then((r) => {
      const counts = installationCounts(r);
      const rebooted = r.rebootStatus === 'Completed';
      const failed = r.status === 'Failed';
      const answer: Observation = {
        kind: 'actionResult', key: action.key, machineId: action.machineId, ok: !failed, version: failed ? action.fromVersion : action.toVersion,
        ...(failed ? { reason: r.error?.message ?? 'the installation failed' } : {}),
        patch: { installed: counts.installed, failed: counts.failed, pending: counts.pending, rebooted, rebootSec: rebooted ? 300 : 0 },
      };
      this.opts.store.addAnsweredOperation(op, answer);
      this.push(answer);
    }, (err: Error) => refuse(err.message));
  }

  private install(m: PatchTarget, req: PatchInstallRequest): Promise<PatchInstallation> {
    const key = `patch:${req.key}`;
    const known = this.opts.store.operation(key);
    if (known?.answer) return Promise.resolve(JSON.parse(known.answer) as PatchInstallation);
    const notice = this.opts.rebootNoticeSeconds ?? REBOOT_NOTICE_SECONDS;
    if (known) {
      const live = this.byAgent.get(known.agentId);
      const inFlight = live && Object.entries(live.goal.patchOps ?? {}).find(([, e]) => e.storeKey === key);
      if (inFlight) return this.waitFor(inFlight[0], req.maximumDurationMs + notice * 1000 + PATCH_SLACK_MS) as Promise<PatchInstallation>;
    }
    return this.patchOperation(m, () => installOperationOf(`install:${req.key}`, req, notice), key, req.maximumDurationMs + notice * 1000 + PATCH_SLACK_MS) as Promise<PatchInstallation>;
  }

  private patchOperation(m: PatchTarget, build: () => GoalStatePatchOperation, storeKey: string | null, boundMs: number): Promise<PatchAssessment | PatchInstallation> {
    if (m.os === 'windows') return Promise.reject(new Error(WINDOWS_UNSUPPORTED));
    const live = this.byMachine.get(m.machineId);
    if (!live) return Promise.reject(new Error('the machine has no enrolled agent any more'));
    if (live.conn.status !== 'Connected') return Promise.reject(new Error(`the machine's agent is Disconnected (no status for ${MISSED_INTERVALS} intervals); it cannot be patched now`));
    const ops = (live.goal.patchOps ??= {});
    if (Object.keys(ops).length >= PATCH_LIMITS.operationsPerGoalState) {
      return Promise.reject(new Error(`the machine already has ${PATCH_LIMITS.operationsPerGoalState} patch operations in flight; try again when one finishes`));
    }
    let op: GoalStatePatchOperation;
    try {
      op = build();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    ops[op.operationId] = { op, storeKey };
    this.opts.store.db.transaction(() => {
      if (storeKey) this.opts.store.addOperation({ key: storeKey, agentId: live.record.agentId, machineId: m.machineId, artifactKey: 'patches', kind: PATCH_OP_KIND, toVersion: '' });
      this.opts.store.putGoal(live.record.agentId, live.goal);
    }).immediate();
    const answer = this.waitFor(op.operationId, boundMs);
    this.goalChanged(live.record.agentId);
    return answer;
  }

  private waitFor(operationId: string, boundMs: number): Promise<PatchAssessment | PatchInstallation> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dropWaiter(operationId, w);
        reject(new Error(`the machine's agent did not answer patch operation ${operationId} within ${Math.round(boundMs / 60_000)} minutes`));
      }, boundMs);
      timer.unref();
      const w: PatchWaiter = { resolve, reject, timer };
      this.patchWaiters.set(operationId, [...(this.patchWaiters.get(operationId) ?? []), w]);
    });
  }

  private dropWaiter(operationId: string, w: PatchWaiter): void {
    const rest = (this.patchWaiters.get(operationId) ?? []).filter((x) => x !== w);
    if (rest.length > 0) this.patchWaiters.set(operationId, rest);
    else this.patchWaiters.delete(operationId);
  }

  /** Finished patch operations in a report: answered (and stored by key), dropped from the goal state. */
  private matchPatches(live: Live, report: StatusReport): void {
    const ops = live.goal.patchOps;
    if (!ops || !report.patchOperations) return;
    let changed = false;
    for (const r of report.patchOperations) {
      // The agent names the id: an own property only (`constructor` is not an operation in flight).
      const e = Object.hasOwn(ops, r.operationId) ? ops[r.operationId] : undefined;
      if (!e || r.status === 'InProgress' || r.kind !== e.op.kind) continue;
      const result = e.op.kind === 'assess' ? assessmentOf(r) : installationOf(r);
      delete ops[r.operationId];
      changed = true;
      this.opts.store.db.transaction(() => {
        if (e.storeKey) this.opts.store.answer(e.storeKey, result);
        this.opts.store.putGoal(live.record.agentId, live.goal);
      }).immediate();
      for (const w of this.patchWaiters.get(r.operationId) ?? []) {
        clearTimeout(w.timer);
        w.resolve(result);
      }
      this.patchWaiters.delete(r.operationId);
    }
    if (changed) this.goalChanged(live.record.agentId);
  }

  /** Called when an observation is queued (the runtime looks at once). */
  setWake(wake: () => void): void {
    this.wake = wake;
  }

  onGoalChanged(listener: (agentId: string) => void): void {
    this.goalListeners.push(listener);
  }

  disconnectAfterMs(): number {
    return MISSED_INTERVALS * this.opts.statusIntervalSeconds * 1000;
  }

  /** Machines whose agent is Connected now (the `phasewise_agents_connected` gauge). */
  connectedCount(): number {
    let n = 0;
    for (const live of this.byAgent.values()) if (live.conn.status === 'Connected') n++;
    return n;
  }

  handles(machineId: string): boolean {
    return this.byMachine.has(machineId);
  }

  agent(agentId: string): AgentRecord | undefined {
    return this.byAgent.get(agentId)?.record;
  }

  agentOfMachine(machineId: string): AgentRecord | undefined {
    return this.byMachine.get(machineId)?.record;
  }

  goal(agentId: string): AgentGoal | undefined {
    return this.byAgent.get(agentId)?.goal;
  }

  connection(machineId: string): Connection | undefined {
    return this.byMachine.get(machineId)?.conn;
  }

  agents(): AgentRecord[] {
    return [...this.byAgent.values()].map((l) => l.record);
  }

  /** Binds a newly enrolled agent; its goal starts from what the engine says the machine has. */
  bind(record: AgentRecord): AgentGoal {
    const entries: Record<string, GoalEntry> = {};
    for (const [key, byMachine] of this.opts.fleet().instances) {
      const inst = key.startsWith('extension:') ? byMachine.get(record.machineId) : undefined;
      const version = inst ? inst.installedVersion || inst.desiredVersion : '';
      if (!inst || !version || !this.opts.hasPackage(key, version)) continue;
      entries[key] = {
        artifactKey: key, publisher: inst.publisher, type: inst.type, extensionName: inst.name, version, state: 'enabled',
        operationId: `bind:${record.agentId}:${key}:${version}`, settingsSeqNo: 1,
      };
    }
    const goal: AgentGoal = { goalStateId: 0, contentHash: '', entries };
    this.opts.store.addAgent(record, goal);
    const live: Live = {
      record, goal, open: new Map(),
      conn: { status: 'Connected', lastStatusChangeMs: record.enrolledAtMs, lastReportMs: null, report: null },
      lastSignals: null, healthAfterAction: false,
    };
    this.index(live);
    return goal;
  }

  /** The credential stops working; the machine goes back to the simulated driver (or nothing). */
  revoke(agentId: string): void {
    const live = this.byAgent.get(agentId);
    if (!live) return;
    this.opts.store.revoke(agentId, this.opts.wallNow());
    this.byAgent.delete(agentId);
    this.byFingerprint.delete(live.record.fingerprint);
    if (this.byMachine.get(live.record.machineId) === live) this.byMachine.delete(live.record.machineId);
  }

  /** The active agent whose issued certificate has this fingerprint256. */
  agentByFingerprint(fingerprint: string): AgentRecord | undefined {
    return this.byFingerprint.get(fingerprint)?.record;
  }

  private index(live: Live): void {
    this.byAgent.set(live.record.agentId, live);
    this.byMachine.set(live.record.machineId, live);
    this.byFingerprint.set(live.record.fingerprint, live);
  }

  /** Persists a goal changed by the goal-state builder (its id and content hash). */
  saveGoal(agentId: string): void {
    const live = this.byAgent.get(agentId);
    if (live) this.opts.store.putGoal(agentId, live.goal);
  }

  send(action: DriverAction): void {
    const known = this.opts.store.operation(action.key);
    if (known) {
      // A resend: the first answer may have been lost with a crash, so give it again; in flight: nothing.
      if (known.answer) this.push(JSON.parse(known.answer) as Observation);
      return;
    }
    const live = this.byMachine.get(action.machineId);
    const op = { key: action.key, agentId: live?.record.agentId ?? '', machineId: action.machineId, artifactKey: action.artifactKey, kind: action.kind, toVersion: action.toVersion };
    const refuse = (reason: string) => {
      const answer: Observation = { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: false, version: action.fromVersion, reason };
      this.opts.store.addAnsweredOperation(op, answer);
      this.push(answer);
    };
    if (!live) return refuse('the machine has no enrolled agent any more');
    if (action.artifact.kind === 'guestPatch') return this.platformPatch(action, op, refuse);
    if (action.artifact.kind !== 'extension') return refuse(REIMAGE_UNSUPPORTED);
    const entries = live.goal.entries;
    const existing = entries[action.artifactKey];
    if (action.kind === 'uninstall') {
      if (!existing) {
        // Never sent to the machine: nothing to remove there.
        const answer: Observation = { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: true, version: '' };
        this.opts.store.addAnsweredOperation(op, answer);
        this.push(answer);
        return;
      }
    } else if (!this.opts.hasPackage(action.artifactKey, action.toVersion)) {
      const name = `${action.artifact.publisher}.${action.artifact.type}`;
      const upload = `/phasewise/publishers/${action.artifact.publisher}/extensionTypes/${action.artifact.type}/versions/${action.toVersion}/package`;
      return refuse(`no package is uploaded for ${name} ${action.toVersion}, so it cannot be sent to a real machine; upload it with PUT ${upload}`);
    }
    const inst = this.opts.fleet().instances.get(action.artifactKey)?.get(action.machineId);
    entries[action.artifactKey] = {
      artifactKey: action.artifactKey,
      publisher: action.artifact.publisher,
      type: action.artifact.type,
      extensionName: inst?.name ?? existing?.extensionName ?? action.artifact.type,
      version: action.kind === 'uninstall' ? existing!.version : action.toVersion,
      state: action.kind === 'uninstall' ? 'uninstall' : 'enabled',
      operationId: action.key,
      // §8: bumped on every change, so the agent never reads the old version's copied status as the new one's.
      settingsSeqNo: (existing?.settingsSeqNo ?? 0) + 1,
    };
    const record = { ...op, answer: null };
    this.opts.store.db.transaction(() => {
      this.opts.store.addOperation(op);
      this.opts.store.putGoal(live.record.agentId, live.goal);
    }).immediate();
    live.open.set(action.key, record);
    this.goalChanged(live.record.agentId);
  }

  /** Fresh health (and any answers the last committed report holds) for machines the engine looks at again. */
  observe(machineIds: readonly string[]): void {
    for (const id of machineIds) {
      const live = this.byMachine.get(id);
      if (!live) continue;
      if (live.conn.report) this.matchOperations(live, live.conn.report);
      live.healthAfterAction = true;
      this.pushHealth(live);
    }
  }

  /** A committed status report (also the heartbeat, at wall-clock `atMs`). */
  onReport(agentId: string, report: StatusReport, atMs: number): void {
    const live = this.byAgent.get(agentId);
    if (!live) return;
    live.conn.report = report;
    live.conn.lastReportMs = atMs;
    if (live.conn.status !== 'Connected') {
      live.conn.status = 'Connected';
      live.conn.lastStatusChangeMs = atMs;
    }
    if (live.open.size > 0) this.matchOperations(live, report);
    this.matchPatches(live, report);
    this.pushHealth(live);
  }

  /** Marks machines whose agents missed MISSED_INTERVALS status intervals Disconnected (platform unhealthy). */
  sweep(): void {
    const now = this.opts.wallNow();
    const limit = this.disconnectAfterMs();
    for (const live of this.byAgent.values()) {
      if (live.conn.status !== 'Connected') continue;
      if (now - Math.max(live.conn.lastReportMs ?? live.record.enrolledAtMs, this.startedAtMs) <= limit) continue;
      live.conn.status = 'Disconnected';
      live.conn.lastStatusChangeMs = now;
      this.pushHealth(live);
    }
  }

  nextAt(): number | null {
    return this.queue.length > 0 ? this.opts.engineNow() : null;
  }

  deliverDue(_t: number, sink: (o: Observation) => void): void {
    const due = this.queue.splice(0, this.queue.length);
    for (const o of due) sink(o);
  }

  private matchOperations(live: Live, report: StatusReport): void {
    for (const op of [...live.open.values()]) {
      const entry = live.goal.entries[op.artifactKey];
      const name = entry ? `${entry.publisher}.${entry.type}` : op.artifactKey.slice('extension:'.length);
      const ext = reportOf(report, name);
      const last = ext?.lastOperation;
      if (!last || last.operationId !== op.key) continue;
      const ok = last.outcome === 'succeeded';
      const version = op.kind === 'uninstall' ? (ok ? '' : (ext.installedVersion ?? '')) : ok ? (last.version ?? op.toVersion) : (ext.installedVersion ?? '');
      const answer: Observation = {
        kind: 'actionResult', key: op.key, machineId: op.machineId, ok, version,
        ...(ok ? {} : { reason: `${last.outcome} on the machine: ${last.message.slice(0, 1000)}` }),
      };
      let goalChanged = false;
      if (entry && entry.operationId === op.key) {
        if (op.kind === 'uninstall') {
          delete live.goal.entries[op.artifactKey];
          goalChanged = true;
        } else if (!ok && ext.installedVersion && ext.installedVersion !== entry.version) {
          // The goal keeps what runs: the operation stays done under its key, nothing is redone.
          entry.version = ext.installedVersion;
          goalChanged = true;
        }
      }
      this.opts.store.db.transaction(() => {
        this.opts.store.answer(op.key, answer);
        if (goalChanged) this.opts.store.putGoal(live.record.agentId, live.goal);
      }).immediate();
      live.open.delete(op.key);
      live.healthAfterAction = true;
      this.push(answer);
      if (goalChanged) this.goalChanged(live.record.agentId);
    }
  }

  private pushHealth(live: Live): void {
    const signals = signalsOf(live);
    if (signals === null) return; // application health still initializing: wait for its verdict
    const json = JSON.stringify(signals);
    if (json === live.lastSignals && !live.healthAfterAction) return;
    live.lastSignals = json;
    live.healthAfterAction = false;
    this.push({ kind: 'health', machineId: live.record.machineId, signals });
  }

  private push(o: Observation): void {
    this.queue.push(o);
    this.wake();
  }

  private goalChanged(agentId: string): void {
    for (const l of this.goalListeners) l(agentId);
  }
}

function reportOf(report: StatusReport, name: string): AgentExtensionReport | undefined {
  const exact = report.agentState[name];
  if (exact) return exact;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(report.agentState)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

/** R25 signals of an agent machine; null while its application health is still Initializing. */
function signalsOf(live: Live): HealthSignals | null {
  if (live.conn.status !== 'Connected') return { platform: false };
  const app = live.conn.report?.applicationHealth;
  if (!app) return { platform: true };
  if (app.state === 'Initializing') return null;
  return { platform: true, application: app.state === 'Healthy' };
}
