/**
 * `maintenance` entries of scope InGuestPatch in a scenario (issue 16, R75): the configuration's window
 * and `installPatches` (checked as the API checks them), its assignments to VMs and Arc machines by id
 * or by a dynamic scope. The machines a schedule covers leave platform-orchestrated patching (R76), as in
 * Azure. Problems are scenario issues naming the field.
 */
import { checkScheduledPatches } from '../api/arm/patch-requests.js';
import type { PatchProblem } from '../api/arm/patch-requests.js';
import type { FleetState } from '../engine/state.js';
import type { ScheduledPatches } from '../model/patch-runs.js';
import type { MaintenanceWindow } from '../schedule/window.js';
import type { ScenarioPatchSchedule } from './patch-schedules.js';
import { inScenarioScope } from './patch-schedules.js';
import type { MaintenanceAssignmentInput } from './scenario-schema.js';

interface Issue { path: string; message: string }

/** The `installPatches` of a configuration at `path`; null (with every problem as an issue, as the rest of a scenario's are) when the API would refuse it. */
export function compileInstallPatches(raw: unknown, path: string, issues: Issue[]): ScheduledPatches | null {
  const problems: PatchProblem[] = [];
  const spec = checkScheduledPatches(raw, problems);
  for (const p of problems) issues.push({ path: `${path}.${p.target.replace(/^properties\.installPatches/, 'installPatches')}`, message: p.message });
  return spec;
}

/** Adds one assignment (at `path`) to its schedule; false when it names what a schedule cannot patch. */
export function assignPatchSchedule(s: ScenarioPatchSchedule, a: MaintenanceAssignmentInput, path: string, fleet: FleetState, issues: Issue[]): void {
  if (a.scaleSet !== undefined) {
    issues.push({ path: `${path}.scaleSet`, message: `InGuestPatch schedules are assigned to VMs and Arc machines (machines or dynamicScope), not to sets` });
    return;
  }
  if (a.dynamicScope) {
    const d = a.dynamicScope;
    const osTypes = d.osTypes ?? [];
    const missing = osTypes.find((o) => !s.spec[o === 'Linux' ? 'linux' : 'windows']);
    if (missing) {
      issues.push({ path: `${path}.dynamicScope.osTypes`, message: `configuration "${s.id}" has no ${missing.toLowerCase()}Parameters for ${missing} machines` });
      return;
    }
    s.scopes.push({ subscriptions: d.subscriptions ?? [], resourceGroups: d.resourceGroups ?? [], locations: d.locations ?? [], osTypes });
    return;
  }
  (a.machines ?? []).forEach((id, k) => {
    const m = fleet.machines.get(id);
    if (!m) issues.push({ path: `${path}.machines[${k}]`, message: `unknown machine "${id}"` });
    else if (m.kind !== 'vm' && m.kind !== 'arc') issues.push({ path: `${path}.machines[${k}]`, message: `"${id}" is a scale set instance; InGuestPatch schedules patch VMs and Arc machines` });
    else if (!s.spec[m.os]) issues.push({ path: `${path}.machines[${k}]`, message: `"${id}" runs ${m.os}, and configuration "${s.id}" has no ${m.os}Parameters` });
    else if (!s.machines.includes(id)) s.machines.push(id);
  });
}

/** R76: a machine an InGuestPatch schedule covers is patched by the schedule, not by the platform. */
export function leavePlatformPatching(schedules: readonly ScenarioPatchSchedule[], fleet: FleetState): void {
  for (const key of ['guestPatch:linux', 'guestPatch:windows']) {
    const byMachine = fleet.instances.get(key);
    if (!byMachine) continue;
    for (const id of [...byMachine.keys()]) {
      const m = fleet.machines.get(id)!;
      if (schedules.some((s) => s.machines.includes(id) || s.scopes.some((sc) => inScenarioScope(sc, m)))) byMachine.delete(id);
    }
    if (byMachine.size === 0) fleet.instances.delete(key);
  }
}

export function newPatchSchedule(id: string, window: MaintenanceWindow, spec: ScheduledPatches): ScenarioPatchSchedule {
  return { id, window, spec, machines: [], scopes: [] };
}
