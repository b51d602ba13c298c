/**
 * One run of an InGuestPatch schedule on its machines (issue 16, R75, R77, R83, R84), shared by `serve`
 * (src/api/arm/patch-schedules.ts) and the simulator (src/sim/patch-schedules.ts): which machines a run
 * skips and why, the events of a start (the reboot notice first) and of an end (the reboot as an
 * availability impact). Pure: the callers install through their PatchDriver and record the events.
 */
import { createHash } from 'node:crypto';
import type { Machine } from './fleet.js';
import type { PatchEventBody } from './events.js';
import type { PatchInstallation, PatchInstallRequest, RebootSetting } from './patches.js';
import { installationCounts } from './patches.js';

/** R83: a reboot is announced this long before it may start (Azure's Reboot scheduled events: 15 minutes). */
export const REBOOT_NOTICE_MS = 15 * 60_000;
/** How long a patch reboot keeps a machine unavailable, as recorded (the drivers do not report it). */
export const REBOOT_IMPACT_SEC = 300;
/** A run needs this much of its window left (room for the reboot notice, R83); less, and the machines wait for the next window. */
export const MIN_RUN_MS = 30 * 60_000;

/** A configuration's `installPatches` checked per OS it names (the window gives the duration). */
export interface ScheduledPatches {
  rebootSetting: RebootSetting;
  linux?: PatchInstallRequest;
  windows?: PatchInstallRequest;
}

/** What a schedule needs to know of a machine's patch settings. */
export interface SchedulePatchSettings {
  patchMode: string;
  bypassPlatformSafetyChecksOnUserSchedule: boolean;
}

/** A run's id: the configuration's name and the window's start. */
export function scheduleRunId(configId: string, windowStart: number): string {
  return `${configId.slice(configId.lastIndexOf('/') + 1)}@${new Date(windowStart).toISOString()}`;
}

/**
 * Splits a run's machines into those it patches (with their OS's request) and `patch.run.skipped` events
 * with the reason: no parameters for the OS, patch settings that keep the user's schedule out, too little
 * of the window left, or no way to reach the machine.
 */
export function planScheduledRun<M extends Machine>(
  targets: readonly M[], spec: ScheduledPatches, settingsOf: (m: M) => SchedulePatchSettings,
  run: { configuration: string; runId: string; end: number; now: number; canPatch: boolean },
): { go: Array<{ m: M; request: PatchInstallRequest }>; skipped: PatchEventBody[] } {
  const skipped: PatchEventBody[] = [];
  const go: Array<{ m: M; request: PatchInstallRequest }> = [];
  for (const m of targets) {
    const skip = (reason: string) => skipped.push({ type: 'patch.run.skipped', machineId: m.id, placement: m.placement, configuration: run.configuration, runId: run.runId, reason });
    const settings = settingsOf(m);
    const request = spec[m.os];
    if (!request) skip(`the configuration has no ${m.os}Parameters`);
    else if (settings.patchMode !== 'AutomaticByPlatform' || !settings.bypassPlatformSafetyChecksOnUserSchedule) {
      const without = settings.bypassPlatformSafetyChecksOnUserSchedule ? '' : ' without bypassPlatformSafetyChecksOnUserSchedule';
      skip(`patchMode ${settings.patchMode}${without}: the user's schedule does not patch this machine`);
    } else if (run.end - run.now < MIN_RUN_MS) skip(`only ${Math.round((run.end - run.now) / 60_000)} minutes of the window are left`);
    else if (!run.canPatch) skip('this server cannot reach the machine to patch it');
    else go.push({ m, request });
  }
  return { go, skipped };
}

/** The request a run sends a machine: its OS's parameters with what is left of the window. */
export function scheduledRequest(request: PatchInstallRequest, spec: ScheduledPatches, runId: string, m: Machine, started: ReturnType<typeof installStarted>): PatchInstallRequest {
  return { ...request, key: `${runId}/${m.id}`, maximumDurationMs: started.maximumDurationMs, rebootSetting: spec.rebootSetting, maintenanceRunId: runId,
    ...(started.rebootEventId ? { rebootEventId: started.rebootEventId } : {}) };
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

/** The end of an installation: its event, and the reboot as an availability impact. */
export function installFinishedEvents(m: Machine, configuration: string, runId: string, r: PatchInstallation, notBeforeMs: number | null): PatchEventBody[] {
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
  return events;
}
