/**
 * The bookkeeping every step of an attempt shares: its instance event (ids and placement, as the log
 * contract asks), its final status, and the action it sends with an idempotency key and a timeout.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { EngineEvent, EventBody, InstanceIds } from '../../model/events.js';
import { isoOf } from '../clock.js';
import type { AttemptState, RolloutState } from '../state.js';
import { placementOf } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, machineWait, scheduleTimer } from '../core/context.js';

export type InstanceEventType = Extract<EventBody, InstanceIds>['type'];

/** Emits an instance event with the ids and placement the contract asks for, built in one object. */
export function emitInstance<T extends InstanceEventType>(ctx: TickContext, type: T, r: RolloutState, a: AttemptState, extra: Omit<Extract<EventBody, { type: T }>, 'type' | keyof InstanceIds>): void {
  changed.attempt(ctx, a); // every step of an attempt is logged, so this marks it changed too
  ctx.events.push({
    seq: ++ctx.state.eventSeq,
    time: isoOf(ctx.now),
    type,
    rolloutId: r.id,
    batchId: a.batchId,
    machineId: a.machineId,
    placement: placementOf(ctx.state, a),
    artifact: r.artifact,
    attempt: a.attempt,
    ...extra,
  } as unknown as EngineEvent); // the type parameter ties `extra` to `type`; TypeScript cannot follow it through the union
}

/**
 * `emitInstance` for the two events of every machine's upgrade (`instance.upgrade.started`, `...succeeded`),
 * built in one literal with the same fields in the same order: no `extra` object and no spread copy for two
 * million events.
 */
export function emitVersionChange(ctx: TickContext, type: 'instance.upgrade.started' | 'instance.upgrade.succeeded', r: RolloutState, a: AttemptState, fromVersion: string, toVersion: string): void {
  changed.attempt(ctx, a);
  ctx.events.push({
    seq: ++ctx.state.eventSeq,
    time: isoOf(ctx.now),
    type,
    rolloutId: r.id,
    batchId: a.batchId,
    machineId: a.machineId,
    placement: placementOf(ctx.state, a),
    artifact: r.artifact,
    attempt: a.attempt,
    fromVersion,
    toVersion,
  });
}

/** Marks an attempt final and closes it on the rollout. */
export function finish(ctx: TickContext, r: RolloutState, a: AttemptState, status: 'succeeded' | 'failed' | 'skipped' | 'rolledBack' | 'parked'): void {
  changed.attempt(ctx, a);
  changed.rollout(ctx, r);
  a.status = status;
  a.actionKey = null;
  r.open--;
  // A success needs no record: nothing will look at it again, and a million of them would add up.
  if (status === 'succeeded') r.attempts.delete(a.machineId);
}

export function sendAction(ctx: TickContext, r: RolloutState, a: AttemptState, kind: 'upgrade' | 'rollback', inst: ExtensionInstance, from: string, to: string): void {
  const key = `${r.id}/${a.machineId}/${a.attempt}/${kind}`;
  a.actionKey = key;
  ctx.actions.push({ kind, key, machineId: a.machineId, artifact: r.artifact, artifactKey: r.artifactKey, fromVersion: from, toVersion: to, settings: inst.settings });
  const timer = scheduleTimer(ctx, ctx.now + machineWait(ctx, a.machineId, r.plan.profile.actionTimeoutMs), 'actionTimeout', r.id, a.machineId, key, undefined);
  ctx.state.pendingActions.set(key, { rolloutId: r.id, machineId: a.machineId, kind, attempt: a, timer });
}
