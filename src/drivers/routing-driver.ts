/**
 * Dispatches per machine: machines bound to an agent go to the agent driver, all others to the
 * simulated fleet, so `serve` with the demo fleet keeps working and a real agent can join it.
 */
import type { Driver, DriverAction, Observation, PatchDriver } from '../engine/driver.js';

/** A driver whose observations the runtime collects when they are due. */
export interface DeliveringDriver extends Driver {
  nextAt(): number | null;
  deliverDue(t: number, sink: (o: Observation) => void): void;
}

export class RoutingDriver implements DeliveringDriver {
  constructor(
    private readonly routes: ReadonlyArray<{ driver: DeliveringDriver; handles: (machineId: string) => boolean }>,
    private readonly fallback: DeliveringDriver,
  ) {}

  private pick(machineId: string): DeliveringDriver {
    for (const r of this.routes) if (r.handles(machineId)) return r.driver;
    return this.fallback;
  }

  /** Patch operations go where the machine's other actions go; a driver without patching refuses. */
  readonly patches: PatchDriver = {
    assessPatches: (m) => this.patcherOf(m.machineId).assessPatches(m),
    installPatches: (m, req) => this.patcherOf(m.machineId).installPatches(m, req),
  };

  private patcherOf(machineId: string): PatchDriver {
    const p = this.pick(machineId).patches;
    if (!p) throw new Error(`machine ${machineId} is driven by a driver that cannot patch guests yet`);
    return p;
  }

  send(action: DriverAction): void {
    this.pick(action.machineId).send(action);
  }

  observe(machineIds: readonly string[]): void {
    const split = new Map<DeliveringDriver, string[]>();
    for (const id of machineIds) {
      const d = this.pick(id);
      let ids = split.get(d);
      if (!ids) split.set(d, (ids = []));
      ids.push(id);
    }
    for (const [d, ids] of split) d.observe?.(ids);
  }

  nextAt(): number | null {
    let next: number | null = null;
    for (const d of this.all()) {
      const t = d.nextAt();
      if (t !== null && (next === null || t < next)) next = t;
    }
    return next;
  }

  deliverDue(t: number, sink: (o: Observation) => void): void {
    for (const d of this.all()) d.deliverDue(t, sink);
  }

  private all(): DeliveringDriver[] {
    return [...this.routes.map((r) => r.driver), this.fallback];
  }
}
