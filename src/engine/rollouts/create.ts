/**
 * Creating rollouts: who is eligible for a release (R1, R2), the plan, and the rollout's working state.
 * A newer release within a major supersedes the running rollout of an older one.
 */
import type { PublishedVersion } from '../../catalog/catalog.js';
import { AutomaticTargets, automaticTarget } from '../../catalog/catalog.js';
import type { Artifact } from '../../model/artifact.js';
import { artifactKey, artifactMajor, compareArtifactVersions } from '../../model/artifact.js';
import type { RolloutProfileName } from '../../model/events.js';
import type { Machine } from '../../model/fleet.js';
import { compareVersions, majorOf } from '../../model/version.js';
import { planRollout } from '../../planner/plan.js';
import { profileFor } from '../../planner/profile.js';
import type { TickContext } from '../core/context.js';
import { changed, emit } from '../core/context.js';
import { cancelRollout } from './cancel.js';
import { openPhase } from './waves.js';
import { MachineCursor } from '../core/machine-cursor.js';
import { InOrderLookup } from '../../util/in-order-lookup.js';
import type { EngineState, GateRun, RegionState, RolloutState, UnitState } from '../state.js';
import { instanceRef, isEnrolled, machineContext, unitMemoryFields } from '../state.js';
import { configsOfKey, scopeOf, windowKeyOf, windowsOfKey } from '../../model/maintenance.js';
import { offPeakId, offPeakWindowOfId } from '../../schedule/off-peak.js';

import type { RolloutSettings } from '../core/settings.js';
export type { RolloutSettings } from '../core/settings.js';

export interface RolloutRequest {
  artifact: Artifact;
  toVersion: string;
  profile: RolloutProfileName;
  /** Restricts the rollout to these machines (manual upgrades, catch-ups); otherwise every eligible instance. */
  machineIds?: string[];
  /** With machineIds: keep only those whose automatic target is toVersion (a catch-up, not a manual upgrade). */
  automatic?: boolean;
  caller?: string;
  reason?: string;
  /** Manual rollouts only: go on through health failures (see RolloutState.force). */
  force?: boolean;
  /** Back to an earlier version: machines above toVersion move down to it (rollouts/withdraw.ts). */
  downgrade?: boolean;
}

export function startAutomatic(ctx: TickContext, settings: RolloutSettings, artifact: Artifact, version: string, critical: boolean): RolloutState | null {
  const key = artifactKey(artifact);
  const major = majorOf(version);
  for (const r of ctx.state.rollouts.values()) {
    if (r.artifactKey !== key || r.major !== major || r.status !== 'running' || r.plan.profile.name === 'manual') continue;
    if (compareVersions(r.toVersion, version) >= 0) return null;
    cancelRollout(ctx, r, `superseded by ${version}`);
  }
  return createRollout(ctx, settings, {
    artifact,
    toVersion: version,
    profile: critical ? 'critical' : 'standard',
    caller: settings.platformCaller ?? 'platform',
    reason: critical ? `critical security release ${version}: faster rollout (R40)` : `release ${version} published`,
  });
}

function eligibleMachines(ctx: TickContext, key: string, req: RolloutRequest): Machine[] {
  const state = ctx.state;
  if (!req.machineIds) return automaticallyEligible(state, key, req.toVersion, ctx.now);
  const { fleet, catalog } = state;
  const byMachine = fleet.instances.get(key);
  if (!byMachine) return [];
  const out: Machine[] = [];
  // Callers list the machines mostly in the fleet's order (an OS image's look): read both maps along it.
  const instances = new InOrderLookup(byMachine, (i) => i.machineId);
  const machines = new MachineCursor(fleet.machines);
  for (const id of req.machineIds) {
    const inst = instances.of(id);
    const m = machines.of(id);
    if (!inst || !m || inst.blockedReason || inst.installedVersion === '' || busy(state, key, id) || compareArtifactVersions(req.artifact, inst.installedVersion, req.toVersion) === 0) continue;
    if (req.automatic && automaticTarget(catalog, inst, machineContext(state, m), ctx.now).target !== req.toVersion) continue;
    out.push(m);
  }
  return out;
}

/** An instance being installed (or not installed at all) is the user's business until that ends. */
function busy(state: Pick<EngineState, 'installing'>, key: string, machineId: string): boolean {
  return state.installing.size > 0 && state.installing.has(instanceRef(key, machineId));
}

/** R1, R2: the machines whose automatic target for the artifact `key` is `toVersion`, none with a user's install open. */
export function automaticallyEligible(state: Pick<EngineState, 'fleet' | 'catalog' | 'installing' | 'enrolledSubscriptions'>, key: string,
  toVersion: string, now: number): Machine[] {
  const byMachine = state.fleet.instances.get(key);
  if (!byMachine) return [];
  const out: Machine[] = [];
  const targets = new AutomaticTargets(state.catalog, now);
  const machines = new MachineCursor(state.fleet.machines);
  for (const inst of byMachine.values()) {
    const m = machines.of(inst.machineId)!;
    if (targets.of(inst, m.os, m.placement.region, isEnrolled(state, m)) === toVersion && !busy(state, key, inst.machineId)) out.push(m);
  }
  return out;
}

export function createRollout(ctx: TickContext, settings: RolloutSettings, req: RolloutRequest): RolloutState | null {
  const key = artifactKey(req.artifact);
  const machines = eligibleMachines(ctx, key, req);
  if (machines.length === 0) return null;
  const id = `ro-${++ctx.state.rolloutSeq}`;
  const profile = profileFor(req.profile, settings.profiles?.[req.profile] ?? {});
  const fleet = ctx.state.fleet;
  const plan = planRollout({
    rolloutId: id,
    artifact: req.artifact,
    toVersion: req.toVersion,
    profile,
    regions: [...fleet.regions.values()],
    machines,
    scaleSets: fleet.scaleSets,
    availabilitySets: fleet.availabilitySets,
    setSizes: fleet.setSizes,
    unhealthy: fleet.unhealthy,
    ...(settings.canaryRegions ? { canaryRegions: settings.canaryRegions } : {}),
    startMs: ctx.now,
    // Manual upgrades are not confined to windows (R6): only automatic rollouts plan around them.
    ...((ctx.state.maintenance.assignments.size > 0 || req.artifact.kind === 'guestPatch') && profile.name !== 'manual' ? { windows: planWindows(ctx, req) } : {}),
  });
  if (req.downgrade) plan.downgrade = true; // stored with the plan, so a restart knows the direction
  const r = newRolloutState(id, key, req, plan, ctx.now, machines.length);
  r.goneBeforeBatch = 0;
  ctx.state.rollouts.set(id, r);
  changed.rollout(ctx, r);
  ctx.changes?.created.push(r);
  emit(ctx, {
    type: 'rollout.created',
    rolloutId: id,
    artifact: req.artifact,
    toVersion: req.toVersion,
    profile: profile.name,
    phases: plan.phases.map((p) => p.regions.map((x) => x.region)),
    eligible: machines.length,
    reason: req.reason ?? '',
  });
  openPhase(ctx, r, 0);
  return r;
}

function planWindows(ctx: TickContext, req: RolloutRequest) {
  const m = ctx.state.maintenance;
  // R76: platform patches are confined to each region's off-peak hours (the implicit window of windows.ts).
  if (req.artifact.kind === 'guestPatch') {
    return { keyOf: (machine: Machine) => offPeakId(machine.placement.region), unionOf: (key: string) => [offPeakWindowOfId(key)], bypasses: () => true };
  }
  const scope = scopeOf(req.artifact);
  return {
    keyOf: (machine: Machine) => windowKeyOf(m, scope, machine),
    unionOf: (key: string) => windowsOfKey(m, key),
    bypasses: (key: string) => {
      const configs = configsOfKey(m, key);
      return configs.length > 0 && configs.every((c) => c.emergencyBypass);
    },
  };
}

export function newRolloutState(id: string, key: string, req: RolloutRequest, plan: RolloutState['plan'], now: number, eligible: number): RolloutState {
  const units = new Map<string, UnitState>();
  const regions = new Map<string, RegionState>();
  const setRuns = new Map<string, GateRun>();
  plan.phases.forEach((phase, pi) => {
    for (const pr of phase.regions) {
      let openUnits = 0;
      pr.waves.forEach((w, wi) => {
        for (const u of w.units) {
          openUnits++;
          // Units of one set share their R23 counters and stop across zones.
          let gateRun = u.setId ? setRuns.get(u.setId) : undefined;
          if (!gateRun) {
            gateRun = { rolloutId: id, key: u.setId ?? u.id, upgraded: 0, unhealthyUpgraded: 0, stoppedUntil: null };
            if (u.setId) setRuns.set(u.setId, gateRun);
          }
          units.set(u.id, {
            rolloutId: id,
            plan: u,
            gateRun,
            region: pr.region,
            phase: pi,
            wave: wi,
            status: 'waiting',
            next: 0,
            inflight: null,
            passDone: false,
            waveSettled: false,
            retryReady: [],
            retryBatches: 0,
            ...unitMemoryFields(),
          });
        }
      });
      regions.set(pr.region, {
        rolloutId: id,
        region: pr.region,
        pair: pr.pair,
        phase: pi,
        wave: 0,
        waveRemaining: -1,
        openUnits,
        unfinished: openUnits,
        advancing: false,
        inflightByZone: new Map(),
        inflight: 0,
        blocked: new Set(),
      });
    }
  });
  return {
    id,
    artifact: req.artifact,
    artifactKey: key,
    toVersion: req.toVersion,
    major: artifactMajor(req.artifact, req.toVersion),
    plan,
    status: 'running',
    reason: null,
    createdAtMs: now,
    endedAtMs: null,
    currentPhase: 0,
    phases: plan.phases.map((_, index) => ({ rolloutId: id, index, status: 'pending', startedAtMs: null, endedAtMs: null, upgraded: 0, unhealthy: 0 })),
    regions,
    units,
    attempts: new Map(),
    open: eligible,
    caller: req.caller ?? 'platform',
    force: req.force ?? false,
  };
}


/** R2: a type now supports automatic upgrade: a rollout for the newest published version of each major. */
export function startForType(ctx: TickContext, settings: RolloutSettings, t: { publisher: string; type: string; versions: readonly PublishedVersion[] }): RolloutState[] {
  const artifact: Artifact = { kind: 'extension', publisher: t.publisher, type: t.type };
  const newestByMajor = new Map<number, PublishedVersion>();
  for (const v of t.versions) if (v.publishedAtMs <= ctx.now) newestByMajor.set(majorOf(v.version), v);
  const started: RolloutState[] = [];
  for (const v of newestByMajor.values()) {
    const r = startAutomatic(ctx, settings, artifact, v.version, v.critical);
    if (r) started.push(r);
  }
  return started;
}
