/**
 * Patch settings of a machine (issue 16): `osProfile.linuxConfiguration.patchSettings` and
 * `osProfile.windowsConfiguration.patchSettings` on VMs, the same under an Arc machine's `osProfile`.
 * Checked as Azure checks them (values per OS, platform settings only with AutomaticByPlatform, the
 * configuration of the other OS refused), and read back with Azure's defaults.
 */
import type { OsType } from '../../model/fleet.js';
import type { RebootSetting } from '../../model/patches.js';
import { invalidParameter } from './errors.js';

export type PatchMode = 'ImageDefault' | 'AutomaticByOS' | 'AutomaticByPlatform' | 'Manual';
export type AssessmentMode = 'ImageDefault' | 'AutomaticByPlatform';

/** What a machine's patch settings mean once defaults are applied. */
export interface EffectivePatchSettings {
  patchMode: PatchMode;
  assessmentMode: AssessmentMode;
  /** AutomaticByPlatform only: how the platform reboots after patching. */
  rebootSetting: RebootSetting;
  /** AutomaticByPlatform only: patch on the user's schedule (an InGuestPatch configuration) instead of the platform's. */
  bypassPlatformSafetyChecksOnUserSchedule: boolean;
}

/** Patch modes per OS and machine kind (Compute's enums; Arc allows every mode on both). */
const MODES: Record<'vm' | 'arc', Record<OsType, readonly PatchMode[]>> = {
  vm: { linux: ['ImageDefault', 'AutomaticByPlatform'], windows: ['Manual', 'AutomaticByOS', 'AutomaticByPlatform'] },
  arc: { linux: ['ImageDefault', 'AutomaticByPlatform', 'AutomaticByOS', 'Manual'], windows: ['ImageDefault', 'AutomaticByPlatform', 'AutomaticByOS', 'Manual'] },
};
const ASSESSMENT: readonly AssessmentMode[] = ['ImageDefault', 'AutomaticByPlatform'];
const REBOOT: readonly string[] = ['Unknown', 'IfRequired', 'Never', 'Always'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks the patch settings inside `osProfile` for a machine of `os`; throws an ARM error naming the
 * field. `at` is the path of the osProfile in the body (`properties.osProfile`).
 */
export function validatePatchSettings(osProfile: unknown, os: OsType, kind: 'vm' | 'arc', at: string): void {
  if (osProfile === undefined || osProfile === null) return;
  if (!isObj(osProfile)) throw invalidParameter(at, 'expected an object');
  const own = os === 'windows' ? 'windowsConfiguration' : 'linuxConfiguration';
  const other = os === 'windows' ? 'linuxConfiguration' : 'windowsConfiguration';
  if (osProfile[other] !== undefined && osProfile[other] !== null) {
    throw invalidParameter(`${at}.${other}`, `a ${os === 'windows' ? 'Windows' : 'Linux'} machine takes ${own}, not ${other}.`);
  }
  const cfg = osProfile[own];
  if (cfg === undefined || cfg === null) return;
  if (!isObj(cfg)) throw invalidParameter(`${at}.${own}`, 'expected an object');
  const ps = cfg.patchSettings;
  if (ps === undefined || ps === null) return;
  const where = `${at}.${own}.patchSettings`;
  if (!isObj(ps)) throw invalidParameter(where, 'expected an object');
  const known = ['patchMode', 'assessmentMode', 'automaticByPlatformSettings', 'enableHotpatching'];
  const unknown = Object.keys(ps).find((k) => !known.includes(k));
  if (unknown !== undefined) throw invalidParameter(`${where}.${unknown.slice(0, 64)}`, `unknown property; expected one of ${known.join(', ')}.`);
  const modes = MODES[kind][os];
  const mode = ps.patchMode;
  if (mode !== undefined && (typeof mode !== 'string' || !modes.includes(mode as PatchMode))) {
    throw invalidParameter(`${where}.patchMode`,
      `${JSON.stringify(mode)?.slice(0, 40)} is not a patch mode of a ${os === 'windows' ? 'Windows' : 'Linux'} machine; expected one of ${modes.join(', ')}.`);
  }
  const am = ps.assessmentMode;
  if (am !== undefined && (typeof am !== 'string' || !ASSESSMENT.includes(am as AssessmentMode))) {
    throw invalidParameter(`${where}.assessmentMode`, `expected one of ${ASSESSMENT.join(', ')}.`);
  }
  const effectiveMode = (mode as PatchMode | undefined) ?? defaultMode(os, kind);
  const abp = ps.automaticByPlatformSettings;
  if (abp !== undefined && abp !== null) {
    const w = `${where}.automaticByPlatformSettings`;
    if (!isObj(abp)) throw invalidParameter(w, 'expected an object');
    if (effectiveMode !== 'AutomaticByPlatform') throw invalidParameter(w, `can only be set when patchMode is AutomaticByPlatform (it is ${effectiveMode}).`);
    const extra = Object.keys(abp).find((k) => k !== 'rebootSetting' && k !== 'bypassPlatformSafetyChecksOnUserSchedule');
    if (extra !== undefined) throw invalidParameter(`${w}.${extra.slice(0, 64)}`, 'unknown property; expected rebootSetting or bypassPlatformSafetyChecksOnUserSchedule.');
    if (abp.rebootSetting !== undefined && (typeof abp.rebootSetting !== 'string' || !REBOOT.includes(abp.rebootSetting))) {
      throw invalidParameter(`${w}.rebootSetting`, `expected one of ${REBOOT.join(', ')}.`);
    }
    const bypass = abp.bypassPlatformSafetyChecksOnUserSchedule;
    if (bypass !== undefined && typeof bypass !== 'boolean') throw invalidParameter(`${w}.bypassPlatformSafetyChecksOnUserSchedule`, 'expected true or false.');
  }
  if (ps.enableHotpatching !== undefined) {
    if (typeof ps.enableHotpatching !== 'boolean') throw invalidParameter(`${where}.enableHotpatching`, 'expected true or false.');
    if (ps.enableHotpatching && (os !== 'windows' || effectiveMode !== 'AutomaticByPlatform')) {
      throw invalidParameter(`${where}.enableHotpatching`, 'hotpatching needs a Windows machine with patchMode AutomaticByPlatform.');
    }
  }
  if (os === 'windows' && kind === 'vm') {
    // Compute ties Windows Update's own switch to the patch mode.
    const auto = cfg.enableAutomaticUpdates;
    if (auto === false && (effectiveMode === 'AutomaticByOS' || effectiveMode === 'AutomaticByPlatform')) {
      throw invalidParameter(`${at}.${own}.enableAutomaticUpdates`, `must be true when patchMode is ${effectiveMode}.`);
    }
    if (auto === true && effectiveMode === 'Manual') throw invalidParameter(`${at}.${own}.enableAutomaticUpdates`, 'must be false when patchMode is Manual.');
    if (effectiveMode === 'AutomaticByPlatform' && cfg.provisionVMAgent === false) {
      throw invalidParameter(`${at}.${own}.provisionVMAgent`, 'must be true when patchMode is AutomaticByPlatform (the VM agent installs the patches).');
    }
  }
}

function defaultMode(os: OsType, kind: 'vm' | 'arc'): PatchMode {
  return kind === 'vm' && os === 'windows' ? 'AutomaticByOS' : 'ImageDefault';
}

/** The patch settings a stored osProfile means, with Azure's defaults for what it leaves out. */
export function effectivePatchSettings(osProfile: unknown, os: OsType, kind: 'vm' | 'arc'): EffectivePatchSettings {
  const cfg = isObj(osProfile) ? osProfile[os === 'windows' ? 'windowsConfiguration' : 'linuxConfiguration'] : undefined;
  const ps = isObj(cfg) && isObj(cfg.patchSettings) ? cfg.patchSettings : {};
  const abp = isObj(ps.automaticByPlatformSettings) ? ps.automaticByPlatformSettings : {};
  const reboot = typeof abp.rebootSetting === 'string' && abp.rebootSetting !== 'Unknown' ? (abp.rebootSetting as RebootSetting) : 'IfRequired';
  return {
    patchMode: typeof ps.patchMode === 'string' ? (ps.patchMode as PatchMode) : defaultMode(os, kind),
    assessmentMode: typeof ps.assessmentMode === 'string' ? (ps.assessmentMode as AssessmentMode) : 'ImageDefault',
    rebootSetting: reboot,
    bypassPlatformSafetyChecksOnUserSchedule: abp.bypassPlatformSafetyChecksOnUserSchedule === true,
  };
}
