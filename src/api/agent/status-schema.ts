/**
 * Bounds on what agents send, checked before anything reaches state: the body size (the route's limit),
 * JSON depth and key count on the raw text (before it is parsed), then the shape of a StatusReport (zod;
 * on the hot path a hand-written check first, status-check.ts).
 */
import { z } from 'zod';
import { LIMITS, PATCH_LIMITS, REPORT_TIME } from '../../protocol/agent-wire.js';
import { ArmError } from '../arm/errors.js';
import type { ChannelBounds } from '../arm/json-limits.js';
import { JSON_LIMITS, parseLimitedJson } from '../arm/json-limits.js';
import { locationName, resourceGroupName } from '../arm/validation.js';

/** Object keys in one agent request (a status report of 64 extensions needs a few hundred; the agent fits under this). */
export const MAX_JSON_KEYS = LIMITS.statusReportKeys;

/**
 * The agent channel's bounds on a JSON body, checked on the raw text in the same pass as the ARM limits
 * (src/api/arm/json-limits.ts) before JSON.parse: V8 takes about half a second on a body of 100,000
 * nested brackets.
 */
export const AGENT_JSON_BOUNDS: ChannelBounds = {
  maxDepth: LIMITS.jsonDepth,
  maxKeys: MAX_JSON_KEYS,
  tooDeep: () => new ArmError(400, 'JsonTooDeep', `The request body nests deeper than ${LIMITS.jsonDepth} levels.`),
  tooManyKeys: () => new ArmError(400, 'JsonTooManyKeys', `The request body has more than ${MAX_JSON_KEYS} keys.`),
};

/** An agent request's JSON body: bounded, then parsed (an ArmError 400 otherwise). */
export function parseAgentJson(text: string): unknown {
  return parseLimitedJson(text, JSON_LIMITS, AGENT_JSON_BOUNDS);
}

const text = (max: number) => z.string().max(max);
const message = z.object({ lang: text(16), message: text(LIMITS.reportMessageChars) });
const iso = text(64).regex(REPORT_TIME, 'expected a time such as 2026-12-06T19:14:12.123Z');
/** A time a handler wrote in its own status file: passed on as it is, so not held to REPORT_TIME. */
const handlerTime = text(64);
const version = text(64);

const handlerStatus = z.object({
  name: text(256).optional(),
  operation: text(64).optional(),
  configurationAppliedTime: handlerTime.optional(),
  status: z.enum(['transitioning', 'error', 'success', 'warning']),
  code: z.number().int(),
  formattedMessage: message.optional(),
  substatus: z.array(z.object({ name: text(256).optional(), status: text(32), code: z.number().int().optional(), formattedMessage: message.optional() })).max(32).optional(),
});

const handler = z.object({
  handlerName: text(256),
  handlerVersion: version,
  status: z.enum(['Ready', 'NotReady', 'Unresponsive']),
  code: z.number().int(),
  formattedMessage: message,
  runtimeSettingsStatus: z.object({
    sequenceNumber: z.number().int().min(0),
    settingsStatus: z.object({ version: z.number(), timestampUTC: iso, status: handlerStatus }),
  }).optional(),
});

const extensionReport = z.object({
  state: z.enum(['NotInstalled', 'Installed', 'Enabled', 'FailedUpgrade', 'Failed', 'Blocked']),
  installedVersion: version.nullable(),
  lastKnownGood: version.nullable(),
  lastOperation: z.object({
    operationId: text(256),
    outcome: z.enum(['succeeded', 'rolledBack', 'failed', 'blocked', 'rejected']),
    version: version.nullable(),
    message: text(LIMITS.reportMessageChars),
    finishedAt: iso,
  }).nullable(),
});

const nameList = z.array(text(256)).max(256);

const classification = z.enum(['Critical', 'Security', 'Other']);
const patchEntry = z.object({
  name: text(PATCH_LIMITS.patchNameChars),
  version: text(PATCH_LIMITS.patchVersionChars),
  classifications: z.array(classification).min(1).max(3),
  rebootBehavior: z.enum(['NeverReboots', 'AlwaysRequiresReboot', 'CanRequestReboot', 'Unknown']),
  installationState: z.enum(['Installed', 'Failed', 'Excluded', 'NotSelected', 'Pending']).optional(),
  message: text(512).optional(),
});
const patchCount = z.number().int().min(0).max(1_000_000);
const patchOperationReport = z.object({
  operationId: text(200),
  kind: z.enum(['assess', 'install']),
  status: z.enum(['InProgress', 'Succeeded', 'Failed', 'CompletedWithWarnings']),
  packageManager: text(16),
  startedAt: iso,
  finishedAt: iso.nullable(),
  counts: z.object({
    critical: patchCount, security: patchCount, other: patchCount, installed: patchCount, failed: patchCount, pending: patchCount, notSelected: patchCount, excluded: patchCount,
  }),
  patches: z.array(patchEntry).max(PATCH_LIMITS.patchesPerReport),
  truncated: z.boolean(),
  rebootPending: z.boolean(),
  rebootStatus: z.enum(['NotNeeded', 'Required', 'Started', 'Failed', 'Completed']),
  maintenanceWindowExceeded: z.boolean(),
  error: z.object({ code: text(64), message: text(1024) }).nullable(),
});

export const statusReportSchema = z.object({
  version: z.literal('1.1'),
  timestampUTC: iso,
  goalStateId: z.number().int().min(0),
  aggregateStatus: z.object({
    guestAgentStatus: z.object({ version, status: z.enum(['Ready', 'NotReady']), formattedMessage: message }),
    handlerAggregateStatus: z.array(handler).max(LIMITS.extensionsPerGoalState),
    vmArtifactsAggregateStatus: z.object({
      goalStateAggregateStatus: z.object({ inSvdSeqNo: z.number().int().min(0), status: z.enum(['Success', 'Failed']), code: z.number().int(), timestampUTC: iso, formattedMessage: message }),
    }),
  }),
  guestOSInfo: z.object({ computerName: text(256), osName: text(256), osVersion: text(256), version: text(64) }),
  agentState: z.record(text(256), extensionReport).refine((r) => Object.keys(r).length <= LIMITS.extensionsPerGoalState, `at most ${LIMITS.extensionsPerGoalState} extensions`),
  applicationHealth: z.object({ state: z.enum(['Initializing', 'Healthy', 'Unhealthy', 'Unknown']), extensionName: text(256) }).nullable(),
  agentConfiguration: z.object({ extensionsEnabled: z.boolean(), extensionsAllowList: nameList, extensionsBlockList: nameList }),
  patchOperations: z.array(patchOperationReport).max(PATCH_LIMITS.operationsPerGoalState)
    .refine((ops) => ops.reduce((n, o) => n + o.patches.length, 0) <= PATCH_LIMITS.patchesPerReport, `at most ${PATCH_LIMITS.patchesPerReport} patches in one report`)
    .optional(),
});

export const scheduledEventsSchema = z.object({
  StartRequests: z.array(z.object({ EventId: text(64) })).min(1).max(64),
}).strict();

export const enrollSchema = z.object({
  resourceId: text(1024).optional(),
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-_.]{0,53}$/, "letters, digits, '-', '_' and '.', up to 54 characters").optional(),
  // Where a new Arc machine goes: checked as the ARM routes and the token API check them, before
  // anything is created (the group, the region and the machine's ARM id are built from them).
  subscriptionId: z.string().min(1).max(128).optional(),
  resourceGroup: resourceGroupName.optional(),
  location: locationName.optional(),
  certificatePem: z.string().min(100).max(16 * 1024),
  agentVersion: text(64),
  osName: text(256),
  osVersion: text(256),
  computerName: text(256),
}).strict();
