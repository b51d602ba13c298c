/**
 * A status report's shape, checked by hand: the bounds of statusReportSchema (status-schema.ts) without
 * zod's cost on the path every agent takes every few seconds (about 25 µs per 3 KB report there). It
 * only answers yes or no; a report it refuses is handed to zod, whose first issue becomes the ARM error,
 * so the messages stay zod's. A property test holds the two to the same answers
 * (test/api-agent-status-check.test.ts); reports with patch results always go to zod.
 */
import type { StatusReport } from '../../protocol/agent-wire.js';
import { LIMITS, REPORT_TIME } from '../../protocol/agent-wire.js';

type O = Record<string, unknown>;

const isObj = (v: unknown): v is O => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max: number): boolean => typeof v === 'string' && v.length <= max;
const optStr = (v: unknown, max: number): boolean => v === undefined || str(v, max);
const time = (v: unknown): boolean => str(v, 64) && REPORT_TIME.test(v as string);
const int = (v: unknown): boolean => Number.isSafeInteger(v);
const nat = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const oneOf = (v: unknown, values: readonly string[]): boolean => typeof v === 'string' && values.includes(v);

const HANDLER_STATES = ['transitioning', 'error', 'success', 'warning'] as const;
const READY = ['Ready', 'NotReady', 'Unresponsive'] as const;
const EXT_STATES = ['NotInstalled', 'Installed', 'Enabled', 'FailedUpgrade', 'Failed', 'Blocked'] as const;
const OUTCOMES = ['succeeded', 'rolledBack', 'failed', 'blocked', 'rejected'] as const;
const HEALTH = ['Initializing', 'Healthy', 'Unhealthy', 'Unknown'] as const;

function message(v: unknown): boolean {
  return isObj(v) && str(v.lang, 16) && str(v.message, LIMITS.reportMessageChars);
}

function handlerStatus(v: unknown): boolean {
  if (!isObj(v)) return false;
  if (!optStr(v.name, 256) || !optStr(v.operation, 64) || !optStr(v.configurationAppliedTime, 64)) return false;
  if (!oneOf(v.status, HANDLER_STATES) || !int(v.code)) return false;
  if (v.formattedMessage !== undefined && !message(v.formattedMessage)) return false;
  if (v.substatus === undefined) return true;
  if (!Array.isArray(v.substatus) || v.substatus.length > 32) return false;
  return v.substatus.every((s) => isObj(s) && optStr(s.name, 256) && str(s.status, 32) && (s.code === undefined || int(s.code))
    && (s.formattedMessage === undefined || message(s.formattedMessage)));
}

function handler(v: unknown): boolean {
  if (!isObj(v)) return false;
  if (!str(v.handlerName, 256) || !str(v.handlerVersion, 64) || !oneOf(v.status, READY) || !int(v.code) || !message(v.formattedMessage)) return false;
  const r = v.runtimeSettingsStatus;
  if (r === undefined) return true;
  if (!isObj(r) || !nat(r.sequenceNumber) || !isObj(r.settingsStatus)) return false;
  const s = r.settingsStatus;
  return typeof s.version === 'number' && time(s.timestampUTC) && handlerStatus(s.status);
}

function extensionReport(v: unknown): boolean {
  if (!isObj(v) || !oneOf(v.state, EXT_STATES)) return false;
  if (!(v.installedVersion === null || str(v.installedVersion, 64)) || !(v.lastKnownGood === null || str(v.lastKnownGood, 64))) return false;
  const op = v.lastOperation;
  if (op === null) return true;
  return isObj(op) && str(op.operationId, 256) && oneOf(op.outcome, OUTCOMES) && (op.version === null || str(op.version, 64))
    && str(op.message, LIMITS.reportMessageChars) && time(op.finishedAt);
}

const nameList = (v: unknown): boolean => Array.isArray(v) && v.length <= 256 && v.every((n) => str(n, 256));

/** True when `v` passes statusReportSchema; false: let zod say why. */
export function isStatusReport(v: unknown): v is StatusReport {
  if (!isObj(v) || v.version !== '1.1' || !time(v.timestampUTC) || !nat(v.goalStateId)) return false;
  const agg = v.aggregateStatus;
  if (!isObj(agg)) return false;
  const guest = agg.guestAgentStatus;
  if (!isObj(guest) || !str(guest.version, 64) || !oneOf(guest.status, ['Ready', 'NotReady']) || !message(guest.formattedMessage)) return false;
  const handlers = agg.handlerAggregateStatus;
  if (!Array.isArray(handlers) || handlers.length > LIMITS.extensionsPerGoalState || !handlers.every(handler)) return false;
  const artifacts = agg.vmArtifactsAggregateStatus;
  if (!isObj(artifacts) || !isObj(artifacts.goalStateAggregateStatus)) return false;
  const g = artifacts.goalStateAggregateStatus;
  if (!nat(g.inSvdSeqNo) || !oneOf(g.status, ['Success', 'Failed']) || !int(g.code) || !time(g.timestampUTC) || !message(g.formattedMessage)) return false;
  const os = v.guestOSInfo;
  if (!isObj(os) || !str(os.computerName, 256) || !str(os.osName, 256) || !str(os.osVersion, 256) || !str(os.version, 64)) return false;
  const state = v.agentState;
  if (!isObj(state)) return false;
  let count = 0;
  for (const name in state) {
    if (++count > LIMITS.extensionsPerGoalState || name.length > 256 || !extensionReport(state[name])) return false;
  }
  const health = v.applicationHealth;
  if (health !== null && !(isObj(health) && oneOf(health.state, HEALTH) && str(health.extensionName, 256))) return false;
  const cfg = v.agentConfiguration;
  if (!(isObj(cfg) && typeof cfg.extensionsEnabled === 'boolean' && nameList(cfg.extensionsAllowList) && nameList(cfg.extensionsBlockList))) return false;
  // Patch results are rare (only while a patch operation runs): zod checks them, never this shortcut.
  return v.patchOperations === undefined;
}
