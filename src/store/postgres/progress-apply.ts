/**
 * A follower's rollouts and timers, kept across refreshes (read-model.ts): after a whole load, each
 * refresh applies only the progress rows written since its version (their `cv`, schema migration 8)
 * and the tombstones of the attempts and timers deleted, with the loader's own decoders
 * (`../sqlite/load.ts`). A rollout created since the last refresh is built from its row and plan like a
 * load's, and all its progress rows are among the changes (every one was written after it). The result
 * is what a whole load gives, in a whole load's orders: rollouts by (created_at, id), each rollout's
 * attempts by machine id (SQLite's key order), timers by (at, id).
 */
import type { EngineState, FleetState, GateRun, RolloutState, Timer, UnitState } from '../../engine/state.js';
import { getInstance } from '../../engine/state.js';
import type { Plan } from '../../planner/types.js';
import { compareBinary } from '../../util/binary-order.js';
import {
  applyGateRunRow, applyPhaseRow, applyRegionRow, applyRolloutRow, applyUnitRow, attemptOf, gateRunsOf, rolloutOf, timerOf,
} from '../sqlite/load.js';
import type { Row } from '../sqlite/load.js';
import type { Tombstone } from './fleet-apply.js';

export const PROGRESS_TABLES = ['rollouts', 'rollout_phases', 'rollout_regions', 'rollout_units', 'gate_runs', 'attempts', 'timers'] as const;
export type ProgressTable = (typeof PROGRESS_TABLES)[number];

export interface ProgressChanges {
  /** Tombstones of the progress tables, in `cv` order. */
  tombstones: Tombstone[];
  /** Each table's rows written after the follower's version. */
  rows: Record<ProgressTable, Row[]>;
}

/** Instances whose objects a refresh replaced or removed, and machines put in or taken out: the attempts on them are looked up again. */
export interface TouchedFleet {
  instances: ReadonlyArray<readonly [artifactKey: string, machineId: string]>;
  machines: readonly string[];
}

interface Kept {
  r: RolloutState;
  /** Its gate runs by key, found on the first gate run row applied. */
  runs: Map<string, GateRun> | null;
  /** Its units in flight or blocked: the state's derived indexes come from these alone (load.ts, `loadStateTail`). */
  busy: Set<UnitState>;
  /** `busy` in the rollout's unit order, made again when it changed. */
  busyOrder: UnitState[] | null;
  /** Each unit's place in the rollout's order, found on first need. */
  place: Map<UnitState, number> | null;
}

const isBusy = (u: UnitState) => u.inflight !== null || u.status === 'blocked';
const keep = (r: RolloutState, busy: Set<UnitState>): Kept => ({ r, runs: null, busy, busyOrder: null, place: null });

const byLoadOrder = (a: RolloutState, b: RolloutState) => a.createdAtMs - b.createdAtMs || compareBinary(a.id, b.id);
const byTimerOrder = (a: Timer, b: Timer) => a.at - b.at || a.id - b.id;

export class ProgressModel {
  private rollouts = new Map<string, Kept>();
  /** The kept rollouts by artifact key: the attempts on an instance are found through its artifact's rollouts. */
  private byArtifact: Map<string, Kept[]> | null = null;
  private timers = new Map<number, Timer>();
  /** The timers in a load's push order, made again only when they changed. */
  private timerOrder: Timer[] = [];
  private timersChanged = false;

  /** After a whole load: its rollouts and timers are the ones kept from now on. */
  adopt(state: EngineState): void {
    this.rollouts = new Map([...state.rollouts].map(([id, r]) => [id, keep(r, new Set([...r.units.values()].filter(isBusy)))]));
    this.byArtifact = null;
    this.timerOrder = state.timers.ordered();
    this.timers = new Map(this.timerOrder.map((t) => [t.id, t]));
    this.timersChanged = false;
  }

  /**
   * Why these changes cannot be applied here (the caller loads whole instead), or null. `hasPlan` knows the
   * plans held and those read in this refresh; `freshPlans` are the ones read in this refresh.
   */
  unappliable(ch: ProgressChanges, hasPlan: (id: string) => boolean, freshPlans: readonly string[]): string | null {
    for (const t of ch.tombstones) {
      // A deleted phase, region, unit or gate run row would put that part back to the plan's defaults, which
      // only a rollout built anew has (the leader never deletes them): a whole load is the safe answer.
      if (t.tbl !== 'rollouts' && t.tbl !== 'attempts' && t.tbl !== 'timers') return `a ${t.tbl} row was deleted`;
    }
    const written = new Set(ch.rows.rollouts.map((r) => r.id as string));
    // A rollout and its plan are written in one commit; should one come without the other, the changes cannot say which rollout to build.
    for (const id of written) if (!this.rollouts.has(id) && !hasPlan(id)) return `rollout ${id} has no plan`;
    for (const id of freshPlans) if (!this.rollouts.has(id) && !written.has(id)) return `the plan of rollout ${id} came without its row`;
    return null;
  }

  /** Applies the changes (checked by `unappliable`) after the fleet's own: attempts take the fleet's instance objects as they are now. */
  apply(fleet: FleetState, ch: ProgressChanges, plans: ReadonlyMap<string, Plan>, touched: TouchedFleet): void {
    let reordered = false;
    for (const t of ch.tombstones) {
      if (t.tbl === 'rollouts') reordered = this.rollouts.delete(t.k1) || reordered;
      else if (t.tbl === 'attempts') this.rollouts.get(t.k1)?.r.attempts.delete(t.k2!);
      else if (this.timers.delete(Number(t.k1))) this.timersChanged = true;
    }
    for (const row of ch.rows.rollouts) {
      const kept = this.rollouts.get(row.id as string);
      if (kept) applyRolloutRow(kept.r, row);
      else {
        this.rollouts.set(row.id as string, keep(rolloutOf(row, plans.get(row.id as string)!), new Set())); // a new rollout's units wait
        reordered = true;
      }
    }
    const rolloutOfRow = (row: Row) => this.rollouts.get(row.rollout_id as string)?.r; // none: a rollout a load leaves out too (no plan)
    for (const p of ch.rows.rollout_phases) { const r = rolloutOfRow(p); if (r) applyPhaseRow(r, p); }
    for (const g of ch.rows.rollout_regions) { const r = rolloutOfRow(g); if (r) applyRegionRow(r, g); }
    for (const row of ch.rows.rollout_units) {
      const k = this.rollouts.get(row.rollout_id as string);
      if (!k) continue;
      applyUnitRow(k.r, row);
      const u = k.r.units.get(row.unit_id as string)!;
      const was = k.busy.has(u);
      if (isBusy(u)) k.busy.add(u);
      else k.busy.delete(u);
      if (was !== k.busy.has(u)) k.busyOrder = null;
    }
    for (const g of ch.rows.gate_runs) {
      const kept = this.rollouts.get(g.rollout_id as string);
      if (kept) applyGateRunRow((kept.runs ??= gateRunsOf(kept.r)), g);
    }
    this.applyAttempts(fleet, ch.rows.attempts);
    for (const t of ch.rows.timers) {
      this.timers.set(Number(t.id), timerOf(t));
      this.timersChanged = true;
    }
    if (reordered) {
      this.rollouts = new Map([...this.rollouts].sort((a, b) => byLoadOrder(a[1].r, b[1].r)));
      this.byArtifact = null;
    }
    this.refreshAttemptInstances(fleet, touched);
  }

  /** A kept rollout's units in flight or blocked, in its unit order (for `loadStateTail`). */
  readonly busyUnits = (r: RolloutState): UnitState[] => {
    const k = this.rollouts.get(r.id)!;
    if (!k.busyOrder) {
      if (!k.place) k.place = new Map([...k.r.units.values()].map((u, i) => [u, i]));
      const place = k.place;
      k.busyOrder = [...k.busy].sort((a, b) => place.get(a)! - place.get(b)!);
    }
    return k.busyOrder;
  };

  /** Puts the kept rollouts and timers into a new state (before `loadStateTail` derives its indexes from them). */
  fill(state: EngineState): void {
    for (const [id, k] of this.rollouts) state.rollouts.set(id, k.r);
    if (this.timersChanged) {
      this.timerOrder = [...this.timers.values()].sort(byTimerOrder);
      this.timersChanged = false;
    }
    for (const t of this.timerOrder) state.timers.push(t);
  }

  /** Attempts written again keep their place; new ones go where SQLite's key order puts them. */
  private applyAttempts(fleet: FleetState, rows: readonly Row[]): void {
    const added = new Map<RolloutState, Array<[string, ReturnType<typeof attemptOf>]>>();
    for (const a of rows) {
      const r = this.rollouts.get(a.rollout_id as string)?.r;
      if (!r) continue;
      const machineId = a.machine_id as string;
      const attempt = attemptOf(fleet, r, a);
      if (r.attempts.has(machineId)) r.attempts.set(machineId, attempt);
      else {
        let list = added.get(r);
        if (!list) added.set(r, (list = []));
        list.push([machineId, attempt]);
      }
    }
    for (const [r, list] of added) {
      list.sort((x, y) => compareBinary(x[0], y[0]));
      let last: string | undefined;
      for (const k of r.attempts.keys()) last = k; // a Map has no cheaper way to its last key
      if (last === undefined || compareBinary(last, list[0]![0]) < 0) {
        for (const [k, a] of list) r.attempts.set(k, a); // all after the ones held: appended
        continue;
      }
      const merged: Array<[string, ReturnType<typeof attemptOf>]> = [];
      let i = 0;
      for (const e of r.attempts) {
        while (i < list.length && compareBinary(list[i]![0], e[0]) < 0) merged.push(list[i++]!);
        merged.push(e);
      }
      while (i < list.length) merged.push(list[i++]!);
      r.attempts.clear(); // the same Map object: the state's other holders see the new order
      for (const [k, a] of merged) r.attempts.set(k, a);
    }
  }

  /** An attempt holds its instance's object: the fleet replaced the objects of the instances it changed, and a load would find the new ones. */
  private refreshAttemptInstances(fleet: FleetState, touched: TouchedFleet): void {
    if (touched.instances.length === 0 && touched.machines.length === 0) return;
    if (!this.byArtifact) {
      this.byArtifact = new Map();
      for (const k of this.rollouts.values()) {
        let list = this.byArtifact.get(k.r.artifactKey);
        if (!list) this.byArtifact.set(k.r.artifactKey, (list = []));
        list.push(k);
      }
    }
    const again = (r: RolloutState, machineId: string) => {
      const a = r.attempts.get(machineId);
      if (!a) return;
      a.inst = getInstance(fleet, r.artifactKey, machineId)!; // as a load: undefined once the instance is gone
      a.placement = undefined; // a cache of the machine's placement: found again on first use
    };
    for (const [artifactKey, machineId] of touched.instances) for (const k of this.byArtifact.get(artifactKey) ?? []) again(k.r, machineId);
    for (const machineId of touched.machines) for (const k of this.rollouts.values()) again(k.r, machineId);
  }
}
