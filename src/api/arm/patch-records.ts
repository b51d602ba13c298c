/**
 * What a patch installation leaves behind (issue 16): events in the engine's log (run started and
 * completed, the reboot announced first — R83 — and the reboot as an availability impact — R84), and
 * the machine's latest assessment and installation for its instance view (`patchStatus`).
 */
import { createHash } from 'node:crypto';
import type { Machine } from '../../model/fleet.js';
import type { PatchEventBody } from '../../model/events.js';
import type { PatchAssessment, PatchInstallation, RebootSetting } from '../../model/patches.js';
import { installationCounts } from '../../model/patches.js';
import type { ArmContext } from './context.js';

/** R83: a reboot is announced this long before it may start (Azure's Reboot scheduled events: 15 minutes). */
export const REBOOT_NOTICE_MS = 15 * 60_000;
/** How long a patch reboot keeps a machine unavailable, as recorded (the drivers do not report it). */
export const REBOOT_IMPACT_SEC = 300;

export interface PatchStatusDoc {
  assessment?: { at: string; critical: number; other: number; rebootPending: boolean; activityId: string };
  installation?: {
    at: string; activityId: string; status: string; installed: number; failed: number; pending: number; excluded: number; notSelected: number;
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
  const doc: PatchStatusDoc = { ...readPatchStatus(ctx, armId), assessment: { at, critical, other: a.availablePatches.length - critical, rebootPending: a.rebootPending, activityId } };
  ctx.docs.put(statusDocId(armId), armId, 'patchStatus', doc);
}

/** The start of an installation: its event, and the reboot notice when the setting allows a reboot. */
export function installStarted(m: Machine, configuration: string, runId: string, now: number, window: { start: number; end: number }, rebootSetting: RebootSetting, reason: string) {
  const maximumDurationMs = window.end - now;
  const events: PatchEventBody[] = [{
    type: 'patch.run.started', machineId: m.id, placement: m.placement, configuration, runId,
    windowStart: new Date(window.start).toISOString(), windowEnd: new Date(window.end).toISOString(), maximumDurationMs, reason,
  }];
  let notBeforeMs: number | null = null;
  if (rebootSetting !== 'Never') {
    notBeforeMs = now + REBOOT_NOTICE_MS;
    const eventId = createHash('sha256').update(`${runId}/${m.id}`).digest('hex').slice(0, 32);
    const uuid = `${eventId.slice(0, 8)}-${eventId.slice(8, 12)}-${eventId.slice(12, 16)}-${eventId.slice(16, 20)}-${eventId.slice(20)}`;
    events.push({ type: 'machine.reboot.announced', machineId: m.id, placement: m.placement, runId, eventId: uuid, notBefore: new Date(notBeforeMs).toISOString(),
      reason: `a patch installation (${runId}) may reboot the machine` });
  }
  const rebootEventId = events.length > 1 && events[1]!.type === 'machine.reboot.announced' ? events[1]!.eventId : null;
  return { events, notBeforeMs, maximumDurationMs, rebootEventId };
}

/** The end of an installation: its event, the reboot as an availability impact, and the machine's patch status. */
export function installFinished(ctx: ArmContext, m: Machine, armId: string, configuration: string, runId: string, r: PatchInstallation, notBeforeMs: number | null, at: string): PatchEventBody[] {
  const c = installationCounts(r);
  const events: PatchEventBody[] = [{
    type: 'patch.run.completed', machineId: m.id, placement: m.placement, configuration, runId, status: r.status,
    installed: c.installed, failed: c.failed, pending: c.pending, maintenanceWindowExceeded: r.maintenanceWindowExceeded, rebootStatus: r.rebootStatus,
    reason: r.maintenanceWindowExceeded ? `stopped installing: ${c.pending} patch(es) would not finish before the window closes` : `${c.installed} installed, ${c.failed} failed`,
  }];
  if ((r.rebootStatus === 'Completed' || r.rebootStatus === 'Started') && notBeforeMs !== null) {
    events.push({
      type: 'availability.impact', machineId: m.id, placement: m.placement, cause: 'Reboot', state: 'Unavailable', startTime: new Date(notBeforeMs).toISOString(),
      durationSec: REBOOT_IMPACT_SEC, planned: true, reason: `rebooted after installing patches (${runId})`, runId,
    });
  }
  const doc: PatchStatusDoc = {
    ...readPatchStatus(ctx, armId),
    installation: {
      at, activityId: runId, status: r.status, installed: c.installed, failed: c.failed, pending: c.pending, excluded: c.excluded, notSelected: c.notSelected,
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
      criticalAndSecurityPatchCount: s.assessment.critical, otherPatchCount: s.assessment.other, startTime: s.assessment.at, lastModifiedTime: s.assessment.at,
    } } : {}),
    ...(s.installation ? { lastPatchInstallationSummary: {
      status: s.installation.status, installationActivityId: s.installation.activityId, maintenanceWindowExceeded: s.installation.maintenanceWindowExceeded,
      notSelectedPatchCount: s.installation.notSelected, excludedPatchCount: s.installation.excluded, pendingPatchCount: s.installation.pending,
      installedPatchCount: s.installation.installed, failedPatchCount: s.installation.failed, startTime: s.installation.at, lastModifiedTime: s.installation.at,
    } } : {}),
  };
}
