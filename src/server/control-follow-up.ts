/**
 * What the operators' controls leave for later, carried out as the engine's events come in:
 * - a version withdrawn with rollback: machines whose attempt was in flight at the withdrawal land on
 *   it afterwards, and machines on it merely planned in a rollout to another version may be left on it
 *   (that rollout cancelled, their attempt skipped or rolled back); as each attempt of a rollout of the
 *   artifact settles, and as such a rollout ends, the machines on it are rolled back too;
 * - a fleet-wide stop: a rollout created during the stop (a new release) is held at once.
 * Commands run on the next turn of the event loop, never inside the engine's own delivery.
 */
import type { FleetStop } from '../api/arm/fleet-stop.js';
import type { Engine, FollowedMachines } from '../engine/engine.js';
import type { RolloutState } from '../engine/state.js';
import { FLEET_STOP } from '../engine/rollouts/operator-controls.js';
import type { Artifact } from '../model/artifact.js';
import { artifactKey } from '../model/artifact.js';
import type { EngineEvent } from '../model/events.js';

export interface Withdrawal {
  artifact: Artifact;
  version: string;
  caller: string;
  /** No machine is left on the version and none is on its way to it: nothing more to follow. */
  done?: boolean;
}

/** Persisted withdrawals with rollback (the document store), so a restart keeps following them. */
export interface WithdrawalStore {
  list(): Withdrawal[];
  put(w: Withdrawal): void;
}

const SETTLED = new Set<EngineEvent['type']>([
  'instance.upgrade.succeeded', 'instance.upgrade.failed', 'instance.rollback.succeeded', 'instance.rollback.failed', 'instance.skipped',
  'rollout.completed', 'rollout.cancelled',
]);

export class ControlFollowUp {
  private readonly withdrawals = new Map<string, Withdrawal>();
  /**
   * Per withdrawal, the machines it still follows (withdraw.ts, FollowedMachines): the first call after a
   * start or a withdrawal looks at the whole fleet once, the later ones (one per batch that settles) at
   * these only. Not stored: a restart finds them again. It was a pass over the fleet per batch.
   */
  private readonly followed = new Map<string, FollowedMachines>();
  private pending = false;
  private stopCheck = false;

  /** `fleetStop` reads the stop operators gave (src/api/arm/fleet-stop.ts), null when none is in effect. */
  constructor(
    private readonly engine: Engine,
    private readonly store: WithdrawalStore,
    private readonly onError: (err: unknown) => void,
    private readonly fleetStop: () => FleetStop | null = () => null,
  ) {
    for (const w of store.list()) if (!w.done) this.withdrawals.set(`${artifactKey(w.artifact)}@${w.version}`, w);
    engine.onEvents((events) => this.onEvents(events));
    if (this.withdrawals.size > 0) this.later(() => this.rollBackAll());
    // A rollout created just before a restart, during a stop, is held at the start.
    if (this.fleetStop()) this.later(() => this.holdNewRollouts());
  }

  /** A withdrawal with rollback to follow until no machine is left on the version. */
  follow(w: Withdrawal): void {
    const key = `${artifactKey(w.artifact)}@${w.version}`;
    this.withdrawals.set(key, w);
    this.followed.delete(key);
    this.store.put(w);
  }

  private onEvents(events: readonly EngineEvent[]): void {
    for (const e of events) {
      if (e.type === 'rollout.created') this.stopCheck = true;
      if (this.withdrawals.size > 0 && SETTLED.has(e.type) && 'rolloutId' in e && this.concerns(e.rolloutId)) this.pending = true;
    }
    if (this.pending) this.later(() => this.rollBackAll());
    if (this.stopCheck) this.later(() => this.holdNewRollouts());
  }

  /**
   * Whether the rollout is one of a followed withdrawal's artifact: to the version (its attempts may land
   * machines on it) or to another one that planned machines on it (it may leave them there).
   */
  private concerns(rolloutId: string): boolean {
    const r = this.engine.state.rollouts.get(rolloutId);
    if (r === undefined) return false;
    for (const w of this.withdrawals.values()) if (artifactKey(w.artifact) === r.artifactKey) return true;
    return false;
  }

  private later(fn: () => void): void {
    setImmediate(() => {
      try {
        fn();
      } catch (err) {
        this.onError(err);
      }
    });
  }

  private rollBackAll(): void {
    if (!this.pending && this.withdrawals.size === 0) return;
    this.pending = false;
    if (this.engine.haltedBecause) return;
    for (const [key, w] of [...this.withdrawals]) {
      let follow = this.followed.get(key);
      if (!follow) this.followed.set(key, (follow = { machines: null }));
      const result = this.engine.rollBackWithdrawn(w.artifact, w.version, w.caller, follow);
      // `inFlight`: machines whose attempt may still end on the version; `planned`: machines on it a rollout to
      // another version has yet to take (withdraw.ts). Either may be left on it: asked for again later.
      if (result.inFlight > 0 || result.planned > 0 || result.rollouts.length > 0) continue;
      this.withdrawals.delete(key);
      this.followed.delete(key);
      this.store.put({ ...w, done: true });
    }
  }

  /** During a fleet-wide stop, a release that starts a rollout is held like the others. */
  private holdNewRollouts(): void {
    this.stopCheck = false;
    if (this.engine.haltedBecause) return;
    const recorded = this.fleetStop();
    if (recorded) {
      // Only rollouts that started during the stop: one the operator resumed on its own since stays resumed.
      const fresh = (r: RolloutState) => r.status === 'running' && r.createdAtMs >= recorded.sinceMs && !this.engine.state.releases.get(`${r.artifactKey}@${r.toVersion}`)?.hold;
      if ([...this.engine.state.rollouts.values()].some(fresh)) this.engine.pauseAllRollouts(recorded.reason, recorded.caller, true, recorded.sinceMs);
      return;
    }
    // A stop a build before the record gave is known by its holds only.
    const stop = [...this.engine.state.releases.values()].find((r) => r.hold?.kind === 'operator' && r.hold.reason.startsWith(FLEET_STOP));
    if (!stop?.hold) return;
    const unheld = [...this.engine.state.rollouts.values()].some((r) => r.status === 'running' && !this.engine.state.releases.get(`${r.artifactKey}@${r.toVersion}`)?.hold);
    if (!unheld) return;
    const reason = stop.hold.reason.slice(stop.hold.reason.indexOf(': ') + 2);
    this.engine.pauseAllRollouts(reason, stop.hold.caller, true);
  }
}
