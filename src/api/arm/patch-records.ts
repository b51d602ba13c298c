/**
 * What a patch installation leaves behind (issue 16): events in the engine's log (run started and
 * completed, the reboot announced first — R83 — and the reboot as an availability impact — R84), and
 * the machine's latest assessment and installation for its instance view (`patchStatus`).
 */
import type { Machine } from '../../model/fleet.js';
import type { PatchEventBody } from '../../model/events.js';
import { installFinishedEvents } from '../../model/patch-runs.js';
import type { PatchAssessment, PatchInstallation } from '../../model/patches.js';
import { installationCounts } from '../../model/patches.js';
import type { ArmContext } from './context.js';

export { REBOOT_IMPACT_SEC, REBOOT_NOTICE_MS, installStarted } from '../../model/patch-runs.js';

export interface PatchStatusDoc {
  /** `at`: when the result came (lastModifiedTime); `startedAt`: when the machine began (startTime; absent in docs of builds before 2026-12-07). */
  assessment?: { at: string; startedAt?: string; critical: number; other: number; rebootPending: boolean; activityId: string };
  installation?: {
    at: string; startedAt?: string; activityId: string; status: string; installed: number; failed: number; pending: number; excluded: number; notSelected: number;
    maintenanceWindowExceeded: boolean; rebootStatus: string; configuration: string;
  };
}

const statusDocId = (armId: string) => `${armId}/providers/Phasewise/patchStatus/current`;

export function readPatchStatus(ctx: ArmContext, armId: string): PatchStatusDoc | undefined {
  return ctx.docs.get<PatchStatusDoc>(statusDocId(armId))?.body;
}

export function forgetPatchStatus(ctx: ArmContext, armId: string): void {
  ctx.docs.delete(statusDocId(armId));
}

export function saveAssessment(ctx: ArmContext, armId: string, a: PatchAssessment, activityId: string, at: string): void {
  const critical = a.availablePatches.filter((p) => p.classifications.includes('Critical') || p.classifications.includes('Security')).length;
  const assessment = { at, startedAt: a.startDateTime, critical, other: a.availablePatches.length - critical, rebootPending: a.rebootPending, activityId };
  const doc: PatchStatusDoc = { ...readPatchStatus(ctx, armId), assessment };
  ctx.docs.put(statusDocId(armId), armId, 'patchStatus', doc);
}

/**
 * The end of an installation: its event, the reboot as an availability impact, and the machine's patch status.
 * `activityId`: what the status names the run by; on demand, the operation's id (the `installationActivityId` of its result).
 */
export function installFinished(
  ctx: ArmContext, m: Machine, armId: string, configuration: string, runId: string, r: PatchInstallation, notBeforeMs: number | null, at: string, activityId = runId,
): PatchEventBody[] {
  const events = installFinishedEvents(m, configuration, runId, r, notBeforeMs);
  const c = installationCounts(r);
  const doc: PatchStatusDoc = {
    ...readPatchStatus(ctx, armId),
    installation: {
      at, startedAt: r.startDateTime, activityId, status: r.status, installed: c.installed, failed: c.failed, pending: c.pending, excluded: c.excluded, notSelected: c.notSelected,
      maintenanceWindowExceeded: r.maintenanceWindowExceeded, rebootStatus: r.rebootStatus, configuration,
    },
  };
  ctx.docs.put(statusDocId(armId), armId, 'patchStatus', doc);
  return events;
}

/** Compute's `instanceView.patchStatus` from the machine's latest assessment and installation. */
export function patchStatusView(ctx: ArmContext, armId: string) {
  const s = readPatchStatus(ctx, armId);
  if (!s) return undefined;
  return {
    ...(s.assessment ? { availablePatchSummary: {
      status: 'Succeeded', assessmentActivityId: s.assessment.activityId, rebootPending: s.assessment.rebootPending,
      criticalAndSecurityPatchCount: s.assessment.critical, otherPatchCount: s.assessment.other, startTime: s.assessment.startedAt ?? s.assessment.at, lastModifiedTime: s.assessment.at,
    } } : {}),
    ...(s.installation ? { lastPatchInstallationSummary: {
      status: s.installation.status, installationActivityId: s.installation.activityId, maintenanceWindowExceeded: s.installation.maintenanceWindowExceeded,
      notSelectedPatchCount: s.installation.notSelected, excludedPatchCount: s.installation.excluded, pendingPatchCount: s.installation.pending,
      installedPatchCount: s.installation.installed, failedPatchCount: s.installation.failed,
      startTime: s.installation.startedAt ?? s.installation.at, lastModifiedTime: s.installation.at,
    } } : {}),
  };
}
