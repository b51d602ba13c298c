/**
 * InGuestPatch schedules at work (issue 16, R75): when a configuration's window opens, every machine
 * assigned to it (directly, or by a dynamic scope evaluated then) installs the configuration's patches
 * with `maximumDuration` = what is left of the window, so a run that cannot finish stops and reports
 * maintenanceWindowExceeded. Nothing is installed outside a window: a window missed while the server
 * was down is not made up. Machines whose patch settings do not let the user's schedule patch them
 * (AutomaticByPlatform with bypassPlatformSafetyChecksOnUserSchedule) are skipped, with the reason.
 */
import type { Machine } from '../../model/fleet.js';
import type { PatchEventBody } from '../../model/events.js';
import type { DynamicScope } from '../../model/patch-scope.js';
import { inDynamicScope } from '../../model/patch-scope.js';
import { planScheduledRun, scheduledRequest, scheduleRunId } from '../../model/patch-runs.js';
import type { MaintenanceWindow } from '../../schedule/window.js';
import { maintenanceWindow, nextWindowStart, windowAt } from '../../schedule/window.js';
import type { ArmContext } from './context.js';
import { keyOf } from './ids.js';
import { effectivePatchSettings } from './patch-settings.js';
import { installFinished, installStarted } from './patch-records.js';
import { parseScheduledPatches } from './patch-requests.js';

export { MIN_RUN_MS } from '../../model/patch-runs.js';
const MARKS_DOC = '/phasewise/patchSchedules';

interface ConfigDoc {
  location: string;
  properties: {
    maintenanceScope: string;
    maintenanceWindow?: { startDateTime: string; expirationDateTime?: string | null; duration: string; timeZone: string; recurEvery: string };
    installPatches?: unknown;
  };
}
interface AssignmentDoc { maintenanceConfigurationId: string; resourceId: string }
export interface DynamicAssignmentDoc { maintenanceConfigurationId: string; scope: DynamicScope }

export class PatchScheduleRunner {
  private readonly windows = new Map<string, { text: string; w: MaintenanceWindow }>();

  constructor(private readonly ctx: ArmContext, private readonly onError: (err: unknown, configId: string) => void = () => {}) {}

  private windowOf(id: string, spec: NonNullable<ConfigDoc['properties']['maintenanceWindow']>): MaintenanceWindow {
    const text = JSON.stringify(spec);
    const cached = this.windows.get(id);
    if (cached?.text === text) return cached.w;
    const w = maintenanceWindow({ ...spec, expirationDateTime: spec.expirationDateTime ?? null });
    this.windows.set(id, { text, w });
    return w;
  }

  private configs(): Array<{ id: string; doc: ConfigDoc; w: MaintenanceWindow }> {
    const out: Array<{ id: string; doc: ConfigDoc; w: MaintenanceWindow }> = [];
    for (const d of this.ctx.docs.ofKind<ConfigDoc>('maintenanceConfiguration')) {
      const spec = d.body.properties.maintenanceWindow;
      if (d.body.properties.maintenanceScope !== 'InGuestPatch' || !spec) continue;
      out.push({ id: d.id, doc: d.body, w: this.windowOf(d.id, spec) });
    }
    return out;
  }

  /** When a schedule's window next opens (for the runtime to wake then). */
  nextAt(now: number): number | null {
    let next: number | null = null;
    for (const c of this.configs()) {
      const s = nextWindowStart(c.w, now);
      if (s !== null && (next === null || s < next)) next = s;
    }
    return next;
  }

  /** The machines a configuration patches now: its assignments and its dynamic scopes. */
  targets(configId: string): Machine[] {
    const key = keyOf(configId);
    const seen = new Map<string, Machine>();
    for (const a of this.ctx.docs.ofKind<AssignmentDoc>('configurationAssignment')) {
      if (keyOf(a.body.maintenanceConfigurationId) !== key) continue;
      const m = this.ctx.index.machine(a.body.resourceId);
      if (m) seen.set(m.id, m);
    }
    const scopes = this.ctx.docs.ofKind<DynamicAssignmentDoc>('dynamicScopeAssignment').filter((d) => keyOf(d.body.maintenanceConfigurationId) === key);
    if (scopes.length > 0) {
      for (const m of this.ctx.engine.state.fleet.machines.values()) {
        if (seen.has(m.id) || (m.kind !== 'vm' && m.kind !== 'arc')) continue;
        const tags = this.ctx.docs.get<{ tags?: Record<string, string> }>(this.ctx.index.armIdOfMachine(m))?.body.tags ?? {};
        if (scopes.some((s) => inDynamicScope(s.body.scope, m, tags))) seen.set(m.id, m);
      }
    }
    return [...seen.values()];
  }

  /** Every machine an InGuestPatch schedule patches now (assigned directly or by dynamic scope): the platform leaves them alone (R76). */
  scheduledMachines(): Set<string> {
    const out = new Set<string>();
    for (const c of this.configs()) for (const m of this.targets(c.id)) out.add(m.id);
    return out;
  }

  /** Starts the runs of the windows open now that have not run yet. */
  step(now: number): void {
    const marks = this.ctx.docs.get<Record<string, number>>(MARKS_DOC)?.body ?? {};
    let changed = false;
    for (const c of this.configs()) {
      const inst = windowAt(c.w, now);
      const key = keyOf(c.id);
      if (!inst || marks[key] === inst.start) continue;
      marks[key] = inst.start;
      changed = true;
      try {
        this.run(c.id, c.doc, inst.start, inst.end, now);
      } catch (err) {
        // One bad schedule (a document stored before its installPatches were checked) must not stop the others.
        this.onError(err, c.id);
      }
    }
    if (changed) this.ctx.docs.put(MARKS_DOC, '/phasewise', 'patchSchedule', marks);
  }

  private run(configId: string, doc: ConfigDoc, start: number, end: number, now: number): void {
    const ctx = this.ctx;
    const runId = scheduleRunId(configId, start);
    const configuration = keyOf(configId);
    const spec = parseScheduledPatches(doc.properties.installPatches);
    const settingsOf = (m: Machine) => effectivePatchSettings(ctx.docs.get<{ properties?: { osProfile?: unknown } }>(ctx.index.armIdOfMachine(m))?.body.properties?.osProfile,
      m.os, m.kind === 'arc' ? 'arc' : 'vm');
    const plan = planScheduledRun(this.targets(configId), spec, settingsOf, { configuration, runId, end, now, canPatch: Boolean(ctx.patches) });
    const skipped = plan.skipped;
    const go = plan.go.map(({ m, request }) => ({ m, armId: ctx.index.armIdOfMachine(m), request }));
    // The starts and reboot notices carry the instant they are recorded; the installations get what is left then.
    const started = new Map<string, ReturnType<typeof installStarted>>();
    ctx.engine.recordPatchEvents((t) => [...skipped, ...go.flatMap(({ m }) => {
      const st = installStarted(m, configuration, runId, t, { start, end }, spec.rebootSetting, `the window of ${configId} is open`);
      started.set(m.id, st);
      return st.events;
    })]);
    for (const { m, armId, request } of go) {
      const st = started.get(m.id)!;
      const req = scheduledRequest(request, spec, runId, m, st);
      const finish = (events: PatchEventBody[]) => {
        try {
          if (ctx.index.machine(armId)) ctx.engine.recordPatchEvents(events);
        } catch {
          // A halted engine records nothing more; the run's start stays in the log.
        }
      };
      ctx.patches!.installPatches({ machineId: m.id, os: m.os }, req).then(
        (r) => finish(installFinished(ctx, m, armId, configuration, runId, r, st.notBeforeMs, new Date(ctx.runtime.clock.now()).toISOString())),
        (e: unknown) => finish([{ type: 'patch.run.skipped', machineId: m.id, placement: m.placement, configuration, runId,
          reason: `the machine could not be patched: ${e instanceof Error ? e.message : String(e)}` }]),
      );
    }
  }
}
