/**
 * The engine's working state. The engine mutates it during a tick and hands the tick's changes to
 * the Store in one commit before any action leaves (architecture principle 5).
 */
import type { Catalog } from '../catalog/catalog.js';
import { ImageCatalog } from '../catalog/images.js';
import type { Artifact, ExtensionInstance } from '../model/artifact.js';
import type { AvailabilitySet, Machine, Placement, Region, ScaleSet } from '../model/fleet.js';
import type { ReleaseEvidenceFields } from '../model/events.js';
import type { HealthSignals } from '../model/health.js';
import type { MaintenanceState } from '../model/maintenance.js';
import { emptyMaintenance } from '../model/maintenance.js';
import { isMachineHealthy } from '../model/health.js';
import type { Plan, PlanUnit } from '../planner/types.js';
import { TimeQueue } from '../util/time-queue.js';

export interface FleetState {
  regions: Map<string, Region>;
  machines: Map<string, Machine>;
  scaleSets: Map<string, ScaleSet>;
  availabilitySets: Map<string, AvailabilitySet>;
  /** Instances per set, eligible or not. */
  setSizes: Map<string, number>;
  /** artifactKey → machineId → instance. */
  instances: Map<string, Map<string, ExtensionInstance>>;
  /** Latest signals of machines whose last report was unhealthy; any other machine counts as healthy. */
  health: Map<string, HealthSignals>;
  /** Machines unhealthy for any reason: bad signals or a Failed extension (R20 counts them). */
  unhealthy: Set<string>;
  /** Unhealthy machines per set, kept in step with `unhealthy`. */
  setUnhealthy: Map<string, number>;
}

export function emptyFleet(): FleetState {
  return {
    regions: new Map(),
    machines: new Map(),
    scaleSets: new Map(),
    availabilitySets: new Map(),
    setSizes: new Map(),
    instances: new Map(),
    health: new Map(),
    unhealthy: new Set(),
    setUnhealthy: new Map(),
  };
}

export function addMachine(fleet: FleetState, m: Machine): void {
  if (fleet.machines.has(m.id)) throw new Error(`machine ${m.id} already exists`);
  fleet.machines.set(m.id, m);
  const setId = m.placement.setId;
  if (setId) fleet.setSizes.set(setId, (fleet.setSizes.get(setId) ?? 0) + 1);
}

export function addInstance(fleet: FleetState, inst: ExtensionInstance): void {
  let byMachine = fleet.instances.get(inst.artifactKey);
  if (!byMachine) fleet.instances.set(inst.artifactKey, (byMachine = new Map()));
  byMachine.set(inst.machineId, inst);
}

export function getInstance(fleet: FleetState, artifactKey: string, machineId: string): ExtensionInstance | undefined {
  return fleet.instances.get(artifactKey)?.get(machineId);
}

/** Recomputes whether a machine counts as unhealthy and keeps the per-set counts in step. */
export function refreshMachineHealth(fleet: FleetState, machineId: string): void {
  const m = fleet.machines.get(machineId);
  if (m) refreshHealthOf(fleet, m, fleet.health.get(machineId));
}

/**
 * `refreshHealthOf` for a health report (`signals` as stored: undefined when healthy). A Failed instance already
 * counts its machine in `unhealthy` (every change to Failed refreshes it), so a healthy report of a machine not
 * in `unhealthy` changes nothing and needs no look at its instances (a lookup per artifact in maps of a million).
 */
export function refreshReportedHealth(fleet: FleetState, m: Machine, signals: HealthSignals | undefined, machineId = m.id): void {
  // `machineId`: the id the caller holds (the report's), so that the common case reads nothing of the machine.
  if (signals === undefined && (fleet.unhealthy.size === 0 || !fleet.unhealthy.has(machineId))) return;
  refreshHealthOf(fleet, m, signals);
}

/** `refreshMachineHealth` for a machine in hand whose stored signals (`fleet.health`) are `signals`. */
export function refreshHealthOf(fleet: FleetState, m: Machine, signals: HealthSignals | undefined): void {
  const machineId = m.id;
  let bad = signals !== undefined && !isMachineHealthy(signals);
  if (!bad) {
    for (const byMachine of fleet.instances.values()) {
      const inst = byMachine.get(machineId);
      if (inst && inst.status === 'Failed') { bad = true; break; }
    }
  }
  const was = fleet.unhealthy.has(machineId);
  if (bad === was) return;
  if (bad) fleet.unhealthy.add(machineId);
  else fleet.unhealthy.delete(machineId);
  const setId = m.placement.setId;
  if (setId) fleet.setUnhealthy.set(setId, (fleet.setUnhealthy.get(setId) ?? 0) + (bad ? 1 : -1));
}

export type AttemptStatus =
  | 'noticed' | 'upgrading' | 'healthWait' | 'rollingBack' // in flight (noticed: a re-image announced, R83)
  | 'retryWait' | 'retryReady' | 'parked' // waiting: retry timer, queued in its unit, opted out
  | 'succeeded' | 'rolledBack' | 'failed' | 'skipped'; // final: healthy, back on last-known-good for good, Failed (R31), not attempted

/** An attempt whose action (or announced action) on the machine has not settled. */
export const IN_FLIGHT: ReadonlySet<AttemptStatus> = new Set(['noticed', 'upgrading', 'healthWait', 'rollingBack']);

export interface AttemptState {
  rolloutId: string;
  machineId: string;
  /** The instance being changed; kept here so each step needs no lookup. */
  inst: ExtensionInstance;
  unitId: string;
  batchId: string;
  attempt: number;
  status: AttemptStatus;
  fromVersion: string;
  /** Key of the action in flight, if any. */
  actionKey: string | null;
  reason: string | null;
  /** When a retry is due (status retryWait). */
  dueAtMs: number | null;
  /** The machine was unhealthy when the upgrade started: its outcome says nothing of the release. Not stored. */
  unhealthyBefore?: boolean;
  /**
   * Not stored: the attempt's unit and its machine's placement, kept so that each step needs no lookup in
   * maps of a million entries (see `unitOf`, `placementOf`; filled on first use after a load).
   */
  unit?: UnitState;
  placement?: Placement;
  /** Not stored: the timer of its health wait, cancelled when the verdict comes first. */
  healthTimer?: Timer;
}

/**
 * `window`: the next batch waits for a maintenance window (R70); a timer or a configuration change wakes it.
 * `disabled`: an OS image rollout's set turned automatic OS upgrade off (R65); turning it on resumes it.
 */
export type UnitStatus = 'waiting' | 'ready' | 'running' | 'paused' | 'held' | 'stopped' | 'blocked' | 'window' | 'disabled' | 'done';

export interface BatchRun {
  id: string;
  updateDomain: number | null;
  machineIds: string[];
  unsettled: number;
  retry: boolean;
  /** First attempts judged in this batch and how many failed: the release's statistic takes them when it completes. */
  judged?: number;
  judgedFailed?: number;
}

/** R23 counters and stop of one run of a set (shared by its units in every zone) or of a standalone group. */
export interface GateRun {
  rolloutId: string;
  /** The set id, or the unit id of a standalone group. */
  key: string;
  upgraded: number;
  unhealthyUpgraded: number;
  /** While set, the set is stopped by R23 until this instant. */
  stoppedUntil: number | null;
}

export interface UnitState {
  rolloutId: string;
  plan: PlanUnit;
  gateRun: GateRun;
  region: string;
  phase: number;
  wave: number;
  status: UnitStatus;
  /** Next planned batch to run. */
  next: number;
  inflight: BatchRun | null;
  /** Every planned batch ran; retries may still come. */
  passDone: boolean;
  /** Counted as done for its wave: it ran every planned batch, or R23 stopped it. */
  waveSettled: boolean;
  retryReady: string[];
  retryBatches: number;
  /** While status is `window`: the slot it waits for (null: none in sight). Not stored: a restart re-evaluates. */
  windowOpensAt?: number | null;
  /** Since when R20 or R24 has held the unit without a batch in between. Not stored: a restart counts afresh. */
  heldSinceMs?: number;
  /** When the unit was held beyond the limit and its phase went on without it (`gate.released`). Not stored. */
  releasedAtMs?: number;
  /** When its last batch completed: the next one, planned or retry, waits the policy's pause. Not stored. */
  lastBatchEndedAtMs?: number;
  /** When its batch in flight started, and how many of its batches completed in how long (bound-pressure.ts's `batchMsOf`). Not stored. */
  batchStartedAtMs?: number;
  timedBatches?: number;
  timedBatchMs?: number;
  /** A standalone unit's `standaloneKey` and its subscription's standalone machines in the phase, found once (R12). Not stored. */
  standaloneKey?: string;
  standaloneTotal?: number;
}

/**
 * UnitState's fields kept in memory only, present from a unit's creation: added later, one by one, they gave
 * units many hidden classes and made the engine's reads of them polymorphic (bench:sim about 10% slower).
 */
type UnitMemoryField = 'windowOpensAt' | 'heldSinceMs' | 'releasedAtMs' | 'lastBatchEndedAtMs' | 'batchStartedAtMs' | 'timedBatches' | 'timedBatchMs'
  | 'standaloneKey' | 'standaloneTotal';
export function unitMemoryFields(): Pick<UnitState, UnitMemoryField> {
  return {
    windowOpensAt: undefined, heldSinceMs: undefined, releasedAtMs: undefined, lastBatchEndedAtMs: undefined, batchStartedAtMs: undefined, timedBatches: 0, timedBatchMs: 0,
    standaloneKey: undefined, standaloneTotal: undefined,
  };
}

/** `standaloneKey` of a standalone unit, built once per unit rather than at every batch (a string to build and hash). */
export function unitStandaloneKey(r: RolloutState, u: UnitState): string {
  return u.standaloneKey ?? (u.standaloneKey = standaloneKey(r.id, u.phase, u.plan.subscription));
}

export interface RegionState {
  rolloutId: string;
  region: string;
  pair: string | null;
  phase: number;
  wave: number;
  /** Units of the current wave still in their first pass; -1 before the wave starts. */
  waveRemaining: number;
  /** Units neither done with their planned batches nor stopped by R23; the region is settled at 0. */
  openUnits: number;
  /** Units that have not run all their planned batches (stopped ones included). */
  unfinished: number;
  advancing: boolean;
  /** In-flight batches per zone key; R11 admits only one zone at a time. */
  inflightByZone: Map<string, number>;
  inflight: number;
  /** Units whose next batch waits for a lock held elsewhere. */
  blocked: Set<UnitState>;
}

export type PhaseStatus = 'pending' | 'running' | 'baking' | 'completed' | 'failed';

export interface PhaseState {
  rolloutId: string;
  index: number;
  status: PhaseStatus;
  startedAtMs: number | null;
  endedAtMs: number | null;
  upgraded: number;
  unhealthy: number;
}

export type RolloutStatus = 'running' | 'completed' | 'stopped' | 'cancelled';

export interface RolloutState {
  id: string;
  artifact: Artifact;
  artifactKey: string;
  toVersion: string;
  major: number;
  plan: Plan;
  status: RolloutStatus;
  reason: string | null;
  createdAtMs: number;
  endedAtMs: number | null;
  currentPhase: number;
  phases: PhaseState[];
  regions: Map<string, RegionState>;
  units: Map<string, UnitState>;
  attempts: Map<string, AttemptState>;
  /** Machines in the plan, built on demand. */
  members?: Set<string>;
  /** A manual rollout that goes on through health failures: R20, R23, R24 and the phase gate never hold or stop it (R22 still rolls back). */
  force: boolean;
  /** Eligible instances not yet in a final state; the rollout completes at zero once every phase ran. */
  open: number;
  caller: string;
  /**
   * Not stored: how many machines left the rollout before their planned batch came (`skipGone`), counted
   * from its creation in this process. At 0 a planned batch's machines have no attempt yet and need no
   * lookup; undefined (a rollout read from a store) means unknown.
   */
  goneBeforeBatch?: number;
  /**
   * Not stored: the installed version `versionReason` (attempts/skip.ts) judged last for this rollout, and its
   * answer. A batch's machines nearly all run one version, so each needs no parse or comparison of its own.
   */
  judged?: { version: string; reason: string | null };
  /**
   * Not stored: a cancelled rollout found with no attempt in flight (`quiet`, for good), and the asks since its
   * attempts were last read (attempts/skip.ts, `settledForGood`). A restart finds it out again.
   */
  quiet?: boolean;
  asksSinceRead?: number;
}

/** Why a release is held: the evidence judged it bad, an operator held it, or an operator withdrew it (for good). */
export type ReleaseHoldKind = 'evidence' | 'operator' | 'withdrawn';

/** What the release's sequential test had seen when it judged the release bad (the event carries the same). */
export type ReleaseEvidence = ReleaseEvidenceFields;

export interface ReleaseHold {
  kind: ReleaseHoldKind;
  reason: string;
  caller: string;
  sinceMs: number;
  evidence: ReleaseEvidence | null;
}

/**
 * One release, (artifactKey, toVersion), across all its automatic rollouts: the evidence of its
 * outcomes (Wald's SPRT, `attempts/release-evidence.ts`) and the hold that stops its batches.
 */
export interface ReleaseState {
  key: string;
  artifact: Artifact;
  artifactKey: string;
  toVersion: string;
  successes: number;
  failures: number;
  /** The SPRT statistic, floored at its lower boundary (the test keeps watching after "good so far"). */
  llr: number;
  /**
   * Since when the statistic is below the floor, not raised to it yet (FLOOR_DELAY_MS); null when it is not.
   * Absent in releases stored before it existed (read as null).
   */
  belowFloorSinceMs?: number | null;
  failedMachines: string[];
  quarantined: Array<{ machineId: string; reason: string }>;
  quarantinedCount: number;
  hold: ReleaseHold | null;
  /** Machines of the release in batches in flight (derived on load). Not stored. */
  inflight: number;
  /** Units waiting for the hold to end or the fan-out to widen: unit id → rollout id. Not stored. */
  waiters: Map<string, string>;
}

export function releaseKey(artifactKey: string, toVersion: string): string {
  return `${artifactKey}@${toVersion}`;
}

export type TimerKind = 'healthDeadline' | 'actionTimeout' | 'retry' | 'unitResume' | 'phaseOpen' | 'hostMaintenance' | 'imageCheck' | 'noticeDue';

export interface Timer {
  /** Identity for the store; increasing. */
  id: number;
  at: number;
  kind: TimerKind;
  rolloutId: string;
  /** machineId for instance timers, unit id for unitResume, phase index for phaseOpen. */
  ref: string;
  /** Guards against stale timers: the attempt number or action key it was set for. */
  token: string | number;
  /** Not stored: the attempt an instance timer was set for, so a stale one is recognised without a lookup. */
  attempt?: AttemptState;
  /** Not stored: fired, or cancelled because it can no longer do anything (see `cancelTimer`). */
  done?: boolean;
  /** Not stored: its place in the queue (what `TimeQueue.push` returned), so that cancelling it finds it at once; -1 when unknown. */
  place?: number;
}

export type ActionKind = 'upgrade' | 'rollback' | 'install' | 'uninstall';

/** An action sent and not answered yet. Installs and uninstalls belong to no rollout (rolloutId ''). */
export interface PendingAction {
  rolloutId: string;
  machineId: string;
  kind: ActionKind;
  /** Installs and uninstalls: the instance, the version and who asked. */
  artifactKey?: string;
  toVersion?: string;
  caller?: string;
  /** Not stored: the rollout attempt that sent it (upgrade, rollback), so its answer needs no lookup, and its timeout. */
  attempt?: AttemptState;
  timer?: Timer;
}

/** The key of one instance in maps over every artifact: `artifactKey|machineId`. */
/** The key of `standaloneInflight`: a rollout's phase and subscription (R12). */
export function standaloneKey(rolloutId: string, phase: number, subscription: string): string {
  return `${rolloutId}/${phase}/${subscription}`;
}

export function instanceRef(artifactKey: string, machineId: string): string {
  return `${artifactKey}|${machineId}`;
}

/**
 * R7: true when the machine is a scale-set instance whose subscription is enrolled, so its extensions
 * with `autoUpgradeMinorVersion` count as opted in.
 */
export function isEnrolled(state: Pick<EngineState, 'enrolledSubscriptions'>, m: Machine): boolean {
  return state.enrolledSubscriptions.size > 0 && m.placement.setKind === 'scaleSet' && state.enrolledSubscriptions.has(m.placement.subscription);
}

/** What eligibility needs to know of a machine (R2, R7). */
export function machineContext(state: Pick<EngineState, 'enrolledSubscriptions'>, m: Machine): { os: Machine['os']; region: string; enrolled: boolean } {
  return { os: m.os, region: m.placement.region, enrolled: isEnrolled(state, m) };
}

/** A fresh engine state over a fleet and a catalog. */
export function newEngineState(fleet: FleetState, catalog: Catalog): EngineState {
  return {
    fleet,
    catalog,
    rollouts: new Map(),
    timers: new TimeQueue(),
    pendingActions: new Map(),
    installing: new Map(),
    enrolledSubscriptions: new Set(),
    maintenance: emptyMaintenance(),
    images: new ImageCatalog(),
    healthWaiters: new Map(),
    setInflight: new Map(),
    setWaiters: new Map(),
    unhealthySeen: new Map(),
    standaloneInflight: new Map(),
    subscriptionWaiters: new Map(),
    releases: new Map(),
    failureStreaks: new Map(),
    eventSeq: 0,
    rolloutSeq: 0,
    timerSeq: 0,
    actionSeq: 0,
    recoveredAt: -Infinity,
    marks: {},
  };
}

/**
 * Makes `target` equal to `fresh` (a state read back from the store) without replacing the objects
 * others hold: the state itself and its fleet keep their identity, their contents are `fresh`'s.
 */
export function replaceStateContents(target: EngineState, fresh: EngineState): void {
  const fleet = target.fleet;
  for (const key of Object.keys(fleet) as Array<keyof FleetState>) {
    const mine = fleet[key] as Map<unknown, unknown> | Set<unknown>;
    const theirs = fresh.fleet[key] as Map<unknown, unknown> | Set<unknown>;
    mine.clear();
    if (mine instanceof Map) for (const [k, v] of theirs as Map<unknown, unknown>) mine.set(k, v);
    else for (const v of theirs) mine.add(v);
  }
  Object.assign(target, { ...fresh, fleet });
}

export interface EngineState {
  fleet: FleetState;
  catalog: Catalog;
  rollouts: Map<string, RolloutState>;
  timers: TimeQueue<Timer>;
  /** Actions sent and not yet answered, by idempotency key. */
  pendingActions: Map<string, PendingAction>;
  /** The install or uninstall in flight per instance (`instanceRef`), by action key; derived from pendingActions. */
  installing: Map<string, string>;
  /** R7: subscriptions whose scale sets upgrade extensions with `autoUpgradeMinorVersion` automatically. */
  enrolledSubscriptions: Set<string>;
  /** Maintenance configurations and their assignments (R70–R73). */
  maintenance: MaintenanceState;
  /** Platform and gallery images with their replications (R64). */
  images: ImageCatalog;
  /**
   * Attempts waiting for a health verdict, by machine (R21): the attempt itself when one rollout waits (nearly
   * always), an array when several do. No wrapper and no array of one per machine (issue 13, session 18).
   */
  healthWaiters: Map<string, AttemptState | AttemptState[]>;
  /** In-flight batches per set across every rollout: all machines of a set are never upgraded at once. */
  setInflight: Map<string, number>;
  /** Units (by id, with their rollout id) waiting for a set's lock. */
  setWaiters: Map<string, Map<string, string>>;
  /**
   * R20/R24: per set, the unhealthy machines a health gate has seen and since when, without a healthy
   * look in between (chronically unhealthy ones are excluded from the share). Not stored.
   */
  unhealthySeen: Map<string, Map<string, number>>;
  /** R12: standalone instances in flight per rollout, phase and subscription (`rolloutId/phase/subscription`). */
  standaloneInflight: Map<string, number>;
  /** R12: standalone units waiting for the spread, by the same key; woken when a batch of theirs completes. */
  subscriptionWaiters: Map<string, Set<UnitState>>;
  /** Releases with evidence or a hold, by `releaseKey` (stored). */
  releases: Map<string, ReleaseState>;
  /** Per machine, the releases whose first attempt it failed, most recent last, since its last success. Not stored. */
  failureStreaks: Map<string, string[]>;
  eventSeq: number;
  rolloutSeq: number;
  timerSeq: number;
  /** Sequence of the actions the user asked for (installs, uninstalls): part of their idempotency keys. */
  actionSeq: number;
  /** When the engine last recovered (a restart, a resync): health deadlines that passed during the outage wait RECOVERY_GRACE_MS more for fresh reports (not stored). */
  recoveredAt: number;
  /** Positions of outside inputs (e.g. how many scenario events were applied), saved with every commit. */
  marks: Record<string, number>;
}

/** Registers an attempt waiting for its machine's health verdict (R21; see `healthWaiters`). */
export function addHealthWaiter(state: Pick<EngineState, 'healthWaiters'>, a: AttemptState): void {
  const waiting = state.healthWaiters.get(a.machineId);
  if (waiting === undefined) state.healthWaiters.set(a.machineId, a);
  else if (Array.isArray(waiting)) waiting.push(a);
  else state.healthWaiters.set(a.machineId, [waiting, a]);
}

/** The rollout's attempt stops waiting for the machine's health verdict; a list left with one goes back to the attempt itself. */
export function removeHealthWaiter(state: Pick<EngineState, 'healthWaiters'>, machineId: string, rolloutId: string): void {
  const waiting = state.healthWaiters.get(machineId);
  if (waiting === undefined) return;
  // The common case, one rollout waiting: the attempt itself, no list to search.
  if (!Array.isArray(waiting)) {
    if (waiting.rolloutId === rolloutId) state.healthWaiters.delete(machineId);
    return;
  }
  const i = waiting.findIndex((w) => w.rolloutId === rolloutId);
  if (i >= 0) waiting.splice(i, 1);
  if (waiting.length === 1) state.healthWaiters.set(machineId, waiting[0]!);
  else if (waiting.length === 0) state.healthWaiters.delete(machineId);
}

/** The attempts waiting for the machine's health verdict, in the order they began to wait (a copy: judging one removes it). */
export function healthWaitersOf(state: Pick<EngineState, 'healthWaiters'>, machineId: string): AttemptState[] {
  const waiting = state.healthWaiters.get(machineId);
  return waiting === undefined ? [] : Array.isArray(waiting) ? [...waiting] : [waiting];
}

/** An attempt's stored fields; `newAttempt` adds the others. */
export type AttemptFields = Omit<AttemptState, 'unhealthyBefore' | 'unit' | 'placement' | 'healthTimer'>;

/**
 * An attempt with every field present, in one order: a million attempts then share one hidden class, and
 * the code that reads them stays monomorphic (fields added later would give each its own).
 */
export function newAttempt(a: AttemptFields, unit?: UnitState, placement?: Placement): AttemptState {
  return {
    rolloutId: a.rolloutId, machineId: a.machineId, inst: a.inst, unitId: a.unitId, batchId: a.batchId, attempt: a.attempt, status: a.status,
    fromVersion: a.fromVersion, actionKey: a.actionKey, reason: a.reason, dueAtMs: a.dueAtMs, unhealthyBefore: undefined, unit, placement, healthTimer: undefined,
  };
}

/** `newAttempt` for an upgrade starting now (status `upgrading`), with no fields object to copy: one is made per machine. */
export function upgradingAttempt(rolloutId: string, inst: ExtensionInstance, unitId: string, batchId: string, attempt: number, unit: UnitState, placement: Placement): AttemptState {
  return {
    rolloutId, machineId: inst.machineId, inst, unitId, batchId, attempt, status: 'upgrading',
    fromVersion: inst.installedVersion, actionKey: null, reason: null, dueAtMs: null, unhealthyBefore: undefined, unit, placement, healthTimer: undefined,
  };
}

/** A timer with every field present, in one order (one hidden class for the queue to read; see `newAttempt`). */
export function newTimer(id: number, t: Omit<Timer, 'id'>): Timer {
  return { id, at: t.at, kind: t.kind, rolloutId: t.rolloutId, ref: t.ref, token: t.token, attempt: t.attempt, done: false, place: -1 };
}

/** The attempt's unit, found once. */
export function unitOf(r: RolloutState, a: AttemptState): UnitState {
  return a.unit ?? (a.unit = r.units.get(a.unitId)!);
}

/** The placement of the attempt's machine, found once (a machine's placement never changes while it is in the fleet). */
export function placementOf(state: EngineState, a: AttemptState): Placement {
  return a.placement ?? (a.placement = state.fleet.machines.get(a.machineId)!.placement);
}

/** Every machine planned in a rollout; built on first use (an operator opting back in, a withdrawal's follow-up). Plans do not change once made. */
export function rolloutMembers(r: RolloutState): Set<string> {
  if (!r.members) {
    r.members = new Set();
    for (const u of r.units.values()) for (const b of u.plan.batches) for (const id of b.machineIds) r.members.add(id);
  }
  return r.members;
}
