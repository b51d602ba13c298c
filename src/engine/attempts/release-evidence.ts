/**
 * A release judged fleet-wide as each outcome arrives: Wald's sequential probability ratio test of
 * H0 "the release fails on p0 = 5% of machines" against H1 "it fails on p1 = 20%", over the first
 * attempt of every machine in every automatic rollout of the release (docs/engine.md, "A release
 * judged fleet-wide"). When the statistic reaches the upper boundary the release is held: no new batch
 * of it starts anywhere (`rollouts/release-gate.ts`).
 */
import type { Artifact } from '../../model/artifact.js';
import type {
  AttemptState, BatchRun, EngineState, ReleaseEvidence, ReleaseHoldKind, ReleaseState, RolloutState, UnitState,
} from '../state.js';
import { releaseKey } from '../state.js';
import type { TickContext } from '../core/context.js';
import { emit } from '../core/context.js';

export const SPRT = { p0: 0.05, p1: 0.2, alpha: 0.001, beta: 0.01 } as const;
/** What one failure and one success add to the log-likelihood ratio. */
export const FAILURE_STEP = Math.log(SPRT.p1 / SPRT.p0);
export const SUCCESS_STEP = Math.log((1 - SPRT.p1) / (1 - SPRT.p0));
/** Wald's boundaries: above UPPER the release is bad; LOWER is a floor (good so far; the test keeps watching). */
export const UPPER = Math.log((1 - SPRT.beta) / SPRT.alpha);
export const LOWER = Math.log(SPRT.beta / (1 - SPRT.alpha));
/**
 * How long the statistic may stay below the floor before it is raised to it. Batches started together
 * do not end together: those without a failure end first (their machines report healthy within
 * seconds), those with one at the end of its health wait and rollback. A floor applied at once would
 * forget the clean batches' successes and then count the failures of the same wave alone: a release
 * failing on 3–5% of machines (H0 says 5% is acceptable) was held in a few seeds out of twenty. Below
 * the floor for at most this long, the outcomes of one wave are weighed together; older successes
 * are still forgotten, so a release that turns bad later is still caught.
 */
export const FLOOR_DELAY_MS = 30 * 60_000;
/** Failures of other releases in a row after which a machine is taken to fail whatever it gets. */
export const QUARANTINE_STREAK = 2;
const LISTED = 20;

/** Only automatic rollouts take part: a manual upgrade is the user's explicit command (R6). */
export function judgedByRelease(r: RolloutState): boolean {
  // Plans stored before the setting existed lack it: automatic ones take part.
  return !r.force && r.plan.profile.name !== 'manual' && r.plan.profile.releaseVerdict !== false;
}

export function releaseOf(state: EngineState, artifact: Artifact, artifactKey: string, toVersion: string): ReleaseState {
  const key = releaseKey(artifactKey, toVersion);
  let rel = state.releases.get(key);
  if (!rel) {
    rel = {
      key, artifact, artifactKey, toVersion, successes: 0, failures: 0, llr: 0, belowFloorSinceMs: null, failedMachines: [], quarantined: [],
      quarantinedCount: 0, hold: null, inflight: 0, waiters: new Map(),
    };
    state.releases.set(key, rel);
  }
  return rel;
}

/** Each rollout's release key, built once: it is looked up for every judged outcome. */
const rolloutReleaseKeys = new WeakMap<RolloutState, string>();

export function releaseOfRollout(state: EngineState, r: RolloutState): ReleaseState {
  let key = rolloutReleaseKeys.get(r);
  if (key === undefined) rolloutReleaseKeys.set(r, (key = releaseKey(r.artifactKey, r.toVersion)));
  return state.releases.get(key) ?? releaseOf(state, r.artifact, r.artifactKey, r.toVersion);
}

/**
 * One judged attempt: a success passed its health wait; a failure failed its upgrade or its health wait.
 * Within a batch, successes come within seconds and failures at the end of the health window: taken one
 * by one they would bunch the failures of every batch in flight, so the statistic takes a batch's
 * outcomes together when the batch completes (`judgeBatch`).
 */
export function recordOutcome(ctx: TickContext, r: RolloutState, unit: UnitState, a: AttemptState, failed: boolean): void {
  if (!judgedByRelease(r) || a.attempt !== 1) return; // a retry of the same machine is no new evidence
  const rel = releaseOfRollout(ctx.state, r);
  if (ctx.changes) ctx.changes.releases = true;
  const streak = ctx.state.failureStreaks.get(a.machineId); // looked up once: most machines have none
  const quarantine = quarantineReason(rel, a, streak);
  noteStreak(ctx.state, rel, a.machineId, streak, failed);
  if (quarantine) {
    rel.quarantinedCount++;
    if (rel.quarantined.length < LISTED) rel.quarantined.push({ machineId: a.machineId, reason: quarantine });
    return;
  }
  if (failed) {
    rel.failedMachines.push(a.machineId);
    if (rel.failedMachines.length > LISTED) rel.failedMachines.shift();
  }
  const run = unit.inflight?.id === a.batchId ? unit.inflight : null;
  if (!run) {
    judge(ctx, rel, failed ? 1 : 0, failed ? 0 : 1);
    return;
  }
  run.judged = (run.judged ?? 0) + 1;
  if (failed) run.judgedFailed = (run.judgedFailed ?? 0) + 1;
}

/** A batch completed: its outcomes move the release's statistic together. */
export function judgeBatch(ctx: TickContext, r: RolloutState, run: BatchRun): void {
  if (!judgedByRelease(r) || !run.judged) return;
  const failures = run.judgedFailed ?? 0;
  judge(ctx, releaseOfRollout(ctx.state, r), failures, run.judged - failures);
}

function judge(ctx: TickContext, rel: ReleaseState, failures: number, successes: number): void {
  if (ctx.changes) ctx.changes.releases = true;
  rel.failures += failures;
  rel.successes += successes;
  rel.llr = floored(rel, ctx.now, rel.llr + failures * FAILURE_STEP + successes * SUCCESS_STEP);
  if (rel.llr < UPPER || rel.hold) return;
  const evidence = evidenceOf(rel);
  const share = Math.round((rel.failures / (rel.failures + rel.successes)) * 1000) / 10;
  const reason = `${rel.failures} of ${rel.failures + rel.successes} machines failed (${share}%): the sequential test says the`
    + ` release fails on more than ${SPRT.p0 * 100}% of machines (statistic ${evidence.statistic} ≥ ${evidence.threshold})`;
  holdRelease(ctx, rel, 'evidence', reason, 'phasewise', evidence);
}

/** The statistic after a step to `llr`: below LOWER it is raised to it once it has been below for FLOOR_DELAY_MS. */
function floored(rel: ReleaseState, now: number, llr: number): number {
  if (llr >= LOWER) {
    rel.belowFloorSinceMs = null;
    return llr;
  }
  const since = rel.belowFloorSinceMs ?? null;
  if (since === null) {
    rel.belowFloorSinceMs = now;
    return llr;
  }
  if (now - since < FLOOR_DELAY_MS) return llr;
  // Raised to the floor; the next step below it starts a new delay.
  rel.belowFloorSinceMs = null;
  return LOWER;
}

/** Machines that fail whatever version they get: unhealthy before the upgrade, or failed other releases. */
function quarantineReason(rel: ReleaseState, a: AttemptState, streak: string[] | undefined): string | null {
  if (a.unhealthyBefore) return 'unhealthy before the upgrade started';
  if (streak === undefined) return null; // most machines never failed anything
  const others = streak.filter((k) => k !== rel.key);
  if (others.length >= QUARANTINE_STREAK) return `failed its last ${others.length} attempts of other releases (${others.join(', ')})`;
  return null;
}

/** `known`: the machine's streak as `failureStreaks` holds it now. */
function noteStreak(state: EngineState, rel: ReleaseState, machineId: string, known: string[] | undefined, failed: boolean): void {
  if (!failed) {
    if (known !== undefined) state.failureStreaks.delete(machineId);
    return;
  }
  const streak = known ?? [];
  if (!streak.includes(rel.key)) streak.push(rel.key);
  if (streak.length > QUARANTINE_STREAK + 1) streak.shift();
  state.failureStreaks.set(machineId, streak);
}

export function evidenceOf(rel: ReleaseState): ReleaseEvidence {
  return {
    successes: rel.successes, failures: rel.failures,
    statistic: Math.round(rel.llr * 100) / 100, threshold: Math.round(UPPER * 100) / 100,
    failedMachines: [...rel.failedMachines], quarantined: [...rel.quarantined],
  };
}

/** Holds a release fleet-wide; batches in flight finish and are judged as usual. */
export function holdRelease(ctx: TickContext, rel: ReleaseState, kind: ReleaseHoldKind, reason: string, caller: string, evidence: ReleaseEvidence | null): void {
  rel.hold = { kind, reason, caller, sinceMs: ctx.now, evidence };
  if (ctx.changes) ctx.changes.releases = true;
  emit(ctx, {
    type: 'release.halted', artifact: rel.artifact, artifactKey: rel.artifactKey, toVersion: rel.toVersion,
    kind, reason, caller, ...(evidence ? { evidence } : {}),
  });
}
