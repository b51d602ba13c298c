/**
 * Patch results in the shapes the SDKs read: Compute's VirtualMachineAssessPatchesResult and
 * VirtualMachineInstallPatchesResult, and HybridCompute's MachineAssessPatchesResult and
 * MachineInstallPatchesResult (counts by classification instead of lists).
 */
import type { OsType } from '../../model/fleet.js';
import type { PatchAssessment, PatchInstallation } from '../../model/patches.js';
import { installationCounts } from '../../model/patches.js';

const isCriticalOrSecurity = (c: readonly string[]) => c.includes('Critical') || c.includes('Security');

export function computeAssessmentView(a: PatchAssessment, activityId: string) {
  const critical = a.availablePatches.filter((p) => isCriticalOrSecurity(p.classifications)).length;
  return {
    status: a.status, assessmentActivityId: activityId, rebootPending: a.rebootPending,
    criticalAndSecurityPatchCount: critical, otherPatchCount: a.availablePatches.length - critical, startDateTime: a.startDateTime,
    availablePatches: a.availablePatches.map((p) => ({
      patchId: p.patchId, name: p.name, version: p.version, ...(p.kbId ? { kbId: p.kbId } : {}), classifications: p.classifications,
      rebootBehavior: p.rebootBehavior, activityId, publishedDate: p.publishedDate, lastModifiedDateTime: p.publishedDate, assessmentState: 'Available',
    })),
    ...(a.error ? { error: a.error } : {}),
  };
}

export function computeInstallationView(r: PatchInstallation, activityId: string) {
  const c = installationCounts(r);
  return {
    status: r.status, installationActivityId: activityId, rebootStatus: r.rebootStatus, maintenanceWindowExceeded: r.maintenanceWindowExceeded,
    excludedPatchCount: c.excluded, notSelectedPatchCount: c.notSelected, pendingPatchCount: c.pending, installedPatchCount: c.installed, failedPatchCount: c.failed,
    patches: r.patches, startDateTime: r.startDateTime,
    ...(r.error ? { error: r.error } : {}),
  };
}

const patchService = (os: OsType) => (os === 'windows' ? 'WU' : 'APT');

export function arcAssessmentView(a: PatchAssessment, activityId: string, os: OsType, now: string) {
  const by: Record<string, number> = { security: 0, critical: 0, definition: 0, updateRollup: 0, featurePack: 0, servicePack: 0, tools: 0, updates: 0, other: 0 };
  for (const p of a.availablePatches) {
    for (const c of p.classifications) {
      const k = c === 'UpdateRollUp' ? 'updateRollup' : c.charAt(0).toLowerCase() + c.slice(1);
      by[k] = (by[k] ?? 0) + 1;
    }
  }
  return {
    status: a.status, assessmentActivityId: activityId, rebootPending: a.rebootPending, availablePatchCountByClassification: by,
    startDateTime: a.startDateTime, lastModifiedDateTime: now, startedBy: 'User', patchServiceUsed: patchService(os), osType: os === 'windows' ? 'Windows' : 'Linux',
    ...(a.error ? { errorDetails: a.error } : {}),
  };
}

export function arcInstallationView(r: PatchInstallation, activityId: string, os: OsType, now: string) {
  const c = installationCounts(r);
  return {
    status: r.status, installationActivityId: activityId, rebootStatus: r.rebootStatus, maintenanceWindowExceeded: r.maintenanceWindowExceeded,
    excludedPatchCount: c.excluded, notSelectedPatchCount: c.notSelected, pendingPatchCount: c.pending, installedPatchCount: c.installed, failedPatchCount: c.failed,
    startDateTime: r.startDateTime, lastModifiedDateTime: now, startedBy: 'User', patchServiceUsed: patchService(os), osType: os === 'windows' ? 'Windows' : 'Linux',
    ...(r.error ? { errorDetails: r.error } : {}),
  };
}
