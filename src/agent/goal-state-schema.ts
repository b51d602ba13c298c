/**
 * Validation of a goal state before it reaches the agent's state: size and depth first, then shape
 * (zod), then the names that become paths. A goal state that fails is reported and the agent keeps
 * the one it has.
 */
import { z } from 'zod';
import { LIMITS, PATCH_LIMITS } from '../protocol/agent-wire.js';
import type { GoalState } from '../protocol/agent-wire.js';
import { MAX_MASKS_PER_LIST, packageMaskProblem } from '../protocol/package-masks.js';
import { KEY_ID_PATTERN } from '../protocol/package-signature.js';
import { jsonDepth } from './atomic-file.js';
import { HANDLER_NAME_PATTERN, MAX_HANDLER_NAME_CHARS, VERSION_PATTERN } from './layout.js';

const str = (max: number) => z.string().max(max);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const extension = z.object({
  name: z.string().regex(HANDLER_NAME_PATTERN).max(MAX_HANDLER_NAME_CHARS),
  extensionName: str(128),
  version: z.string().regex(VERSION_PATTERN).max(64),
  state: z.enum(['enabled', 'uninstall']),
  autoUpgrade: z.boolean(),
  package: z.object({
    // https only: packages come over the agent's mTLS channel (a file: or http: URI was thrown on by the
    // downloader, which aborted every pass at that extension).
    uris: z.array(z.string().max(2048).url().refine((u) => u.startsWith('https://'), 'expected an https:// URI')).min(1).max(8),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/),
    size: z.number().int().min(1).max(LIMITS.packageBytes),
    signature: z.object({ alg: z.literal('ed25519'), keyId: z.string().regex(KEY_ID_PATTERN), sig: str(256) }),
  }),
  dependencyLevel: z.number().int().min(0).max(1000),
  settingsSeqNo: z.number().int().min(0).max(2 ** 31),
  settings: z.object({
    publicSettings: z.record(z.string(), z.unknown()).nullable(),
    protectedSettings: str(256 * 1024).nullable(),
    protectedSettingsCertThumbprint: z.string().regex(/^[0-9A-Fa-f]{40}$/).nullable(),
  }),
  operationId: z.string().regex(/^[A-Za-z0-9._:@/-]{1,200}$/),
  rollback: z.object({ enabled: z.boolean(), healthGateSeconds: z.number().int().min(0).max(86_400) }),
});

const scheduledEvent = z.object({
  EventId: str(128),
  EventType: z.enum(['Reimage', 'Reboot', 'Redeploy', 'Freeze', 'Preempt', 'Terminate']),
  ResourceType: z.literal('VirtualMachine'),
  Resources: z.array(str(512)).max(64),
  EventStatus: z.enum(['Scheduled', 'Started']),
  NotBefore: str(64),
  Description: str(1024),
  EventSource: z.enum(['Platform', 'User']),
  DurationInSeconds: z.number().int().min(-1).max(86_400 * 30),
});

const OPERATION_ID = /^[A-Za-z0-9._:@/-]{1,200}$/;
/**
 * Package name masks by the server's one rule (src/protocol/package-masks.ts): a mask the API refuses the agent
 * refuses too (its own looser pattern took `-y`, `=1.0` and `[z-a]`, a set that threw in selection).
 */
const mask = z.string().superRefine((m, ctx) => {
  const problem = packageMaskProblem(m);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});
const masks = z.array(mask).max(MAX_MASKS_PER_LIST, `at most ${MAX_MASKS_PER_LIST} package name masks per list`);

const patchOperation = z.object({
  operationId: z.string().regex(OPERATION_ID),
  kind: z.enum(['assess', 'install']),
  install: z.object({
    maximumDurationSeconds: z.number().int().min(PATCH_LIMITS.minDurationSeconds).max(PATCH_LIMITS.maxDurationSeconds),
    rebootSetting: z.enum(['IfRequired', 'Never', 'Always']),
    classificationsToInclude: z.array(z.enum(['Critical', 'Security', 'Other'])).max(3),
    packageNameMasksToInclude: masks,
    packageNameMasksToExclude: masks,
    rebootNoticeSeconds: z.number().int().min(0).max(86_400),
    rebootEventId: z.string().regex(/^[0-9A-Fa-f-]{1,64}$/).optional(),
  }).optional(),
}).refine((o) => (o.kind === 'install') === (o.install !== undefined), 'an install operation needs `install`, an assessment must not have it');

const goalState = z.object({
  schemaVersion: z.literal('1.0'),
  goalStateId: count,
  epoch: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/).optional(),
  activityId: str(128),
  createdAt: str(64),
  requiredFeatures: z.array(str(128)).max(32),
  pollIntervalSeconds: z.number().int().min(1).max(3600),
  statusIntervalSeconds: z.number().int().min(1).max(3600),
  extensions: z.array(extension).max(LIMITS.extensionsPerGoalState),
  scheduledEvents: z.object({ DocumentIncarnation: count, Events: z.array(scheduledEvent).max(64) }),
  patchOperations: z.array(patchOperation).max(PATCH_LIMITS.operationsPerGoalState).optional(),
});

export class GoalStateError extends Error {}

/** The goal state in `body`, or a GoalStateError saying what is wrong with it. */
export function parseGoalState(body: Buffer): GoalState {
  if (body.length > LIMITS.goalStateBytes) throw new GoalStateError(`the goal state is ${body.length} bytes, over the ${LIMITS.goalStateBytes}-byte limit`);
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new GoalStateError(`the goal state is not JSON: ${(err as Error).message}`);
  }
  if (jsonDepth(raw, LIMITS.jsonDepth) > LIMITS.jsonDepth) throw new GoalStateError(`the goal state nests deeper than ${LIMITS.jsonDepth} levels`);
  const parsed = goalState.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') || '(root)' : '(root)';
    throw new GoalStateError(`the goal state is malformed at ${where}: ${issue?.message ?? 'invalid'}`);
  }
  const gs = parsed.data as GoalState;
  // zod rebuilds a record by assignment, so a `__proto__` key of publicSettings became the copy's prototype and
  // vanished from the settings the handler reads. The parsed object (validated as is) keeps it as a plain key.
  const rawExtensions = (raw as { extensions: Array<{ settings: { publicSettings: Record<string, unknown> | null } }> }).extensions;
  gs.extensions.forEach((e, i) => (e.settings.publicSettings = rawExtensions[i]!.settings.publicSettings));
  const names = new Set<string>();
  for (const e of gs.extensions) {
    if (names.has(e.name)) throw new GoalStateError(`the goal state lists ${e.name} twice (multi-config is not supported)`);
    names.add(e.name);
  }
  const ops = new Set<string>();
  for (const o of gs.patchOperations ?? []) {
    if (ops.has(o.operationId)) throw new GoalStateError(`the goal state lists patch operation ${o.operationId} twice`);
    ops.add(o.operationId);
  }
  return gs;
}
