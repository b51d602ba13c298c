/**
 * Which configurations a resource can be assigned, as one rule for both sides: an assignment is checked
 * when it is written, and a configuration's change is checked against the assignments it already has
 * (a configuration once became OSImage while assigned to a VM, or InGuestPatch while assigned to a scale
 * set, leaving assignments the assignment route refuses).
 */

/** What of a configuration the rule reads. */
export interface AssignedConfig { maintenanceScope: string; installPatches?: Record<string, unknown> | undefined }

/** What of a resource the rule reads: a scale set, or a machine (VM or Arc) and its OS. */
export type AssignedResource = { kind: 'scaleSet' } | { kind: 'vm' | 'arc'; os: 'linux' | 'windows' };

const TYPE_NAMES = { vm: 'Microsoft.Compute/virtualMachines', arc: 'Microsoft.HybridCompute/machines', scaleSet: 'Microsoft.Compute/virtualMachineScaleSets' } as const;

/** Why `cfg` cannot be assigned to `r`; null when it can. */
export function assignmentProblem(cfg: AssignedConfig, r: AssignedResource): string | null {
  const scope = cfg.maintenanceScope;
  if (scope === 'OSImage' && r.kind !== 'scaleSet') return `an OSImage configuration can only be assigned to a virtual machine scale set, not to ${TYPE_NAMES[r.kind]}`;
  if (scope !== 'InGuestPatch') return null;
  // Scheduled patching is for VMs and Arc machines, and the schedule must name the machine's OS.
  if (r.kind === 'scaleSet') return 'an InGuestPatch configuration can only be assigned to a virtual machine or an Arc machine, not to a scale set';
  const key = r.os === 'windows' ? 'windowsParameters' : 'linuxParameters';
  if (!cfg.installPatches?.[key]) return `the configuration has no installPatches.${key}: it cannot patch this ${r.os === 'windows' ? 'Windows' : 'Linux'} machine`;
  return null;
}

/** Why `cfg` cannot serve a dynamic scope that patches `osTypes`; null when it can. */
export function dynamicScopeProblem(cfg: AssignedConfig, osTypes: readonly string[]): string | null {
  if (cfg.maintenanceScope !== 'InGuestPatch') return `only InGuestPatch configurations can be assigned by dynamic scope (this one's scope is ${cfg.maintenanceScope})`;
  for (const os of osTypes) {
    const key = os.toLowerCase() === 'windows' ? 'windowsParameters' : 'linuxParameters';
    if (!cfg.installPatches?.[key]) return `the configuration has no ${key}: it cannot patch ${os.toLowerCase() === 'windows' ? 'Windows' : 'Linux'} machines`;
  }
  return null;
}
