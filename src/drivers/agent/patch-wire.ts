/**
 * Guest OS patching between the engine's model and the agent's wire (pure): a patch request becomes a
 * goal-state entry, the agent's report becomes the result ARM returns (src/model/patches.ts, the
 * vocabulary of @azure/arm-compute's VirtualMachineAssessPatchesResult / InstallPatchesResult).
 */
import type { AvailablePatch, LINUX_CLASSIFICATIONS, PatchAssessment, PatchInstallation, PatchInstallRequest, RebootBehavior } from '../../model/patches.js';
import type { GoalStatePatchOperation, PatchClassification, PatchOperationReport, PatchReportEntry } from '../../protocol/agent-wire.js';
import { PATCH_LIMITS } from '../../protocol/agent-wire.js';
import { maskListProblem } from '../../protocol/package-masks.js';

/** R83: how long a patch reboot is announced before the agent performs it (Azure's Reboot notice). */
export const REBOOT_NOTICE_SECONDS = 15 * 60;

const LINUX: ReadonlySet<string> = new Set<(typeof LINUX_CLASSIFICATIONS)[number]>(['Critical', 'Security', 'Other']);

export class PatchRequestError extends Error {}

/** The goal-state entry of an installation; throws PatchRequestError for what the agent would refuse. */
export function installOperationOf(operationId: string, req: PatchInstallRequest, rebootNoticeSeconds = REBOOT_NOTICE_SECONDS): GoalStatePatchOperation {
  const seconds = Math.round(req.maximumDurationMs / 1000);
  if (seconds < PATCH_LIMITS.minDurationSeconds || seconds > PATCH_LIMITS.maxDurationSeconds) {
    throw new PatchRequestError(`maximumDuration must be between ${PATCH_LIMITS.minDurationSeconds / 60} minutes and ${PATCH_LIMITS.maxDurationSeconds / 3600} hours on a Linux machine`);
  }
  const classes = req.classifications.filter((c) => LINUX.has(c)) as PatchClassification[];
  const odd = req.classifications.filter((c) => !LINUX.has(c));
  if (odd.length > 0) throw new PatchRequestError(`classifications ${odd.join(', ')} do not exist on Linux (Critical, Security, Other)`);
  // The API's rule too (src/protocol/package-masks.ts): a mask the API took never fails here.
  for (const [name, list] of [['packageNameMasksToInclude', req.include], ['packageNameMasksToExclude', req.exclude]] as const) {
    const problem = maskListProblem(list);
    if (problem) throw new PatchRequestError(`${name}${problem.index === null ? '' : `[${problem.index}]`}: ${problem.message}`);
  }
  return {
    operationId,
    kind: 'install',
    install: {
      maximumDurationSeconds: seconds,
      rebootSetting: req.rebootSetting,
      classificationsToInclude: [...new Set(classes)],
      packageNameMasksToInclude: req.include,
      packageNameMasksToExclude: req.exclude,
      rebootNoticeSeconds,
      ...(req.rebootEventId ? { rebootEventId: req.rebootEventId } : {}),
    },
  };
}

export const assessOperationOf = (operationId: string): GoalStatePatchOperation => ({ operationId, kind: 'assess' });

/** Linux patch ids as Azure spells them: package name and version. */
const patchIdOf = (p: PatchReportEntry) => `${p.name}_${p.version}`;
/** The model has no Unknown: a package manager that cannot tell means it may ask for one. */
const behaviour = (b: PatchReportEntry['rebootBehavior']): RebootBehavior => (b === 'Unknown' ? 'CanRequestReboot' : b);
const errorOf = (r: PatchOperationReport) => (r.error ? { error: { code: r.error.code, message: r.error.message } } : {});

/** The assessment result of a finished `assess` report. publishedDate: package managers do not say; the assessment's time stands in. */
export function assessmentOf(r: PatchOperationReport): PatchAssessment {
  const availablePatches: AvailablePatch[] = r.patches.map((p) => ({
    patchId: patchIdOf(p), name: p.name, version: p.version, classifications: p.classifications, rebootBehavior: behaviour(p.rebootBehavior), publishedDate: r.startedAt,
  }));
  return { status: r.status, startDateTime: r.startedAt, rebootPending: r.rebootPending, availablePatches, ...errorOf(r) };
}

/** The installation result of a finished `install` report. */
export function installationOf(r: PatchOperationReport): PatchInstallation {
  return {
    status: r.status,
    startDateTime: r.startedAt,
    rebootStatus: r.rebootStatus,
    maintenanceWindowExceeded: r.maintenanceWindowExceeded,
    patches: r.patches.map((p) => ({ patchId: patchIdOf(p), name: p.name, version: p.version, classifications: p.classifications, installationState: p.installationState ?? 'NotSelected' })),
    ...errorOf(r),
  };
}
