/**
 * An operator's controls over rollouts, built on the release hold (`release-hold.ts`): pausing a
 * rollout holds its release, so no new batch of that version starts in any rollout (batches in flight
 * finish and are judged as usual); a fleet-wide stop holds every release with a running rollout;
 * resuming lifts the hold, resumes a rollout a failed phase stopped, and lets the sets R23 stopped go
 * on now instead of after the retry interval.
 *
 *   running ──pause──▶ running, its release held (units park as `blocked`) ──resume──▶ running
 *   stopped (phase failed / R23 set stop) ──resume──▶ running, failures so far acknowledged
 *   running | stopped ──cancel──▶ cancelled
 */
import type { ReleaseHold, RolloutState } from '../state.js';
import { releaseKey } from '../state.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { FleetError } from '../core/errors.js';
import { holdByCaller, resumeRelease } from './release-hold.js';
import { cancelRollout } from './cancel.js';
import { resumeStopped } from './resume.js';
import { resumeUnit } from './wake.js';

function mustBeLive(r: RolloutState): void {
  if (r.status === 'completed' || r.status === 'cancelled') {
    throw new FleetError('Conflict', `rollout ${r.id} has ended (${r.status}); only a running or stopped rollout can be changed`, 'rolloutId');
  }
}

/** The running rollouts of one release (artifact and version): a hold pauses them all. */
export function rolloutsOfRelease(ctx: TickContext, artifactKey: string, toVersion: string): RolloutState[] {
  return [...ctx.state.rollouts.values()].filter((r) => r.status === 'running' && r.artifactKey === artifactKey && r.toVersion === toVersion);
}

/** Pauses a rollout: its release is held by the operator. Returns every rollout the hold pauses. */
export function pauseRollout(ctx: TickContext, r: RolloutState, reason: string, caller: string): RolloutState[] {
  mustBeLive(r);
  const held = ctx.state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.hold;
  if (held) throw new FleetError('Conflict', `rollout ${r.id} is already paused: its release is held (${held.kind}): ${held.reason}`, 'rolloutId');
  const text = `paused by ${caller}: ${reason}`;
  holdByCaller(ctx, r.artifact, r.artifactKey, r.toVersion, 'operator', `${text} (rollout ${r.id})`, caller);
  const paused = rolloutsOfRelease(ctx, r.artifactKey, r.toVersion);
  for (const x of paused) emit(ctx, { type: 'rollout.paused', rolloutId: x.id, reason: text, caller });
  return paused;
}

/**
 * Pauses every running rollout at once: each release with a running rollout is held. Given again while
 * the stop holds, its holds show the new reason and each of their rollouts logs the pause again, unless
 * `newOnly` (the server holding rollouts that started during the stop). Returns them all, those held otherwise too
 * (the API lists those apart: `isFleetStopHold`).
 */
export function pauseAll(ctx: TickContext, reason: string, caller: string, newOnly = false, createdSince?: number): RolloutState[] {
  const paused: RolloutState[] = [];
  const text = `${FLEET_STOP}${caller}: ${reason}`;
  const held = new Set<string>();
  for (const r of [...ctx.state.rollouts.values()]) {
    if (r.status !== 'running') continue;
    if (newOnly && createdSince !== undefined && r.createdAtMs < createdSince) continue;
    const key = releaseKey(r.artifactKey, r.toVersion);
    const rel = ctx.state.releases.get(key);
    if (!rel?.hold) {
      holdByCaller(ctx, r.artifact, r.artifactKey, r.toVersion, 'operator', text, caller);
      held.add(key);
    } else if (!newOnly && isFleetStop(rel.hold) && !held.has(key)) {
      // The stop given again: its hold shows the latest reason (held since the first); each pause is logged.
      rel.hold.reason = text;
      rel.hold.caller = caller;
      if (ctx.changes) ctx.changes.releases = true;
      held.add(key);
    }
    // Rollouts held by another hold (a rollout's pause, the evidence) are paused already: no event.
    if (held.has(key)) emit(ctx, { type: 'rollout.paused', rolloutId: r.id, reason: text, caller });
    paused.push(r);
  }
  return paused;
}

/** The hold reasons a fleet-wide stop writes start with this: `resumeAll` lifts those holds only. */
export const FLEET_STOP = 'fleet-wide stop by ';

function isFleetStop(hold: ReleaseHold): boolean {
  return hold.kind === 'operator' && hold.reason.startsWith(FLEET_STOP);
}

/** Whether a release's hold (if any) is the fleet-wide stop's, not a rollout's own pause, the evidence or a withdrawal. */
export function isFleetStopHold(hold: ReleaseHold | null): boolean {
  return hold !== null && isFleetStop(hold);
}

/** Ends a fleet-wide stop: every release it held is resumed. Returns the rollouts that go on. */
export function resumeAll(ctx: TickContext, caller: string, why?: string): RolloutState[] {
  const resumed: RolloutState[] = [];
  for (const rel of [...ctx.state.releases.values()]) {
    if (!rel.hold || !isFleetStop(rel.hold)) continue;
    const rollouts = rolloutsOfRelease(ctx, rel.artifactKey, rel.toVersion);
    resumeRelease(ctx, rel.artifactKey, rel.toVersion, caller, why);
    for (const r of rollouts) emit(ctx, { type: 'rollout.resumed', rolloutId: r.id, reason: `resumed by ${caller}: ${because(why)}the fleet-wide stop ended`, caller });
    resumed.push(...rollouts);
  }
  return resumed;
}

/** The operator's reason ahead of what the resumption did, as a pause records its reason. */
const because = (why: string | undefined) => (why ? `${why}; ` : '');

/**
 * Resumes what holds a rollout back: its release's operator or evidence hold (never a withdrawal),
 * a stop by a failed phase, sets stopped by R23 or held by R20/R24 (rechecked now). Throws when
 * nothing held it. `why`, the operator's reason, goes into every event the resumption logs.
 */
export function resumeRollout(ctx: TickContext, r: RolloutState, caller: string, why?: string): string[] {
  mustBeLive(r);
  const done: string[] = [];
  const rel = ctx.state.releases.get(releaseKey(r.artifactKey, r.toVersion));
  if (rel?.hold) {
    if (rel.hold.kind === 'withdrawn') throw new FleetError('Conflict', `version ${r.toVersion} was withdrawn; its rollouts cannot resume`, 'rolloutId');
    const others = rolloutsOfRelease(ctx, r.artifactKey, r.toVersion);
    resumeRelease(ctx, r.artifactKey, r.toVersion, caller, why);
    for (const x of others) emit(ctx, { type: 'rollout.resumed', rolloutId: x.id, reason: `resumed by ${caller}: ${because(why)}its release is no longer held`, caller });
    done.push('release hold lifted');
  }
  if (r.status === 'stopped') {
    resumeStopped(ctx, r, caller, why);
    done.push('stopped rollout resumed');
  }
  const sets = resumeStoppedSets(ctx, r);
  if (sets.length > 0) {
    emit(ctx, { type: 'rollout.resumed', rolloutId: r.id, reason: `resumed by ${caller}: ${because(why)}${sets.join(', ')} go on now (R23/R20 stop acknowledged)`, caller });
    done.push(`sets resumed: ${sets.join(', ')}`);
  }
  if (done.length === 0) throw new FleetError('Conflict', `rollout ${r.id} is not paused or stopped; nothing to resume`, 'rolloutId');
  return done;
}

/** Sets R23 stopped (until the retry interval) or R20/R24 hold: their stop ends now and they look again. */
function resumeStoppedSets(ctx: TickContext, r: RolloutState): string[] {
  if (r.status !== 'running') return [];
  // Units of one set share their gate run: end each stop once, then wake every unit it parked.
  for (const u of r.units.values()) {
    const run = u.gateRun;
    if (run.stoppedUntil === null || run.stoppedUntil <= ctx.now) continue;
    run.stoppedUntil = ctx.now; // gateRunOpen restarts its counters: the failures so far count as acknowledged
    changed.gateRun(ctx, run);
  }
  const names = new Set<string>();
  for (const u of r.units.values()) {
    if (u.status !== 'stopped' && u.status !== 'held') continue;
    names.add(u.plan.setId ?? u.plan.id);
    resumeUnit(ctx, r, u);
  }
  return [...names];
}

export function cancelByOperator(ctx: TickContext, r: RolloutState, reason: string, caller: string): void {
  mustBeLive(r);
  cancelRollout(ctx, r, `cancelled by ${caller}: ${reason}`);
  // The event of cancelRollout names no caller; the activity log wants one (not committed yet).
  for (const e of ctx.events) if (e.type === 'rollout.cancelled' && e.rolloutId === r.id) e.caller = caller;
}
