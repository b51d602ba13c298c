/**
 * Holding and resuming a release fleet-wide, and waking the units its gate parked
 * (`release-gate.ts`): when a batch of the release completes, when it is resumed.
 */
import type { Artifact } from '../../model/artifact.js';
import type { ReleaseHoldKind, ReleaseState, RolloutState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { emit } from '../core/context.js';
import { FleetError } from '../core/errors.js';
import { holdRelease, judgedByRelease, releaseOf, releaseOfRollout } from '../attempts/release-evidence.js';
import { tryStartBatch } from './batches.js';
import { fanOutBudget } from './release-gate.js';

/** A batch of the release completed: one fewer in flight; the caller wakes its waiters once the batch is settled. */
export function releaseBatchEnded(ctx: TickContext, r: RolloutState, machines: number): ReleaseState | null {
  if (!judgedByRelease(r)) return null;
  const rel = releaseOfRollout(ctx.state, r);
  rel.inflight -= machines;
  return rel;
}

/** Wakes parked units, oldest first, while the hold and the fan-out allow. */
export function wakeWaiters(ctx: TickContext, rel: ReleaseState): void {
  if (rel.hold || rel.waiters.size === 0) return;
  // A copy: a unit whose batch does not fit parks itself again at the end of the map.
  for (const [unitId, rolloutId] of [...rel.waiters]) {
    if (rel.hold || rel.inflight >= fanOutBudget(rel)) return;
    rel.waiters.delete(unitId);
    const r = ctx.state.rollouts.get(rolloutId);
    const u = r?.units.get(unitId);
    if (!r || !u || u.status !== 'blocked' || r.status !== 'running') continue;
    u.status = 'ready';
    tryStartBatch(ctx, r, u);
  }
}

/** Known releases: those with evidence or a hold, or a version in the catalog. */
function knownRelease(ctx: TickContext, artifact: Artifact, artifactKey: string, toVersion: string): ReleaseState | null {
  const rel = ctx.state.releases.get(`${artifactKey}@${toVersion}`);
  if (rel) return rel;
  for (const r of ctx.state.rollouts.values()) if (r.artifactKey === artifactKey && r.toVersion === toVersion) return releaseOfRollout(ctx.state, r);
  const type = artifact.kind === 'extension' ? ctx.state.catalog.getType(artifact.publisher, artifact.type) : undefined;
  if (type?.versions.some((v) => v.version === toVersion)) {
    return releaseOf(ctx.state, artifact, artifactKey, toVersion);
  }
  return null;
}

/** An operator holds a release (`operator`), or a later control gives its own kind. */
export function holdByCaller(ctx: TickContext, artifact: Artifact, artifactKey: string, toVersion: string, kind: ReleaseHoldKind, reason: string, caller: string): ReleaseState {
  const rel = knownRelease(ctx, artifact, artifactKey, toVersion);
  if (!rel) throw new FleetError('NotFound', `no release ${artifactKey} ${toVersion}`, 'version');
  if (rel.hold) throw new FleetError('Conflict', `release ${artifactKey} ${toVersion} is already held: ${rel.hold.reason}`, 'version');
  holdRelease(ctx, rel, kind, reason, caller, null);
  return rel;
}

/** An operator resumes a held release: the failures so far count as acknowledged (the statistic starts again). */
export function resumeRelease(ctx: TickContext, artifactKey: string, toVersion: string, caller: string, why?: string): ReleaseState {
  const rel = ctx.state.releases.get(`${artifactKey}@${toVersion}`);
  if (!rel) throw new FleetError('NotFound', `no release ${artifactKey} ${toVersion}`, 'version');
  if (!rel.hold) throw new FleetError('Conflict', `release ${artifactKey} ${toVersion} is not held`, 'version');
  if (rel.hold.kind === 'withdrawn') throw new FleetError('Conflict', `release ${artifactKey} ${toVersion} was withdrawn; a withdrawn version stays withdrawn`, 'version');
  const was = rel.hold;
  rel.hold = null;
  rel.llr = 0;
  rel.belowFloorSinceMs = null;
  if (ctx.changes) ctx.changes.releases = true;
  emit(ctx, {
    type: 'release.resumed', artifact: rel.artifact, artifactKey: rel.artifactKey, toVersion: rel.toVersion, caller,
    reason: `resumed by ${caller}${why ? `: ${why}` : ''}; it was held: ${was.reason}`,
  });
  wakeWaiters(ctx, rel);
  return rel;
}
