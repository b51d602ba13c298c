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
import { MAX_MASKS_PER_LIST, packageMaskProblem } from '../../protocol/package-masks.js';
import { ArmError, badRequest, invalidParameter } from './errors.js';

/** Azure's range for `maximumDuration` of an on-demand installation. */
export const MIN_INSTALL_DURATION_MS = 30 * 60_000;
export const MAX_INSTALL_DURATION_MS = 4 * 3_600_000;
/** Bounds of the lists a request may carry (docs/patching.md#limits). */
export const MAX_PATCH_LIST = 100;
const KB = /^(KB)?\d{6,8}$/i;
const REBOOT: readonly RebootSetting[] = ['IfRequired', 'Never', 'Always'];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A problem with a field; the API answers the first, a scenario lists them all. */
export interface PatchProblem { target: string; message: string }

function stringList(v: unknown, where: string, check: (s: string) => string | null, problems: PatchProblem[], max = MAX_PATCH_LIST): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return none(problems, where, 'expected a list of strings.');
  if (v.length > max) {
    return none(problems, where, max === MAX_PATCH_LIST ? `at most ${max} entries (limit maxPatchList).` : `at most ${max} package name masks per list.`);
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x !== 'string') return void problems.push({ target: `${where}[${i}]`, message: 'expected a string.' });
    const problem = check(x);
    if (problem) problems.push({ target: `${where}[${i}]`, message: problem });
    else out.push(x);
  });
  return out;
}

function none(problems: PatchProblem[], target: string, message: string): [] {
  problems.push({ target, message });
  return [];
}

/** The first problem as the API's error (ARM answers one). */
function firstAsError(problems: readonly PatchProblem[]): ArmError | null {
  const p = problems[0];
  return p ? invalidParameter(p.target, p.message) : null;
}

/** Checks an installPatches body for a machine of `os`; `key` becomes the request's idempotency key. */
export function parseInstallRequest(body: unknown, os: OsType, key: string): PatchInstallRequest {
  if (!isObj(body)) throw badRequest('InvalidRequestContent', 'The request body is missing or not a JSON object; expected {"maximumDuration","rebootSetting",...}.');
  const problems: PatchProblem[] = [];
  const request = checkInstallRequest(body, os, key, problems);
  const err = firstAsError(problems);
  if (err) throw err;
  return request!;
}

/**
 * The checks of parseInstallRequest, every problem collected in the order the API reports them (its
 * first is the API's answer); null when there is any. Checks that need an earlier field whole stop there.
 */
function checkInstallRequest(body: Obj, os: OsType, key: string, problems: PatchProblem[]): PatchInstallRequest | null {
  const add = (target: string, message: string) => void problems.push({ target, message });
  const known = ['maximumDuration', 'rebootSetting', 'linuxParameters', 'windowsParameters'];
  for (const extra of Object.keys(body).filter((k) => !known.includes(k))) add(extra.slice(0, 64), `unknown property; expected one of ${known.join(', ')}.`);
  const md = body.maximumDuration;
  let ms = NaN;
  if (typeof md !== 'string' || md.length > 32) add('maximumDuration', 'required: an ISO 8601 duration such as PT2H.');
  else {
    ms = durationMs(md);
    if (!Number.isFinite(ms)) add('maximumDuration', `'${md}' is not an ISO 8601 duration such as PT2H.`);
    else if (ms < MIN_INSTALL_DURATION_MS || ms > MAX_INSTALL_DURATION_MS) add('maximumDuration', `${md} is out of range: from PT30M to PT4H.`);
  }
  const rs = body.rebootSetting;
  if (typeof rs !== 'string' || !REBOOT.includes(rs as RebootSetting)) add('rebootSetting', `required: one of ${REBOOT.join(', ')}.`);
  const own = os === 'windows' ? 'windowsParameters' : 'linuxParameters';
  const other = os === 'windows' ? 'linuxParameters' : 'windowsParameters';
  if (body[other] !== undefined && body[other] !== null) add(other, `the machine runs ${os === 'windows' ? 'Windows' : 'Linux'}: give ${own}, not ${other}.`);
  const params = body[own];
  if (!isObj(params)) {
    add(own, 'required: the classifications (and masks) to install.');
    return null;
  }
  const allowed: readonly string[] = os === 'windows' ? WINDOWS_CLASSIFICATIONS : LINUX_CLASSIFICATIONS;
  const classifications = stringList(params.classificationsToInclude, `${own}.classificationsToInclude`,
    (c) => (allowed.includes(c) ? null : `'${c.slice(0, 40)}' is not a ${os === 'windows' ? 'Windows' : 'Linux'} classification; expected one of ${allowed.join(', ')}.`),
    problems) as PatchClassification[];
  let include: string[];
  let exclude: string[];
  let excludeKbsRequiringReboot: boolean | undefined;
  if (os === 'windows') {
    const knownW = ['classificationsToInclude', 'kbNumbersToInclude', 'kbNumbersToExclude', 'excludeKbsRequiringReboot', 'maxPatchPublishDate', 'patchNameMasksToInclude', 'patchNameMasksToExclude'];
    for (const x of Object.keys(params).filter((k) => !knownW.includes(k))) add(`${own}.${x.slice(0, 64)}`, 'unknown property.');
    const kb = (s: string) => (KB.test(s) ? null : `'${s.slice(0, 40)}' is not a KB number (6 to 8 digits, optionally after KB).`);
    include = stringList(params.kbNumbersToInclude, `${own}.kbNumbersToInclude`, kb, problems).map((s) => s.replace(/^KB/i, ''));
    exclude = stringList(params.kbNumbersToExclude, `${own}.kbNumbersToExclude`, kb, problems).map((s) => s.replace(/^KB/i, ''));
    if (params.excludeKbsRequiringReboot !== undefined && typeof params.excludeKbsRequiringReboot !== 'boolean') {
      add(`${own}.excludeKbsRequiringReboot`, 'expected true or false.');
    } else excludeKbsRequiringReboot = params.excludeKbsRequiringReboot as boolean | undefined;
  } else {
    const knownL = ['classificationsToInclude', 'packageNameMasksToInclude', 'packageNameMasksToExclude', 'maintenanceRunId'];
    for (const x of Object.keys(params).filter((k) => !knownL.includes(k))) add(`${own}.${x.slice(0, 64)}`, 'unknown property.');
    // One rule with the agent driver (src/protocol/package-masks.ts): what the API takes, an agent takes.
    include = stringList(params.packageNameMasksToInclude, `${own}.packageNameMasksToInclude`, packageMaskProblem, problems, MAX_MASKS_PER_LIST);
    exclude = stringList(params.packageNameMasksToExclude, `${own}.packageNameMasksToExclude`, packageMaskProblem, problems, MAX_MASKS_PER_LIST);
  }
  // Only when the lists themselves were fine: an empty list after a refused entry is not "nothing to install".
  if (problems.length === 0 && classifications.length === 0 && include.length === 0) {
    add(`${own}.classificationsToInclude`, 'nothing would be installed: name at least one classification (or a package or KB to include).');
  }
  const runId = params.maintenanceRunId;
  if (runId !== undefined && (typeof runId !== 'string' || runId.length > 128)) add(`${own}.maintenanceRunId`, 'expected a string of at most 128 characters.');
  if (problems.length > 0) return null;
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
  const problems: PatchProblem[] = [];
  const out = checkScheduledPatches(raw, problems);
  const err = firstAsError(problems);
  if (err) throw err;
  return out!;
}

/** The checks of parseScheduledPatches with every problem collected (a scenario reports them all); null when there is any. */
export function checkScheduledPatches(raw: unknown, problems: PatchProblem[]): ScheduledPatches | null {
  const at = 'properties.installPatches';
  const add = (target: string, message: string) => void problems.push({ target, message });
  if (!isObj(raw)) {
    add(at, 'InGuestPatch configurations need installPatches: {rebootSetting, linuxParameters and/or windowsParameters}.');
    return null;
  }
  for (const extra of Object.keys(raw).filter((k) => !['rebootSetting', 'linuxParameters', 'windowsParameters'].includes(k))) {
    add(`${at}.${extra.slice(0, 64)}`, 'unknown property; expected rebootSetting, linuxParameters or windowsParameters.');
  }
  const rs = raw.rebootSetting ?? 'IfRequired';
  const rebootOk = typeof rs === 'string' && REBOOT.includes(rs as RebootSetting);
  if (!rebootOk) add(`${at}.rebootSetting`, `expected one of ${REBOOT.join(', ')}.`);
  const out: ScheduledPatches = { rebootSetting: rs as RebootSetting };
  let named = false;
  for (const os of ['linux', 'windows'] as const) {
    const key = os === 'linux' ? 'linuxParameters' : 'windowsParameters';
    if (raw[key] === undefined || raw[key] === null) continue;
    named = true;
    const own: PatchProblem[] = [];
    // The reboot setting was checked above: each OS's parameters are checked with a valid one.
    const request = checkInstallRequest({ maximumDuration: 'PT1H', rebootSetting: rebootOk ? rs : 'IfRequired', [key]: raw[key] }, os, '', own);
    for (const p of own) add(`${at}.${p.target}`, p.message);
    if (request) out[os] = request;
  }
  if (!named) add(`${at}.linuxParameters`, 'name the patches of at least one OS: linuxParameters or windowsParameters.');
  return problems.length > 0 ? null : out;
}
