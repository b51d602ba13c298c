/**
 * InGuestPatch schedules in a simulation (issue 16, R75): when a schedule's window opens, its machines
 * (assigned by id, or matching a dynamic scope then) install its patches through the simulated
 * PatchDriver, with the decisions and events `serve` makes (src/model/patch-runs.ts), recorded by
 * `engine.recordPatchEvents`. The window starts already run are marks of the engine's state, so a
 * restart neither skips nor repeats a run.
 */
import type { Engine } from '../engine/engine.js';
import type { SimPatches } from '../drivers/sim/sim-patches.js';
import type { Machine } from '../model/fleet.js';
import type { ScheduledPatches } from '../model/patch-runs.js';
import { installFinishedEvents, installStarted, planScheduledRun, scheduledRequest, scheduleRunId } from '../model/patch-runs.js';
import type { MaintenanceWindow } from '../schedule/window.js';
import { nextWindowStart, windowAt } from '../schedule/window.js';
import type { MachinePatchSettings } from './fleet-builder.js';

/** A dynamic scope of a scenario schedule: empty lists match everything. VMs and Arc machines only. */
export interface ScenarioPatchScope { subscriptions: string[]; resourceGroups: string[]; locations: string[]; osTypes: string[] }

export interface ScenarioPatchSchedule {
  /** The configuration's name: the `configuration` of its events. */
  id: string;
  window: MaintenanceWindow;
  spec: ScheduledPatches;
  machines: string[];
  scopes: ScenarioPatchScope[];
}

const lower = (xs: readonly string[]) => xs.map((x) => x.toLowerCase());

export function inScenarioScope(s: ScenarioPatchScope, m: Machine): boolean {
  if (m.kind !== 'vm' && m.kind !== 'arc') return false;
  const has = (list: string[], v: string) => list.length === 0 || lower(list).includes(v.toLowerCase());
  return has(s.subscriptions, m.placement.subscription) && has(s.resourceGroups, m.resourceGroup) && has(s.locations, m.placement.region) && has(s.osTypes, m.os);
}

const markOf = (id: string) => `patchSchedule:${id}`;

export class SimPatchSchedules {
  constructor(private readonly schedules: readonly ScenarioPatchSchedule[], private readonly settings: ReadonlyMap<string, MachinePatchSettings>) {}

  get size(): number {
    return this.schedules.length;
  }

  /** When something is due: now for an open window not run yet, else the next window's start. */
  nextAt(engine: Engine, now: number): number | null {
    let next: number | null = null;
    for (const s of this.schedules) {
      const open = windowAt(s.window, now);
      const t = open && engine.state.marks[markOf(s.id)] !== open.start ? now : nextWindowStart(s.window, now + 1);
      if (t !== null && (next === null || t < next)) next = t;
    }
    return next;
  }

  /** The machines a schedule patches now. */
  targets(s: ScenarioPatchSchedule, engine: Engine): Machine[] {
    const fleet = engine.state.fleet.machines;
    const out = new Map<string, Machine>();
    for (const id of s.machines) {
      const m = fleet.get(id);
      if (m) out.set(id, m);
    }
    if (s.scopes.length > 0) for (const m of fleet.values()) if (!out.has(m.id) && s.scopes.some((sc) => inScenarioScope(sc, m))) out.set(m.id, m);
    return [...out.values()];
  }

  /** Runs the windows open at `now` that have not run yet. */
  step(engine: Engine, patches: SimPatches, now: number): void {
    for (const s of this.schedules) {
      const inst = windowAt(s.window, now);
      if (!inst || engine.state.marks[markOf(s.id)] === inst.start) continue;
      engine.state.marks[markOf(s.id)] = inst.start;
      this.run(s, engine, patches, inst.start, inst.end, now);
    }
  }

  private run(s: ScenarioPatchSchedule, engine: Engine, patches: SimPatches, start: number, end: number, now: number): void {
    const runId = scheduleRunId(s.id, start);
    const settingsOf = (m: Machine) => {
      const p = this.settings.get(m.id);
      return { patchMode: p?.patchMode ?? (m.os === 'windows' ? 'AutomaticByOS' : 'ImageDefault'), bypassPlatformSafetyChecksOnUserSchedule: p?.bypassPlatformSafetyChecksOnUserSchedule === true };
    };
    const plan = planScheduledRun(this.targets(s, engine), s.spec, settingsOf, { configuration: s.id, runId, end, now, canPatch: true });
    const started = new Map<string, ReturnType<typeof installStarted>>();
    engine.recordPatchEvents((t) => [...plan.skipped, ...plan.go.flatMap(({ m }) => {
      const st = installStarted(m, s.id, runId, t, { start, end }, s.spec.rebootSetting, `the window of ${s.id} is open`);
      started.set(m.id, st);
      return st.events;
    })]);
    // The simulated machines answer at once (as they do in serve); the duration decides what fits.
    for (const { m, request } of plan.go) {
      const st = started.get(m.id)!;
      const r = patches.install({ machineId: m.id, os: m.os }, scheduledRequest(request, s.spec, runId, m, st)).result;
      engine.recordPatchEvents(installFinishedEvents(m, s.id, runId, r, st.notBeforeMs));
    }
  }
}
