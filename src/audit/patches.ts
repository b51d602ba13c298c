/**
 * Checks an event log, on its own, against the rules of guest patching (issue 16):
 *
 * - R75: every `patch.run.started` of a schedule lies inside a window instance of that schedule, and its
 *   `maximumDurationMs` does not reach past the instance's end (unless the schedule allows a bypass);
 * - R75: every `patch.run.completed` of a schedule comes after its start and, when patches were left
 *   pending, says maintenanceWindowExceeded;
 * - R83: every reboot recorded as an availability impact of a run was announced by
 *   `machine.reboot.announced` for the same run and machine at least `noticeMs` before it starts;
 * - R75/R77: a reboot of a scheduled run is over before the window instance closes;
 * - R76: every platform patch installation (`instance.upgrade.started` of a `guestPatch` artifact) starts
 *   inside the off-peak hours of the machine's region, unless its batch was recorded as a bypass (R72).
 */
import type { EngineEvent } from '../model/events.js';
import type { MaintenanceWindow } from '../schedule/window.js';
import { windowAt } from '../schedule/window.js';
import { offPeakWindow } from '../schedule/off-peak.js';

export interface PatchCheckerOptions {
  /** A schedule's window (configuration id as the events carry it); undefined when unknown. */
  windowOf(configuration: string): MaintenanceWindow | undefined;
  /** Schedules whose runs may start outside their windows (none in Azure today; kept for an operator's bypass). */
  bypass?: ReadonlySet<string>;
  noticeMs: number;
}

export class PatchChecker {
  readonly violations: string[] = [];
  /** Starts checked against a window. */
  checkedStarts = 0;
  checkedReboots = 0;
  /** Platform patch installations checked against their off-peak hours (R76). */
  checkedOffPeak = 0;
  private readonly bypassedBatches = new Set<string>();
  private readonly announced = new Map<string, number>();
  private readonly started = new Map<string, { t: number; end: number | null; configuration: string }>();
  private readonly instances = new Map<string, { w: MaintenanceWindow; start: number; end: number }>();

  constructor(private readonly opts: PatchCheckerOptions) {}

  readonly onEvents = (events: readonly EngineEvent[]): void => {
    for (const e of events) this.check(e);
  };

  private fail(e: EngineEvent, message: string): void {
    if (this.violations.length < 100) this.violations.push(`seq ${e.seq} ${e.time} ${e.type}: ${message}`);
  }

  private check(e: EngineEvent): void {
    const t = Date.parse(e.time);
    if (e.type === 'window.bypassed') this.bypassedBatches.add(e.batchId);
    if (e.type === 'instance.upgrade.started' && e.artifact.kind === 'guestPatch' && !this.bypassedBatches.has(e.batchId)) {
      this.checkedOffPeak++;
      if (!windowAt(offPeakWindow(e.placement.region), t)) this.fail(e, `platform patch installation on ${e.machineId} started outside the off-peak hours of ${e.placement.region} (R76)`);
    }
    if (e.type === 'patch.run.started') {
      const key = `${e.runId}|${e.machineId}`;
      let end: number | null = null;
      if (e.configuration !== '') {
        const w = this.opts.windowOf(e.configuration);
        // Runs of one window share its instance: look it up once.
        const last = this.instances.get(e.configuration);
        const inst = last && last.w === w && last.start <= t && t < last.end ? last : w ? windowAt(w, t) : null;
        if (w && inst) this.instances.set(e.configuration, { w, start: inst.start, end: inst.end });
        if (!this.opts.bypass?.has(e.configuration)) {
          this.checkedStarts++;
          if (!w) this.fail(e, `schedule ${e.configuration} is unknown`);
          else if (!inst) this.fail(e, `installation on ${e.machineId} started outside the windows of ${e.configuration}`);
          else if (t + e.maximumDurationMs > inst.end) this.fail(e, `maximumDuration ${e.maximumDurationMs} ms reaches past the window's end ${new Date(inst.end).toISOString()}`);
        }
        end = inst?.end ?? null;
      }
      this.started.set(key, { t, end, configuration: e.configuration });
    } else if (e.type === 'patch.run.completed') {
      const s = this.started.get(`${e.runId}|${e.machineId}`);
      if (!s) this.fail(e, `run ${e.runId} on ${e.machineId} completed without starting`);
      if (e.pending > 0 && !e.maintenanceWindowExceeded) this.fail(e, `${e.pending} patch(es) left pending without maintenanceWindowExceeded`);
    } else if (e.type === 'machine.reboot.announced') {
      this.announced.set(`${e.runId}|${e.machineId}`, t);
    } else if (e.type === 'availability.impact' && e.cause === 'Reboot') {
      const run = e.runId;
      if (run === undefined) return; // not a patch reboot
      this.checkedReboots++;
      const key = `${run}|${e.machineId}`;
      const at = this.announced.get(key);
      const start = Date.parse(e.startTime);
      if (at === undefined) this.fail(e, `reboot of ${e.machineId} (${run}) was never announced (R83)`);
      else if (start - at < this.opts.noticeMs) this.fail(e, `reboot of ${e.machineId} announced ${(start - at) / 60_000} minutes ahead, less than ${this.opts.noticeMs / 60_000} (R83)`);
      const s = this.started.get(key);
      if (s?.end != null && start + e.durationSec * 1000 > s.end) this.fail(e, `reboot of ${e.machineId} runs past the end of its window (${new Date(s.end).toISOString()})`);
    }
  }
}
