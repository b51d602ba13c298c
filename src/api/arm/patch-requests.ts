/**
 * The body of `installPatches` (VMs and Arc machines) checked and turned into a PatchInstallRequest:
 * `maximumDuration` an ISO 8601 duration within Azure's range, `rebootSetting` one of three,
 * classifications and masks of the machine's own OS. Every problem is an ARM error naming the field.
 */
import type { OsType } from '../../model/fleet.js';
import type { PatchClassification, PatchInstallRequest, RebootSetting } from '../../model/patches.js';
import { LINUX_CLASSIFICATIONS, WINDOWS_CLASSIFICATIONS } from '../../model/patches.js';
import type { ScheduledPatches } from '../../model/patch-runs.js';
import { durationMs } from '../../model/upgrade-policy.js';
import { ArmError, badRequest, invalidParameter } from './errors.js';

/** Azure's range for `maximumDuration` of an on-demand installation. */
export const MIN_INSTALL_DURATION_MS = 30 * 60_000;
export const MAX_INSTALL_DURATION_MS = 4 * 3_600_000;
/** Bounds of the lists a request may carry (docs/patching.md#limits). */
export const MAX_PATCH_LIST = 100;
const MAX_MASK_LENGTH = 128;
const MASK = /^[A-Za-z0-9*][A-Za-z0-9.+_:*~=<>-]*$/;
const KB = /^(KB)?\d{6,8}$/i;
const REBOOT: readonly RebootSetting[] = ['IfRequired', 'Never', 'Always'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringList(v: unknown, where: string, check: (s: string) => string | null): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidParameter(where, 'expected a list of strings.');
  if (v.length > MAX_PATCH_LIST) throw invalidParameter(where, `at most ${MAX_PATCH_LIST} entries (limit maxPatchList).`);
  return v.map((x, i) => {
    if (typeof x !== 'string') throw invalidParameter(`${where}[${i}]`, 'expected a string.');
    const problem = check(x);
    if (problem) throw invalidParameter(`${where}[${i}]`, problem);
    return x;
  });
}

/** Checks an installPatches body for a machine of `os`; `key` becomes the request's idempotency key. */
export function parseInstallRequest(body: unknown, os: OsType, key: string): PatchInstallRequest {
  if (!isObj(body)) throw badRequest('InvalidRequestContent', 'The request body is missing or not a JSON object; expected {"maximumDuration","rebootSetting",...}.');
  const known = ['maximumDuration', 'rebootSetting', 'linuxParameters', 'windowsParameters'];
  const extra = Object.keys(body).find((k) => !known.includes(k));
  if (extra !== undefined) throw invalidParameter(extra.slice(0, 64), `unknown property; expected one of ${known.join(', ')}.`);
  const md = body.maximumDuration;
  if (typeof md !== 'string' || md.length > 32) throw invalidParameter('maximumDuration', 'required: an ISO 8601 duration such as PT2H.');
  const ms = durationMs(md);
  if (!Number.isFinite(ms)) throw invalidParameter('maximumDuration', `'${md}' is not an ISO 8601 duration such as PT2H.`);
  if (ms < MIN_INSTALL_DURATION_MS || ms > MAX_INSTALL_DURATION_MS) throw invalidParameter('maximumDuration', `${md} is out of range: from PT30M to PT4H.`);
  const rs = body.rebootSetting;
  if (typeof rs !== 'string' || !REBOOT.includes(rs as RebootSetting)) throw invalidParameter('rebootSetting', `required: one of ${REBOOT.join(', ')}.`);
  const own = os === 'windows' ? 'windowsParameters' : 'linuxParameters';
  const other = os === 'windows' ? 'linuxParameters' : 'windowsParameters';
  if (body[other] !== undefined && body[other] !== null) throw invalidParameter(other, `the machine runs ${os === 'windows' ? 'Windows' : 'Linux'}: give ${own}, not ${other}.`);
  const params = body[own];
  if (!isObj(params)) throw invalidParameter(own, 'required: the classifications (and masks) to install.');
  const allowed: readonly string[] = os === 'windows' ? WINDOWS_CLASSIFICATIONS : LINUX_CLASSIFICATIONS;
  const classifications = stringList(params.classificationsToInclude, `${own}.classificationsToInclude`,
    (c) => (allowed.includes(c) ? null : `'${c.slice(0, 40)}' is not a ${os === 'windows' ? 'Windows' : 'Linux'} classification; expected one of ${allowed.join(', ')}.`)) as PatchClassification[];
  let include: string[];
  let exclude: string[];
  let excludeKbsRequiringReboot: boolean | undefined;
  if (os === 'windows') {
    const knownW = ['classificationsToInclude', 'kbNumbersToInclude', 'kbNumbersToExclude', 'excludeKbsRequiringReboot', 'maxPatchPublishDate', 'patchNameMasksToInclude', 'patchNameMasksToExclude'];
    const x = Object.keys(params).find((k) => !knownW.includes(k));
    if (x !== undefined) throw invalidParameter(`${own}.${x.slice(0, 64)}`, 'unknown property.');
    const kb = (s: string) => (KB.test(s) ? null : `'${s.slice(0, 40)}' is not a KB number (6 to 8 digits, optionally after KB).`);
    include = stringList(params.kbNumbersToInclude, `${own}.kbNumbersToInclude`, kb).map((s) => s.replace(/^KB/i, ''));
    exclude = stringList(params.kbNumbersToExclude, `${own}.kbNumbersToExclude`, kb).map((s) => s.replace(/^KB/i, ''));
    if (params.excludeKbsRequiringReboot !== undefined && typeof params.excludeKbsRequiringReboot !== 'boolean') {
      throw invalidParameter(`${own}.excludeKbsRequiringReboot`, 'expected true or false.');
    }
    excludeKbsRequiringReboot = params.excludeKbsRequiringReboot as boolean | undefined;
  } else {
    const knownL = ['classificationsToInclude', 'packageNameMasksToInclude', 'packageNameMasksToExclude', 'maintenanceRunId'];
    const x = Object.keys(params).find((k) => !knownL.includes(k));
    if (x !== undefined) throw invalidParameter(`${own}.${x.slice(0, 64)}`, 'unknown property.');
    const rule = `letters, digits, . + _ : ~ = < > - and * wildcards, at most ${MAX_MASK_LENGTH} characters`;
    const mask = (s: string) => (s.length <= MAX_MASK_LENGTH && MASK.test(s) ? null : `'${s.slice(0, 40)}' is not a package name mask (${rule}).`);
    include = stringList(params.packageNameMasksToInclude, `${own}.packageNameMasksToInclude`, mask);
    exclude = stringList(params.packageNameMasksToExclude, `${own}.packageNameMasksToExclude`, mask);
  }
  if (classifications.length === 0 && include.length === 0) {
    throw invalidParameter(`${own}.classificationsToInclude`, 'nothing would be installed: name at least one classification (or a package or KB to include).');
  }
  const runId = params.maintenanceRunId;
  if (runId !== undefined && (typeof runId !== 'string' || runId.length > 128)) throw invalidParameter(`${own}.maintenanceRunId`, 'expected a string of at most 128 characters.');
  return {
    key, maximumDurationMs: ms, rebootSetting: rs as RebootSetting, classifications, include, exclude,
    ...(excludeKbsRequiringReboot !== undefined ? { excludeKbsRequiringReboot } : {}),
    ...(typeof runId === 'string' ? { maintenanceRunId: runId } : {}),
  };
}

export type { ScheduledPatches } from '../../model/patch-runs.js';

/**
 * Checks the `installPatches` of an InGuestPatch maintenance configuration: a reboot setting, and the
 * parameters of at least one OS, each as installPatches takes them. Errors name `properties.installPatches.…`.
 */
export function parseScheduledPatches(raw: unknown): ScheduledPatches {
  const at = 'properties.installPatches';
  if (!isObj(raw)) throw invalidParameter(at, 'InGuestPatch configurations need installPatches: {rebootSetting, linuxParameters and/or windowsParameters}.');
  const extra = Object.keys(raw).find((k) => !['rebootSetting', 'linuxParameters', 'windowsParameters'].includes(k));
  if (extra !== undefined) throw invalidParameter(`${at}.${extra.slice(0, 64)}`, 'unknown property; expected rebootSetting, linuxParameters or windowsParameters.');
  const rs = raw.rebootSetting ?? 'IfRequired';
  if (typeof rs !== 'string' || !REBOOT.includes(rs as RebootSetting)) throw invalidParameter(`${at}.rebootSetting`, `expected one of ${REBOOT.join(', ')}.`);
  const out: ScheduledPatches = { rebootSetting: rs as RebootSetting };
  for (const os of ['linux', 'windows'] as const) {
    const key = os === 'linux' ? 'linuxParameters' : 'windowsParameters';
    if (raw[key] === undefined || raw[key] === null) continue;
    try {
      out[os] = parseInstallRequest({ maximumDuration: 'PT1H', rebootSetting: rs, [key]: raw[key] }, os, '');
    } catch (e) {
      if (e instanceof ArmError && e.target) throw invalidParameter(`${at}.${e.target}`, e.message.slice(e.target.length + 2));
      throw e;
    }
  }
  if (!out.linux && !out.windows) throw invalidParameter(`${at}.linuxParameters`, 'name the patches of at least one OS: linuxParameters or windowsParameters.');
  return out;
}
