/**
 * Guest OS patches of the simulated fleet (issue 16): a deterministic, seeded catalogue of patches per
 * OS (a new batch every week), each machine offered a seeded share of them, installation taking seeded
 * simulated minutes per patch, a seeded few failing. Installed patches are no longer offered.
 */
import type { PatchDriver } from '../../engine/driver.js';
import type { OsType } from '../../model/fleet.js';
import type { AvailablePatch, PatchAssessment, PatchClassification, PatchInstallation, PatchInstallDetail, PatchInstallRequest, PatchTarget, RebootBehavior } from '../../model/patches.js';
import { selectPatches } from '../../model/patches.js';
import { hashUnit } from '../../sim/random.js';

const WEEK_MS = 7 * 86_400_000;
/** How far back the catalogue reaches: older patches are superseded. */
const WEEKS_KEPT = 8;
const LINUX_PACKAGES = ['openssl', 'libc6', 'linux-image-azure', 'curl', 'openssh-server', 'sudo', 'systemd', 'python3', 'tzdata', 'bash', 'zlib1g', 'libxml2'];
const WINDOWS_UPDATES: Array<[string, PatchClassification]> = [
  ['Cumulative Update for Windows Server', 'Security'], ['Servicing Stack Update', 'Critical'], ['Security Intelligence Update for Microsoft Defender', 'Definition'],
  ['.NET Framework Update', 'Updates'], ['Windows Malicious Software Removal Tool', 'UpdateRollUp'], ['Feature Update', 'FeaturePack'],
];
/** Simulated time a reboot takes; an installation keeps this much of its duration for it. */
export const SIM_REBOOT_MS = 10 * 60_000;
/** Share of a catalogue a machine lacks; share of installations of a patch that fail. */
const OFFERED = 0.7;
const FAILS = 0.05;

/** The patches published for `os` in week `week` (weeks since the epoch). Pure. */
export function weeklyPatches(os: OsType, week: number, seed: number): AvailablePatch[] {
  const published = new Date(week * WEEK_MS).toISOString();
  const out: AvailablePatch[] = [];
  if (os === 'linux') {
    for (const pkg of LINUX_PACKAGES) {
      const u = hashUnit(`${pkg}@${week}`, seed);
      if (u > 0.5) continue; // about half the packages get an update a week
      const classifications: PatchClassification[] = [u < 0.1 ? 'Critical' : u < 0.3 ? 'Security' : 'Other'];
      const reboot: RebootBehavior = pkg.startsWith('linux-image') || pkg === 'libc6' ? 'AlwaysRequiresReboot' : pkg === 'systemd' ? 'CanRequestReboot' : 'NeverReboots';
      out.push({ patchId: `${pkg}_${week}`, name: pkg, version: `${1 + (week % 5)}.${week % 100}.${Math.floor(u * 100)}`, classifications, rebootBehavior: reboot, publishedDate: published });
    }
  } else {
    WINDOWS_UPDATES.forEach(([title, cls], i) => {
      const u = hashUnit(`${title}@${week}`, seed);
      if (i > 1 && u > 0.6) return; // the cumulative and servicing-stack updates come every week
      const kb = String(5_000_000 + ((week * 7 + i) % 999_983));
      const reboot: RebootBehavior = cls === 'Definition' ? 'NeverReboots' : cls === 'Updates' ? 'CanRequestReboot' : 'AlwaysRequiresReboot';
      out.push({ patchId: `KB${kb}`, name: `${title} (KB${kb})`, version: '', kbId: kb, classifications: [cls], rebootBehavior: reboot, publishedDate: published });
    });
  }
  return out;
}

export class SimPatches implements PatchDriver {
  /** Patch ids installed per machine (saved with the simulated fleet's snapshot, SimDriver.snapshot). */
  private readonly installed = new Map<string, Set<string>>();
  private readonly done = new Map<string, Promise<PatchInstallation>>();
  /** The catalogue of a week is the same for every machine: made once (`os:week`). */
  private readonly weeks = new Map<string, AvailablePatch[]>();

  constructor(private readonly seed: number, private readonly now: () => number) {}

  /** What each machine installed, for the simulated fleet's snapshot. */
  installedSnapshot(): Array<[string, string[]]> {
    return [...this.installed].map(([id, ids]) => [id, [...ids]]);
  }

  /** Continues from installedSnapshot(): a restarted server does not offer installed patches again. */
  restoreInstalled(entries: ReadonlyArray<readonly [string, readonly string[]]>): void {
    this.installed.clear();
    for (const [id, ids] of entries) this.installed.set(id, new Set(ids));
  }

  /** What `machine` is offered now: its share of the recent catalogue, less what it installed. */
  available(machine: PatchTarget): AvailablePatch[] {
    const week = Math.floor(this.now() / WEEK_MS);
    const have = this.installed.get(machine.machineId);
    const out: AvailablePatch[] = [];
    for (let w = week - WEEKS_KEPT + 1; w <= week; w++) {
      const k = `${machine.os}:${w}`;
      let batch = this.weeks.get(k);
      if (!batch) {
        batch = weeklyPatches(machine.os, w, this.seed);
        this.weeks.set(k, batch);
        if (this.weeks.size > 64) this.weeks.delete(this.weeks.keys().next().value!);
      }
      for (const p of batch) {
        if (have?.has(p.patchId)) continue;
        if (hashUnit(`${machine.machineId}/${p.patchId}`, this.seed) < OFFERED) out.push(p);
      }
    }
    return out;
  }

  async assessPatches(machine: PatchTarget): Promise<PatchAssessment> {
    const availablePatches = this.available(machine);
    return { status: 'Succeeded', startDateTime: new Date(this.now()).toISOString(), rebootPending: false, availablePatches };
  }

  installPatches(machine: PatchTarget, req: PatchInstallRequest): Promise<PatchInstallation> {
    let p = this.done.get(req.key);
    if (!p) {
      p = Promise.resolve(this.install(machine, req).result);
      this.done.set(req.key, p);
      // Bounded: a resend comes soon after its first sending, never after a thousand others.
      if (this.done.size > 1000) this.done.delete(this.done.keys().next().value!);
    }
    return p;
  }

  /**
   * Installs in order of importance (critical and security first) until the duration would be exceeded;
   * also says how long it took (reboot included), which the simulated fleet's engine actions wait for.
   */
  install(machine: PatchTarget, req: PatchInstallRequest): { result: PatchInstallation; elapsedMs: number } {
    const offered = req.publishedByMs === undefined ? this.available(machine) : this.available(machine).filter((p) => Date.parse(p.publishedDate) <= req.publishedByMs!);
    const { selected, excluded, notSelected } = selectPatches(machine.os, offered, req);
    const rank = (a: AvailablePatch) => (a.classifications.includes('Critical') ? 0 : a.classifications.includes('Security') ? 1 : 2);
    selected.sort((a, b) => rank(a) - rank(b) || a.patchId.localeCompare(b.patchId));
    const details: PatchInstallDetail[] = [];
    const detail = (a: AvailablePatch, installationState: PatchInstallDetail['installationState']): PatchInstallDetail => ({
      patchId: a.patchId, name: a.name, version: a.version, ...(a.kbId ? { kbId: a.kbId } : {}), classifications: a.classifications, installationState,
    });
    let elapsed = 0;
    let exceeded = false;
    let needsReboot = false;
    const have = this.installed.get(machine.machineId) ?? new Set<string>();
    // Time for a reboot is kept back when one may follow (Azure stops installing early for the same reason).
    const reserve = req.rebootSetting === 'Never' ? 0 : SIM_REBOOT_MS;
    for (const a of selected) {
      const takes = (1 + Math.floor(hashUnit(`${machine.machineId}/${a.patchId}/t`, this.seed) * 6)) * 60_000;
      if (exceeded || elapsed + takes + reserve > req.maximumDurationMs) {
        exceeded = true;
        details.push(detail(a, 'Pending'));
        continue;
      }
      elapsed += takes;
      if (hashUnit(`${machine.machineId}/${a.patchId}/${req.key}`, this.seed) < FAILS) {
        details.push(detail(a, 'Failed'));
        continue;
      }
      have.add(a.patchId);
      details.push(detail(a, 'Installed'));
      if (a.rebootBehavior === 'AlwaysRequiresReboot' || (a.rebootBehavior === 'CanRequestReboot' && hashUnit(`${a.patchId}/r`, this.seed) < 0.5)) needsReboot = true;
    }
    this.installed.set(machine.machineId, have);
    for (const a of excluded) details.push(detail(a, 'Excluded'));
    for (const a of notSelected) details.push(detail(a, 'NotSelected'));
    const failed = details.some((d) => d.installationState === 'Failed');
    const reboots = req.rebootSetting === 'Always' || (req.rebootSetting === 'IfRequired' && needsReboot);
    const result: PatchInstallation = {
      status: failed || exceeded ? 'CompletedWithWarnings' : 'Succeeded',
      startDateTime: new Date(this.now()).toISOString(),
      rebootStatus: reboots ? 'Completed' : needsReboot ? 'Required' : 'NotNeeded',
      maintenanceWindowExceeded: exceeded,
      patches: details,
    };
    return { result, elapsedMs: elapsed + (reboots ? SIM_REBOOT_MS : 0) };
  }
}
