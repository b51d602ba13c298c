/**
 * Checks an event log, on its own, against the maintenance windows (R70, R72), given which windows
 * confine each machine (static assignments: configurations that do not change during the log).
 *
 * - every `instance.upgrade.started` of an automatic (non-manual) rollout on a machine with windows lies
 *   inside one of them, unless its batch was announced by `window.bypassed` (R72)
 * - every batch of such a rollout that started inside the windows completes (`batch.completed`) no later
 *   than the end of the window instance it started in, for every machine of the batch (R70: a batch
 *   starts only if it can finish, health wait included, before the window closes)
 * - every `window.bypassed` belongs to a critical rollout (R72)
 *
 * A machine with several windows (a union) may be upgraded in any of them; its deadline is the latest end
 * among the instances that hold the batch's start.
 */
import type { EngineEvent } from '../model/events.js';
import type { MaintenanceWindow } from '../schedule/window.js';
import { windowAt } from '../schedule/window.js';

export interface WindowCheckerOptions {
  /** The windows confining a machine's automatic upgrades of the checked artifact(s); empty when none. */
  unionOf(machineId: string): readonly MaintenanceWindow[];
}

interface BatchTrack {
  /** Earliest end, over the batch's machines, of the window instance the batch started in. */
  deadline: number;
  machine: string;
}

/** The latest end among the instances of `union` holding `t`; null when none is open at `t`. */
export function openUntil(union: readonly MaintenanceWindow[], t: number): number | null {
  let end: number | null = null;
  for (const w of union) {
    const inst = windowAt(w, t);
    if (inst && (end === null || inst.end > end)) end = inst.end;
  }
  return end;
}

export class WindowChecker {
  readonly violations: string[] = [];
  /** Rollout id → profile name, from `rollout.created`. */
  readonly profiles = new Map<string, string>();
  /** `rolloutId|batchId` of the batches announced by `window.bypassed`. */
  readonly bypassed = new Set<string>();
  private readonly batches = new Map<string, BatchTrack>();
  /** Upgrades checked against a window (machines with windows, automatic rollouts, not bypassed). */
  checkedStarts = 0;

  constructor(private readonly opts: WindowCheckerOptions) {}

  readonly onEvents = (events: readonly EngineEvent[]): void => {
    for (const e of events) this.check(e);
  };

  private fail(e: EngineEvent, message: string): void {
    if (this.violations.length < 100) this.violations.push(`seq ${e.seq} ${e.time} ${e.type}: ${message}`);
  }

  private confined(rolloutId: string, batchId: string): boolean {
    const profile = this.profiles.get(rolloutId);
    return profile !== undefined && profile !== 'manual' && !this.bypassed.has(`${rolloutId}|${batchId}`);
  }

  check(e: EngineEvent): void {
    switch (e.type) {
      case 'rollout.created':
        this.profiles.set(e.rolloutId, e.profile);
        return;
      case 'window.bypassed': {
        const profile = this.profiles.get(e.rolloutId);
        if (profile !== 'critical') this.fail(e, `batch ${e.batchId} bypassed the maintenance windows in a ${profile ?? 'unknown'} rollout; only critical releases may (R72)`);
        this.bypassed.add(`${e.rolloutId}|${e.batchId}`);
        return;
      }
      case 'batch.started': {
        if (!this.confined(e.rolloutId, e.batchId)) return;
        const t = Date.parse(e.time);
        let track: BatchTrack | null = null;
        for (const id of e.instances) {
          const union = this.opts.unionOf(id);
          if (union.length === 0) continue;
          const end = openUntil(union, t);
          if (end === null) {
            this.fail(e, `batch ${e.batchId} started while the maintenance windows of ${id} were closed (R70)`);
            continue;
          }
          if (track === null || end < track.deadline) track = { deadline: end, machine: id };
        }
        if (track) this.batches.set(`${e.rolloutId}|${e.batchId}`, track);
        return;
      }
      case 'instance.upgrade.started': {
        if (!this.confined(e.rolloutId, e.batchId)) return;
        const union = this.opts.unionOf(e.machineId);
        if (union.length === 0) return;
        this.checkedStarts++;
        if (openUntil(union, Date.parse(e.time)) === null) this.fail(e, `upgrade of ${e.machineId} (batch ${e.batchId}) started outside its maintenance windows (R70)`);
        return;
      }
      case 'batch.completed': {
        const key = `${e.rolloutId}|${e.batchId}`;
        const track = this.batches.get(key);
        if (!track) return;
        this.batches.delete(key);
        if (Date.parse(e.time) > track.deadline) {
          this.fail(e, `batch ${e.batchId} overran the maintenance window of ${track.machine}, which closed at ${new Date(track.deadline).toISOString()} (R70)`);
        }
        return;
      }
      default:
        return;
    }
  }

  /** The violations found so far (a batch still running when the log ends is not one). */
  finish(): string[] {
    return this.violations;
  }
}
