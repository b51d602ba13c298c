/**
 * The status document (agent-protocol §5 plus agentState), built from the journal and the handlers'
 * own files. Every report is also the agent's heartbeat. Pure apart from reading the handlers' files.
 */
import { existsSync } from 'node:fs';
import { LIMITS } from '../protocol/agent-wire.js';
import type { AgentExtensionReport, GoalState, GoalStateExtension, HandlerAggregateStatus, HandlerStatusBody, StatusReport } from '../protocol/agent-wire.js';
import { readHandlerStatus, readHeartbeat } from './handler-files.js';
import { readManifest } from './handler-manifest.js';
import type { ExtensionRecord, Journal } from './journal.js';
import { handlerDir } from './layout.js';
import type { AgentDirs } from './layout.js';
import type { LocalPolicy } from './local-policy.js';
import { patchReports } from './patch-operation.js';
import type { ApplicationHealthState } from '../protocol/agent-wire.js';

export interface ReportInput {
  dirs: AgentDirs;
  journal: Journal;
  goal: GoalState | null;
  /** The goal state whose last pass finished (goalStateId, inSvdSeqNo). */
  processedGoalStateId: number;
  /** Why the last goal state was refused (kept, the previous one still applies), or null. */
  goalStateError: string | null;
  policy: LocalPolicy;
  health: { state: ApplicationHealthState; extensionName: string } | null;
  agentVersion: string;
  os: { computerName: string; osName: string; osVersion: string };
  nowMs: number;
}

const msg = (message: string) => ({ lang: 'en-US', message });

function settingsStatus(input: ReportInput, ext: GoalStateExtension, rec: ExtensionRecord | undefined): HandlerStatusBody {
  const outcome = rec?.history.find((h) => h.operationId === ext.operationId);
  if (!rec || !outcome || rec.op) {
    const why = rec?.op?.lastError ?? `operation ${ext.operationId} in progress`;
    return { name: ext.name, operation: 'Enable', status: 'transitioning', code: 0, formattedMessage: msg(why) };
  }
  const rollback = outcome.rollback
    ? [{ name: 'Rollback', status: outcome.rollback.status, code: 0, formattedMessage: msg(outcome.rollback.message) }]
    : [];
  if (outcome.outcome === 'succeeded' || outcome.outcome === 'rolledBack') {
    const v = rec.installedVersion;
    const body: HandlerStatusBody = v && rec.installedSeq !== null
      ? readHandlerStatus(handlerDir(input.dirs, ext.name, v), rec.installedSeq).body
      : { status: 'success', code: 0, formattedMessage: msg(outcome.message) };
    if (outcome.outcome === 'rolledBack') {
      // §8: report error for the requested version, with the Rollback substatus saying what runs now.
      return { ...body, status: 'error', code: rec.lastError?.code ?? 1009, formattedMessage: msg(outcome.message), substatus: [...rollback, ...(body.substatus ?? [])] };
    }
    return body;
  }
  const code = rec.lastError?.code ?? (outcome.outcome === 'blocked' ? 1009 : -1);
  return { name: ext.name, operation: 'Enable', status: 'error', code, formattedMessage: msg(outcome.message), substatus: rollback };
}

function handlerStatus(input: ReportInput, ext: GoalStateExtension): HandlerAggregateStatus {
  const rec = input.journal.state.extensions[ext.name];
  const ready = rec?.state === 'Enabled';
  let status: HandlerAggregateStatus['status'] = ready ? 'Ready' : 'NotReady';
  let code = rec?.lastError?.code ?? 0;
  let message = rec?.lastError?.message ?? (ready ? 'Plugin enabled' : rec?.state === 'Installed' ? 'Plugin installed but not enabled' : 'Plugin not installed');
  const base = rec?.installedVersion ? handlerDir(input.dirs, ext.name, rec.installedVersion) : null;
  if (ready && base && existsSync(base)) {
    try {
      if (readManifest(base).reportHeartbeat) {
        const hb = readHeartbeat(base, input.nowMs);
        ({ status, code, message } = hb);
      }
    } catch {
      // a manifest that went missing is reported through the status file
    }
  }
  return {
    handlerName: ext.name,
    handlerVersion: ext.version,
    status,
    code,
    formattedMessage: msg(message),
    runtimeSettingsStatus: {
      sequenceNumber: ext.settingsSeqNo,
      settingsStatus: { version: 1.0, timestampUTC: new Date(input.nowMs).toISOString(), status: settingsStatus(input, ext, rec) },
    },
  };
}

function agentStateOf(rec: ExtensionRecord): AgentExtensionReport {
  const last = rec.history[0];
  return {
    state: rec.state,
    installedVersion: rec.installedVersion,
    lastKnownGood: rec.lastKnownGood?.version ?? null,
    lastOperation: last ? { operationId: last.operationId, outcome: last.outcome, version: last.version, message: last.message, finishedAt: last.finishedAt } : null,
  };
}

/**
 * Every message cut to what the server accepts (LIMITS.reportMessageChars). A handler's status file may
 * hold far more; a report the server refuses would be sent again and again, and the machine would be
 * Disconnected for one verbose handler.
 */
function withinWire(report: StatusReport): StatusReport {
  const max = LIMITS.reportMessageChars;
  const cut = (m: string): string => (m.length > max ? `${m.slice(0, max - 1)}…` : m);
  const fm = (f: { message: string } | undefined) => {
    if (f) f.message = cut(f.message);
  };
  for (const h of report.aggregateStatus.handlerAggregateStatus) {
    fm(h.formattedMessage);
    const s = h.runtimeSettingsStatus?.settingsStatus.status;
    fm(s?.formattedMessage);
    for (const sub of s?.substatus ?? []) fm(sub.formattedMessage);
  }
  fm(report.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.formattedMessage);
  for (const e of Object.values(report.agentState)) if (e.lastOperation) e.lastOperation.message = cut(e.lastOperation.message);
  return report;
}

/** Object keys in a JSON value, as the server counts them (LIMITS.statusReportKeys). */
function keysOf(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + keysOf(x), 0);
  if (v === null || typeof v !== 'object') return 0;
  let n = 0;
  for (const x of Object.values(v)) n += 1 + keysOf(x);
  return n;
}

const fits = (r: StatusReport): boolean => Buffer.byteLength(JSON.stringify(r)) <= LIMITS.statusReportBytes && keysOf(r) <= LIMITS.statusReportKeys;

const cutMessages = (r: StatusReport, max: number, outcomes: boolean): void => {
  for (const h of r.aggregateStatus.handlerAggregateStatus) {
    const s = h.runtimeSettingsStatus?.settingsStatus.status;
    if (s) {
      delete s.substatus;
      if (s.formattedMessage) s.formattedMessage.message = s.formattedMessage.message.slice(0, max);
    }
    h.formattedMessage.message = h.formattedMessage.message.slice(0, max);
  }
  if (!outcomes) return;
  for (const e of Object.values(r.agentState)) if (e.lastOperation) e.lastOperation.message = e.lastOperation.message.slice(0, max);
  const g = r.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.formattedMessage;
  g.message = g.message.slice(0, max);
};

/**
 * Cuts the report, the least needed first, until it is within the server's bounds on bytes and on keys
 * (the server answers 413 or 400 above them, and a report refused is sent again and again while the
 * machine shows Disconnected): handler substatuses and messages, then outcome messages, then the lists
 * of patches (marked `truncated`; their counts stay exact), then every message to 64 characters. What
 * remains (64 handlers, their states and outcomes) fits by far.
 */
function fit(report: StatusReport): StatusReport {
  const steps: Array<(r: StatusReport) => void> = [
    (r) => cutMessages(r, 512, false),
    (r) => cutMessages(r, 512, true),
    (r) => {
      for (const op of r.patchOperations ?? []) {
        op.truncated = op.truncated || op.patches.length > 0;
        op.patches = [];
      }
    },
    (r) => cutMessages(r, 64, true),
  ];
  for (const step of steps) {
    if (fits(report)) return report;
    step(report);
  }
  return report;
}

export function buildStatusReport(input: ReportInput): StatusReport {
  const goal = input.goal;
  const ts = new Date(input.nowMs).toISOString();
  const handlers = (goal?.extensions ?? []).map((e) => handlerStatus(input, e));
  const unsupported = goal?.requiredFeatures.length ? `unsupported required features: ${goal.requiredFeatures.join(', ')}` : null;
  const gsError = input.goalStateError ?? unsupported;
  const agentState: Record<string, AgentExtensionReport> = {};
  for (const rec of Object.values(input.journal.state.extensions)) agentState[rec.name] = agentStateOf(rec);
  const patches = patchReports(input.journal, goal);
  return fit(withinWire({
    ...(patches.length > 0 ? { patchOperations: patches } : {}),
    version: '1.1',
    timestampUTC: ts,
    goalStateId: input.processedGoalStateId,
    aggregateStatus: {
      guestAgentStatus: { version: input.agentVersion, status: 'Ready', formattedMessage: msg('Guest Agent is running') },
      handlerAggregateStatus: handlers,
      vmArtifactsAggregateStatus: {
        goalStateAggregateStatus: {
          inSvdSeqNo: input.processedGoalStateId,
          status: gsError ? 'Failed' : 'Success',
          code: gsError ? (unsupported && !input.goalStateError ? 2001 : 1) : 0,
          timestampUTC: ts,
          formattedMessage: msg(gsError ?? 'GoalState executed successfully'),
        },
      },
    },
    guestOSInfo: { computerName: input.os.computerName, osName: input.os.osName, osVersion: input.os.osVersion, version: input.agentVersion },
    agentState,
    applicationHealth: input.health,
    agentConfiguration: { extensionsEnabled: input.policy.extensionsEnabled, extensionsAllowList: input.policy.extensionsAllowList, extensionsBlockList: input.policy.extensionsBlockList },
  }));
}

/** The report without its timestamps: two reports with the same fingerprint say the same thing. */
export function fingerprint(r: StatusReport): string {
  return JSON.stringify(r, (k, v: unknown) => (k === 'timestampUTC' ? undefined : v));
}
