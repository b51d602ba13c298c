/**
 * A follower's fleet, kept in step with PostgreSQL's fleet tables by applying the rows a commit wrote
 * and the tombstones of the rows it deleted (read-model.ts), decoded as the loader decodes them (the
 * same shared placements and texts). Applied so the maps keep a whole load's order: tombstones first,
 * then rows by `ord` (a new row goes last, as its new `ord` puts it; an instance updated keeps its `ord` and its place).
 */
import type Database from 'better-sqlite3';
import type { HealthSignals } from '../../model/health.js';
import { refreshMachineHealth } from '../../engine/state.js';
import type { AvailabilitySet, Machine, ScaleSet } from '../../model/fleet.js';
import { FleetLoader } from '../sqlite/load.js';
import type { Row } from '../sqlite/load.js';

export interface Tombstone {
  tbl: string;
  k1: string;
  k2: string | null;
}

export interface FleetChanges {
  tombstones: Tombstone[];
  /** Rows of machines, instances (each in `ord` order) and machine_health written after the follower's version. */
  machines: Row[];
  instances: Row[];
  health: Row[];
}

/** Machines taken out and put in by one refresh (a machine removed and added again is in both), for indexes kept beside the fleet. */
export interface MachineChanges {
  added: Machine[];
  removed: Machine[];
}

export class FleetApplier extends FleetLoader {
  /** Applies one refresh's changes; the machines whose health may have changed are refreshed once at the end. */
  apply(ch: FleetChanges): MachineChanges {
    const fleet = this.fleet;
    const touched = new Set<string>();
    const removed: Machine[] = [];
    for (const t of ch.tombstones) {
      if (t.tbl === 'instances') fleet.instances.get(t.k1)?.delete(t.k2!) && touched.add(t.k2!);
      else if (t.tbl === 'machine_health') fleet.health.delete(t.k1) && touched.add(t.k1);
      else {
        const m = this.removeMachine(t.k1);
        if (m) removed.push(m);
      }
    }
    const added: Machine[] = [];
    for (const r of ch.machines) {
      const id = r.id as string;
      const old = this.removeMachine(id);
      if (old) removed.push(old);
      this.machine(r);
      added.push(fleet.machines.get(id)!);
      touched.add(id);
    }
    for (const r of ch.instances) {
      this.instance(r); // an instance written again keeps its place (its row keeps its ord), a new one goes last
      touched.add(r.machine_id as string);
    }
    for (const r of ch.health) {
      fleet.health.set(r.machine_id as string, JSON.parse(r.signals as string) as HealthSignals);
      touched.add(r.machine_id as string);
    }
    // A whole load makes a map only for an artifact that has instances.
    for (const [key, byMachine] of fleet.instances) if (byMachine.size === 0) fleet.instances.delete(key);
    for (const id of touched) refreshMachineHealth(fleet, id);
    return { added, removed };
  }

  /** Regions and sets are few: read whole at every refresh that changed anything. */
  reloadSets(db: Database.Database): void {
    const fleet = this.fleet;
    fleet.regions.clear();
    fleet.scaleSets.clear();
    fleet.availabilitySets.clear();
    for (const r of db.prepare('SELECT * FROM regions').all() as Row[]) {
      fleet.regions.set(r.name as string, { name: r.name as string, pair: (r.pair as string | null) ?? null, zones: JSON.parse(r.zones as string) as string[] });
    }
    for (const r of db.prepare('SELECT body FROM scale_sets').all() as Row[]) { const s = JSON.parse(r.body as string) as ScaleSet; fleet.scaleSets.set(s.id, s); }
    for (const r of db.prepare('SELECT body FROM availability_sets').all() as Row[]) { const s = JSON.parse(r.body as string) as AvailabilitySet; fleet.availabilitySets.set(s.id, s); }
  }

  /** Takes a machine out with what is counted of it (set size, unhealthy); undefined if it was not there. */
  private removeMachine(id: string): Machine | undefined {
    const fleet = this.fleet;
    const m = fleet.machines.get(id);
    if (!m) return undefined;
    fleet.machines.delete(id);
    const setId = m.placement.setId;
    if (setId) {
      const n = (fleet.setSizes.get(setId) ?? 0) - 1;
      if (n > 0) fleet.setSizes.set(setId, n);
      else fleet.setSizes.delete(setId);
    }
    if (fleet.unhealthy.delete(id) && setId) fleet.setUnhealthy.set(setId, (fleet.setUnhealthy.get(setId) ?? 0) - 1);
    return m;
  }
}
