/**
 * The event-log contract (architecture page, "The event log contract"). One object per decision or
 * observation, in `seq` order, written as JSON Lines. Instance events carry the machine's placement so
 * the log can be checked on its own.
 */
import type { Artifact } from './artifact.js';
import type { Placement } from './fleet.js';

export type RolloutProfileName = 'standard' | 'critical' | 'manual';

export interface BatchScope {
  region: string;
  zone?: string | null;
  setId?: string | null;
  updateDomain?: number | null;
  subscription: string;
  /** True for a batch of a scale set with `enableCrossZoneUpgrade`, which may span zones (R14). */
  crossZone?: boolean;
}

interface Base { seq: number; time: string }

export interface InstanceIds {
  rolloutId: string;
  batchId: string;
  machineId: string;
  placement: Placement;
  artifact: Artifact;
  attempt: number;
}

type Each<T extends string, F> = T extends string ? { type: T } & F : never;

interface PhaseFields { rolloutId: string; phase: number; regions: string[]; reason?: string; upgraded?: number; unhealthy?: number }
interface BatchFields { rolloutId: string; batchId: string; scope: BatchScope; instances: string[]; setSize?: number; limit?: number; reason: string; retry?: boolean }
interface VersionFields extends InstanceIds { fromVersion: string; toVersion: string; reason?: string }
/** An install, reinstall or update the user asked for (no rollout): `fromVersion` is '' on a new instance. */
interface InstallFields { machineId: string; placement: Placement; artifact: Artifact; fromVersion: string; toVersion: string; caller: string; reason: string }
interface GateFields { rolloutId: string; gate: string; observed: number; limit: number; scope: BatchScope; reason: string; rule: string }

export type EventBody =
  | { type: 'rollout.created'; rolloutId: string; artifact: Artifact; toVersion: string; profile: RolloutProfileName; phases: string[][]; eligible: number; reason: string }
  | Each<'phase.started' | 'phase.completed' | 'phase.failed', PhaseFields>
  | Each<'batch.started' | 'batch.completed', BatchFields>
  | Each<'instance.upgrade.started' | 'instance.upgrade.succeeded' | 'instance.upgrade.failed' | 'instance.health.unhealthy', VersionFields>
  | Each<'instance.rollback.started' | 'instance.rollback.succeeded' | 'instance.rollback.failed' | 'instance.rollback.skipped', VersionFields>
  | ({ type: 'instance.reimaged'; fromVersion: string; toVersion: string; extensions: string[]; customData: boolean; dataDisksKept: boolean } & InstanceIds)
  | ({ type: 'instance.notice.scheduled'; eventType: 'Reimage' | 'Reboot'; notBefore: string | null; deferred: boolean; reason: string } & InstanceIds)
  | ({ type: 'instance.notice.approved'; caller: string } & InstanceIds)
  | ({ type: 'instance.retry.scheduled'; at: string; reason: string } & InstanceIds)
  | ({ type: 'instance.skipped'; reason: string } & InstanceIds)
  | Each<'gate.held' | 'gate.breached' | 'gate.cleared', GateFields>
  /** R20/R24: machines left out of the set's unhealthy share (Failed by R31, or unhealthy for too long). */
  | ({ type: 'gate.excluded'; machines: Array<{ machineId: string; reason: string }> } & GateFields)
  /** R20/R24: a set held beyond the limit; its phase is judged without it while it keeps being rechecked. */
  | ({ type: 'gate.released'; heldSince: string } & GateFields)
  | { type: 'window.waiting'; rolloutId: string; scope: BatchScope; opensAt: string | null; configurations: string[]; reason: string }
  | { type: 'window.bypassed'; rolloutId: string; batchId: string; scope: BatchScope; configurations: string[]; reason: string }
  | { type: 'host.update.published'; update: string; regions: string[] | null; impactType: string; impactDurationSec: number; caller: string }
  | { type: 'host.update.applied'; machineId: string; placement: Placement; updates: string[]; reason: string; caller: string }
  | { type: 'maintenance.changed'; configuration: string; targets: string[]; action: 'put' | 'delete' | 'assign' | 'unassign'; caller: string }
  /** `caller`: the operator who paused, resumed or cancelled it (absent when the engine did). */
  | Each<'rollout.paused' | 'rollout.stopped' | 'rollout.completed' | 'rollout.cancelled' | 'rollout.resumed', { rolloutId: string; reason: string; caller?: string }>
  | { type: 'autoUpgrade.changed'; machineId: string; artifactKey: string; enabled: boolean; caller: string }
  | Each<'instance.install.started' | 'instance.install.succeeded' | 'instance.install.failed', InstallFields>
  | { type: 'instance.removed'; machineId: string; placement: Placement; artifact: Artifact; version: string; caller: string; reason: string }
  | { type: 'enrollment.changed'; subscription: string; enrolled: boolean; caller: string; reason: string }
  | { type: 'release.published'; artifact: Artifact; version: string; critical: boolean; os: string[] }
  /** A release held fleet-wide: by its evidence (the sequential test) or by an operator. */
  | {
    type: 'release.halted'; artifact: Artifact; artifactKey: string; toVersion: string; kind: 'evidence' | 'operator' | 'withdrawn';
    reason: string; caller: string; evidence?: ReleaseEvidenceFields;
  }
  | { type: 'release.resumed'; artifact: Artifact; artifactKey: string; toVersion: string; caller: string; reason: string }
  | PatchEventBody;

/**
 * Guest OS patching (issue 16, R74–R77, R83–R84): runs of InGuestPatch schedules and on-demand
 * installations, reboot notices, and every availability impact on a machine. `configuration` is the
 * schedule's id ('' for on-demand); window bounds are ISO instants.
 */
export type PatchEventBody =
  | { type: 'patch.run.started'; machineId: string; placement: Placement; configuration: string; runId: string; windowStart: string; windowEnd: string; maximumDurationMs: number; reason: string }
  | { type: 'patch.run.skipped'; machineId: string; placement: Placement; configuration: string; runId: string; reason: string }
  | {
    type: 'patch.run.completed'; machineId: string; placement: Placement; configuration: string; runId: string; status: string;
    installed: number; failed: number; pending: number; maintenanceWindowExceeded: boolean; rebootStatus: string; reason: string;
  }
  /** R83: a reboot announced as a `Reboot` scheduled event, not before `notBefore`. */
  | { type: 'machine.reboot.announced'; machineId: string; placement: Placement; runId: string; eventId: string; notBefore: string; reason: string }
  /** R84: an availability impact: from `startTime` the machine was `state` for `durationSec` seconds, because of `cause`. */
  | {
    type: 'availability.impact'; machineId: string; placement: Placement; cause: 'Reboot' | 'Reimage' | 'Freeze' | 'Redeploy' | 'Unhealthy';
    state: 'Unavailable' | 'Degraded'; startTime: string; durationSec: number; planned: boolean; reason: string;
    /** The patch run that caused it, if one did. */
    runId?: string;
  };

/** What the release's sequential test had seen when it judged the release bad. */
export interface ReleaseEvidenceFields {
  successes: number;
  failures: number;
  /** The SPRT log-likelihood ratio and the boundary it crossed. */
  statistic: number;
  threshold: number;
  /** A few of the machines whose failures counted (most recent last). */
  failedMachines: string[];
  /** Machines left out of the statistic because they fail whatever version they get. */
  quarantined: Array<{ machineId: string; reason: string }>;
}

export type EngineEvent = Base & EventBody;
export type EventType = EngineEvent['type'];
