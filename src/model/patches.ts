/**
 * Guest OS patches (issue 16) as ARM describes them: what an assessment finds, what an installation is
 * asked to do and what it did. Plain data with the vocabulary of `@azure/arm-compute`
 * (VirtualMachineAssessPatchesResult, VirtualMachineInstallPatchesParameters/Result); the ARM layer
 * renders these as they are, the drivers (simulated fleet, agents) produce them.
 */
import { createHash } from 'node:crypto';
import { globMatch } from '../protocol/glob-match.js';
import { maskedName } from '../protocol/package-masks.js';
import type { OsType } from './fleet.js';

export const LINUX_CLASSIFICATIONS = ['Critical', 'Security', 'Other'] as const;
export const WINDOWS_CLASSIFICATIONS = ['Critical', 'Security', 'UpdateRollUp', 'FeaturePack', 'ServicePack', 'Definition', 'Tools', 'Updates'] as const;
export type PatchClassification = (typeof LINUX_CLASSIFICATIONS)[number] | (typeof WINDOWS_CLASSIFICATIONS)[number];

export type RebootBehavior = 'NeverReboots' | 'AlwaysRequiresReboot' | 'CanRequestReboot';
export type RebootSetting = 'IfRequired' | 'Never' | 'Always';
export type PatchOperationStatus = 'InProgress' | 'Failed' | 'Succeeded' | 'CompletedWithWarnings';
export type RebootStatus = 'NotNeeded' | 'Required' | 'Started' | 'Failed' | 'Completed';
export type InstallationState = 'Installed' | 'Failed' | 'Excluded' | 'NotSelected' | 'Pending';

/** One patch a machine could install. `name` is the package (Linux) or the update title (Windows). */
export interface AvailablePatch {
  /** Stable id of the patch on this machine (ARM `patchId`). */
  patchId: string;
  name: string;
  version: string;
  /** Windows only: the KB number, digits only (ARM `kbId`). */
  kbId?: string;
  classifications: PatchClassification[];
  rebootBehavior: RebootBehavior;
  /** ISO date the patch was published. */
  publishedDate: string;
}

export interface PatchAssessment {
  status: PatchOperationStatus;
  /** ISO time the assessment started. */
  startDateTime: string;
  rebootPending: boolean;
  availablePatches: AvailablePatch[];
  error?: { code: string; message: string };
}

/** What to install; classifications and masks already validated for the machine's OS. */
export interface PatchInstallRequest {
  /** Idempotency key: the same key never installs twice. */
  key: string;
  /** How long the installation may take, in milliseconds (ARM `maximumDuration`). */
  maximumDurationMs: number;
  rebootSetting: RebootSetting;
  classifications: PatchClassification[];
  /** Linux: package-name masks (`*` wildcards); Windows: KB numbers (digits). Empty include = all. */
  include: string[];
  exclude: string[];
  /** Windows: skip patches that always reboot. */
  excludeKbsRequiringReboot?: boolean;
  /** The maintenance run it belongs to, when a schedule started it. */
  maintenanceRunId?: string;
  /** A platform patch baseline (R76): only patches published by this instant. */
  publishedByMs?: number;
  /** R83: the EventId of the reboot the server announced for this run (the machine's reboot uses it). */
  rebootEventId?: string;
}

/** A stable scheduled-event id in IMDS's GUID form, from what identifies the announcement. */
export function scheduledEventId(text: string): string {
  const h = createHash('sha256').update(text).digest('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * R83: the EventId of a platform patch attempt's reboot notice (`machine.reboot.announced`, and the `Reboot`
 * scheduled event the machine reads), from the attempt's run id (`rollout/machine/attempt`).
 */
export function platformRebootEventId(runId: string): string {
  return scheduledEventId(`reboot|${runId}`);
}

export interface PatchInstallDetail {
  patchId: string;
  name: string;
  version: string;
  kbId?: string;
  classifications: PatchClassification[];
  installationState: InstallationState;
}

export interface PatchInstallation {
  status: PatchOperationStatus;
  startDateTime: string;
  rebootStatus: RebootStatus;
  /** True when the installation stopped because `maximumDuration` would have been exceeded. */
  maintenanceWindowExceeded: boolean;
  patches: PatchInstallDetail[];
  error?: { code: string; message: string };
}

/** The machine a patch operation runs on. */
export interface PatchTarget {
  machineId: string;
  os: OsType;
}

/** Counts of an installation's patches by state (ARM's `installedPatchCount` and friends). */
export function installationCounts(r: PatchInstallation): Record<'installed' | 'failed' | 'pending' | 'notSelected' | 'excluded', number> {
  const c = { installed: 0, failed: 0, pending: 0, notSelected: 0, excluded: 0 };
  for (const p of r.patches) {
    if (p.installationState === 'Installed') c.installed++;
    else if (p.installationState === 'Failed') c.failed++;
    else if (p.installationState === 'Pending') c.pending++;
    else if (p.installationState === 'NotSelected') c.notSelected++;
    else c.excluded++;
  }
  return c;
}

/**
 * Whether a package matches a mask (src/protocol/package-masks.ts says what a mask may hold): fnmatch on the
 * name (`*`, `?`, `[abc]`, `[!abc]`), or `name-mask=version-mask` on both; case-insensitive, as the package
 * managers compare; apt's `name:arch` as maskedName says. The agent's selection reads masks the same way (src/agent/patching/selection.ts), so a
 * simulated machine selects what a real one does.
 */
export function matchesMask(name: string, mask: string, version?: string): boolean {
  const eq = mask.indexOf('=');
  if (eq < 0) return globMatch(mask, maskedName(mask, name));
  return version !== undefined && globMatch(mask.slice(0, eq), maskedName(mask.slice(0, eq), name)) && globMatch(mask.slice(eq + 1), version);
}


/**
 * Which of the available patches an installation request selects (pure, shared by every driver):
 * classification in the list, and for Linux the package masks, for Windows the KB numbers.
 * Excluded wins over included; an empty include list includes everything of the classifications.
 */
export function selectPatches(os: OsType, available: readonly AvailablePatch[], req: PatchInstallRequest): { selected: AvailablePatch[]; excluded: AvailablePatch[]; notSelected: AvailablePatch[] } {
  const selected: AvailablePatch[] = [];
  const excluded: AvailablePatch[] = [];
  const notSelected: AvailablePatch[] = [];
  for (const p of available) {
    const key = os === 'windows' ? (p.kbId ?? '') : p.name;
    const hit = (x: string) => (os === 'windows' ? x.replace(/^KB/i, '') === key : matchesMask(key, x, p.version));
    if (req.exclude.some(hit) || (req.excludeKbsRequiringReboot && p.rebootBehavior === 'AlwaysRequiresReboot')) {
      excluded.push(p);
      continue;
    }
    const classOk = p.classifications.some((c) => req.classifications.includes(c));
    const nameOk = req.include.length === 0 || req.include.some(hit);
    // An explicitly included KB or package is installed whatever its classification, as Azure does.
    if ((classOk && nameOk) || (req.include.length > 0 && req.include.some(hit))) selected.push(p);
    else notSelected.push(p);
  }
  return { selected, excluded, notSelected };
}
