/**
 * The scenario file's schema (docs/scenarios.md). Shapes and ranges are checked here; references
 * between parts (regions, extensions, sets) are checked when the scenario is compiled.
 */
import { DateTime, Duration } from 'luxon';
import { z } from 'zod';
import { isImageVersion } from '../model/image-version.js';
import { isVersion, isVersionPrefix } from '../model/version.js';
import { isBaselineVersion } from '../model/patch-baseline.js';

const name = z.string().min(1, { error: 'expected a non-empty name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected letters, digits, ".", "_" or "-", starting with a letter or digit' });
/**
 * Text that `sim` and `plan` print on the terminal (the scenario's name, publishers, types, offers, skus): one line, no
 * C0/C1 control characters (an escape sequence in a shared scenario file rewrote the reader's terminal), no line
 * separators, no bidirectional overrides or isolates (text that reads otherwise than it is stored), as the API's
 * operator texts (src/api/arm/validation.ts).
 */
const CONTROL_OR_BIDI = /[\u0000-\u001f\u007f-\u009f\u2028-\u202e\u2066-\u2069]/;
const printed = z.string().min(1).refine((t) => !CONTROL_OR_BIDI.test(t), {
  error: 'expected one line of text without control characters (escapes, line breaks, tabs), line separators or bidirectional overrides',
});
const VERSION_EXPECTED = 'expected a version of four numbers such as 1.30.2.0';
const version = z.string().refine(isVersion, { error: VERSION_EXPECTED });
const IMAGE_VERSION_EXPECTED = 'expected an image version of three numbers such as 1.0.0 or 22.04.202601010';
const imageVersion = z.string().refine(isImageVersion, { error: IMAGE_VERSION_EXPECTED });
const FAILURE_VERSION_EXPECTED = `${VERSION_EXPECTED}, or an image version of three numbers such as 22.04.202601010`;
const versionPrefix = z.string().refine(isVersionPrefix, { error: 'expected a version of one to four numbers such as 1.30' });
const percent = z
  .number()
  .int({ error: 'expected a whole percentage from 1 to 100' })
  .min(1, { error: 'expected a percentage from 1 to 100' })
  .max(100, { error: 'expected a percentage from 1 to 100' });
const percent0 = z
  .number()
  .int({ error: 'expected a whole percentage from 0 to 100' })
  .min(0, { error: 'expected a percentage from 0 to 100' })
  .max(100, { error: 'expected a percentage from 0 to 100' });
const probability = z.number().min(0, { error: 'expected a probability from 0 to 1' }).max(1, { error: 'expected a probability from 0 to 1' });
const count = z.number().int({ error: 'expected a whole number' }).min(0, { error: 'expected a count of 0 or more' });
const positive = z.number().int({ error: 'expected a whole number' }).min(1, { error: 'expected a number of 1 or more' });

/**
 * Why `text` is not an ISO 8601 duration of zero or more, or null. Luxon also accepts `PT-1H`,
 * `-PT5M` and a bare `P`; none of them is a length of time a scenario can use.
 */
function durationProblem(text: string): string | null {
  if (!/^-?P.*\d/.test(text) || !Duration.fromISO(text).isValid) return 'expected an ISO 8601 duration such as PT6H or P2D';
  if (text.includes('-')) return `expected a positive ISO 8601 duration such as PT6H, not a negative one (${text})`;
  return null;
}

/** Limits of a duration field, as ISO durations so the message can quote them. */
interface DurationRange { min?: string; max?: string; aboveZero?: boolean }

function rangeProblem(text: string, r: DurationRange): string | null {
  const ms = Duration.fromISO(text).toMillis();
  const tooShort = r.aboveZero ? ms <= 0 : r.min !== undefined && ms < Duration.fromISO(r.min).toMillis();
  const tooLong = r.max !== undefined && ms > Duration.fromISO(r.max).toMillis();
  if (!tooShort && !tooLong) return null;
  const want = r.max !== undefined ? `from ${r.min ?? 'PT0S'} to ${r.max}` : r.aboveZero ? 'longer than zero' : `of at least ${r.min}`;
  return `expected a duration ${want}, got ${text}`;
}

/** A duration of zero or more, within `range` when given; one message per field. */
function duration(range: DurationRange = {}) {
  return z.string().superRefine((text, ctx) => {
    const problem = durationProblem(text) ?? rangeProblem(text, range);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** `Z` or an offset such as `+01:00` at the end of the time: without one luxon reads the local zone. */
const HAS_ZONE = /T[^+-]*(Z|[+-]\d{2}(:?\d{2})?)$/i;
const INSTANT_EXPECTED = 'expected an ISO 8601 instant (2026-01-05T00:00:00Z) or an offset from the start (P1D, PT6H)';

function instantProblem(text: string): string | null {
  if (/^-?P/.test(text)) {
    const problem = durationProblem(text);
    if (problem === null) return null;
    const negative = text.includes('-') && Duration.fromISO(text).isValid;
    return negative ? `expected an offset of zero or more from the start (a positive ISO 8601 duration such as PT6H), not a negative one (${text})` : INSTANT_EXPECTED;
  }
  if (!/T/.test(text) || !DateTime.fromISO(text, { setZone: true }).isValid) return INSTANT_EXPECTED;
  if (!HAS_ZONE.test(text)) return `expected a time zone at the end of ${text}: Z for UTC or an offset such as +01:00 (2026-01-05T00:00:00Z); without one the time would depend on the computer's zone`;
  return null;
}

/** An instant with an explicit zone, or an offset of zero or more from `start`. */
const instant = z.string().superRefine((text, ctx) => {
  const problem = instantProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const os = z.enum(['linux', 'windows'], { error: 'expected "linux" or "windows"' });
/** An Azure region has at most 3 zones (the ARM API takes no more); a longer list is a mistake, and 100,000 zones took minutes. */
export const MAX_ZONES = 3;
const zones = z.array(printed).max(MAX_ZONES, { error: `expected at most ${MAX_ZONES} zones (an Azure region has up to ${MAX_ZONES})` });
/** Zones of a region or a scale set: a zone listed twice would double its share of the instances. */
const distinctZones = zones.superRefine((list, ctx) => {
  if (list.length > MAX_ZONES) return; // reported above; checking a huge list pair by pair would take minutes
  const seen = new Set<string>();
  list.forEach((zone, i) => {
    if (seen.has(zone)) ctx.addIssue({ code: 'custom', path: [i], message: `zone "${zone}" is listed twice; expected each zone once` });
    seen.add(zone);
  });
});
const latency = z.object({ median: z.number().positive({ error: 'expected seconds above 0' }), p95: z.number().positive({ error: 'expected seconds above 0' }) }).strict().superRefine((l, ctx) => {
  if (l.p95 < l.median) ctx.addIssue({ code: 'custom', path: ['p95'], message: `expected a 95th percentile of at least the median (${l.median}), got ${l.p95}` });
});

export const failureModelSchema = z.object({
  installFailure: probability.optional(),
  unhealthyAfterUpgrade: probability.optional(),
  rollbackFailure: probability.optional(),
  installSeconds: latency.optional(),
  healthSeconds: latency.optional(),
  rollbackSeconds: latency.optional(),
  reimageSeconds: latency.optional(),
}).strict();

const rollingUpgradePolicy = z.object({
  maxBatchInstancePercent: percent.optional(),
  maxUnhealthyInstancePercent: percent.optional(),
  maxUnhealthyUpgradedInstancePercent: percent0.optional(),
  // The sign is checked with the compiled policy (validateRollingPolicy), as the API checks it.
  pauseTimeBetweenBatches: z.string().refine((s) => /^-?P.*\d/.test(s) && Duration.fromISO(s).isValid, { error: 'expected an ISO 8601 duration such as PT0S' }).optional(),
  enableCrossZoneUpgrade: z.boolean().optional(),
  prioritizeUnhealthyInstances: z.boolean().optional(),
  rollbackFailedInstancesOnPolicyBreach: z.boolean().optional(),
  maxSurge: z.boolean().optional(),
}).strict();

const upgradePolicy = z.object({
  mode: z.enum(['Automatic', 'Manual', 'Rolling'], { error: 'expected Automatic, Manual or Rolling' }).optional(),
  rollingUpgradePolicy: rollingUpgradePolicy.optional(),
  automaticOSUpgradePolicy: z.object({
    enableAutomaticOSUpgrade: z.boolean().optional(),
    disableAutomaticRollback: z.boolean().optional(),
    useRollingUpgradePolicy: z.boolean().optional(),
    osRollingUpgradeDeferral: z.boolean().optional(),
  }).strict().optional(),
}).strict();

const extensionTemplate = z.object({
  publisher: printed,
  type: printed,
  typeHandlerVersion: versionPrefix,
  autoUpgradeMinorVersion: z.boolean().optional(),
  /** Defaults to true on Arc machines and false elsewhere (R3). */
  enableAutomaticUpgrade: z.boolean().optional(),
  /** The version installed at the start; by default what R4 installs from the catalog. */
  installed: version.optional(),
  settings: z.record(z.string(), z.unknown()).optional(),
}).strict();

/** A platform image of the `images` section, as a scale set names it (its `imageReference`). */
const imageRef = z.object({
  publisher: printed,
  offer: printed,
  sku: printed,
  version: z.string().refine((v) => v.toLowerCase() === 'latest' || isImageVersion(v), { error: `expected latest or ${IMAGE_VERSION_EXPECTED.slice('expected '.length)}` }).optional(),
}).strict();

/** Where and when a version's copy to a region completes (R64): an instant or an offset from the start. */
const replication = z.object({ region: name, at: instant.optional() }).strict();

const imageIdentity = { publisher: printed, offer: printed, sku: printed };

const platformImage = z.object({
  ...imageIdentity,
  osType: z.enum(['Linux', 'Windows'], { error: 'expected Linux or Windows' }).optional(),
  versions: z.array(z.object({ version: imageVersion, replications: z.array(replication).optional() }).strict()).min(1, { error: 'expected at least one image version' }),
}).strict();

/** A machine's guest patch settings (docs/patching.md); `AutomaticByPlatform` joins platform-orchestrated patching (R76). */
const patchSettings = z.object({
  patchMode: z.enum(['ImageDefault', 'AutomaticByOS', 'AutomaticByPlatform', 'Manual'], { error: 'expected ImageDefault, AutomaticByOS, AutomaticByPlatform or Manual' }),
  rebootSetting: z.enum(['IfRequired', 'Never', 'Always'], { error: 'expected IfRequired, Never or Always' }).optional(),
  /** With AutomaticByPlatform: InGuestPatch schedules may patch the machine (R75; Azure's prerequisite). */
  bypassPlatformSafetyChecksOnUserSchedule: z.boolean().optional(),
}).strict();

const placementCommon = {
  region: name,
  subscription: name,
  resourceGroup: name.optional(),
  os: os.optional(),
  extensions: z.array(name).optional(),
  patchSettings: patchSettings.optional(),
};

const scaleSet = z.object({
  name,
  ...placementCommon,
  zones: distinctZones.optional(),
  capacity: positive,
  count: positive.optional(),
  updateDomains: z.number().int().min(1).max(20, { error: 'expected 1 to 20 update domains' }).optional(),
  faultDomains: z.number().int().min(1).max(5, { error: 'expected 1 to 5 fault domains' }).optional(),
  upgradePolicy: upgradePolicy.optional(),
  applicationHealth: z.boolean().optional(),
  healthGracePeriod: duration({ min: 'PT10S', max: 'PT2H' }).optional(),
  image: imageRef.optional(),
}).strict();

const availabilitySet = z.object({
  name,
  ...placementCommon,
  vms: positive,
  count: positive.optional(),
  updateDomains: z.number().int().min(1).max(20, { error: 'expected 1 to 20 update domains' }).optional(),
  faultDomains: z.number().int().min(1).max(3, { error: 'expected 1 to 3 fault domains' }).optional(),
}).strict();

const machineGroup = z.object({
  name: name.optional(),
  ...placementCommon,
  count: positive,
  zones: zones.optional(),
}).strict();

const range = z.object({ min: positive, max: positive }).strict().superRefine((r, ctx) => {
  if (r.min > r.max) ctx.addIssue({ code: 'custom', message: `expected min to be at most max, got min ${r.min} and max ${r.max}` });
});

const generate = z
  .object({
    regions: z
      .object({ count: positive, zones: z.number().int().min(0).max(3).optional(), prefix: name.optional() })
      .strict()
      .optional(),
    subscriptions: positive.optional(),
    os: os.optional(),
    extensions: z.array(name).min(1, { error: 'expected at least one extension name' }),
    scaleSets: z
      .object({
        count,
        capacity: range,
        zonalShare: probability.optional(),
        applicationHealthShare: probability.optional(),
        image: imageRef.optional(),
        osUpgradeShare: probability.optional(),
      })
      .strict()
      .optional(),
    availabilitySets: z.object({ count, vms: range }).strict().optional(),
    vms: count.optional(),
    arcMachines: count.optional(),
    /** Standalone VMs are added until the fleet has this many machines. */
    totalMachines: count.optional(),
  })
  .strict();

const selector = {
  extension: name,
  scaleSet: name.optional(),
  region: name.optional(),
  machines: z.array(z.string().min(1)).optional(),
  share: probability.optional(),
};

/** A maintenance configuration (R70): the window fields as Microsoft.Maintenance writes them; checked when compiled. */
const maintenanceConfiguration = z.object({
  name,
  scope: z.enum(['Extension', 'OSImage', 'Host', 'InGuestPatch'], { error: 'expected Extension, OSImage, Host or InGuestPatch' }).optional(),
  /** InGuestPatch only: rebootSetting and linuxParameters/windowsParameters as the API takes them (checked when compiled). */
  installPatches: z.record(z.string(), z.unknown()).optional(),
  startDateTime: z.string(),
  expirationDateTime: z.string().optional(),
  duration: z.string(),
  timeZone: z.string(),
  recurEvery: z.string(),
  emergencyBypass: z.boolean().optional(),
}).strict();

/** Which machines a configuration is assigned to: a set (scale set or availability set) or machine ids. */
const maintenanceTarget = z.object({
  configuration: name,
  scaleSet: name.optional(),
  machines: z.array(z.string().min(1)).min(1, { error: 'expected at least one machine id' }).optional(),
}).strict().refine((t) => (t.scaleSet === undefined) !== (t.machines === undefined), {
  error: 'expected exactly one of scaleSet, machines',
});

/** A dynamic scope of an InGuestPatch schedule (R75): the VMs and Arc machines matching every filter given, picked when a run starts. */
const dynamicScope = z.object({
  subscriptions: z.array(name).max(100).optional(),
  resourceGroups: z.array(name).max(100).optional(),
  locations: z.array(name).max(100).optional(),
  osTypes: z.array(z.enum(['Linux', 'Windows'], { error: 'expected Linux or Windows' })).max(2).optional(),
}).strict();

/** An assignment of `maintenance.assignments`: a set, machine ids, or (InGuestPatch only) a dynamic scope. */
const maintenanceAssignment = z.object({
  configuration: name,
  scaleSet: name.optional(),
  machines: z.array(z.string().min(1)).min(1, { error: 'expected at least one machine id' }).optional(),
  dynamicScope: dynamicScope.optional(),
}).strict().refine((t) => [t.scaleSet, t.machines, t.dynamicScope].filter((x) => x !== undefined).length === 1, {
  error: 'expected exactly one of scaleSet, machines, dynamicScope',
});

const maintenance = z.object({
  configurations: z.array(maintenanceConfiguration).optional(),
  assignments: z.array(maintenanceAssignment).optional(),
}).strict();

const event = z.object({
  at: instant,
  publish: z.object({
    extension: name,
    version,
    os: z.array(os).min(1).optional(),
    regions: z.array(name).optional(),
    critical: z.boolean().optional(),
  }).strict().optional(),
  setAutomaticUpgrade: z.object({ ...selector, enabled: z.boolean() }).strict().optional(),
  manualUpgrade: z.object({ ...selector, version }).strict().optional(),
  supportAutomaticUpgrade: z.object({ extension: name, supported: z.boolean() }).strict().optional(),
  assignMaintenance: maintenanceTarget.optional(),
  unassignMaintenance: maintenanceTarget.optional(),
  publishImage: z.object({ ...imageIdentity, version: imageVersion, replications: z.array(replication) }).strict().optional(),
  replicateImage: z.object({ ...imageIdentity, version: imageVersion, region: name }).strict().optional(),
  /** R76: a platform patch baseline, a date (2026.1.12): the OS's Critical and Security patches published by then. */
  publishPatchBaseline: z.object({
    os, version: z.string().refine(isBaselineVersion, { error: 'expected a patch baseline date such as 2026.1.12' }), critical: z.boolean().optional(),
  }).strict().optional(),
}).strict().refine((e) => [
  e.publish, e.setAutomaticUpgrade, e.manualUpgrade, e.supportAutomaticUpgrade, e.assignMaintenance, e.unassignMaintenance, e.publishImage, e.replicateImage,
  e.publishPatchBaseline,
].filter(Boolean).length === 1, {
  error: 'expected exactly one of publish, setAutomaticUpgrade, manualUpgrade, supportAutomaticUpgrade, assignMaintenance, unassignMaintenance, publishImage, replicateImage, publishPatchBaseline',
});

const profileOverride = z.object({
  phaseBake: duration().optional(),
  bound: duration({ aboveZero: true }).optional(),
  // A held set is looked at again after gateRecheck; near zero the engine would spin within one instant.
  retryArc: duration({ min: 'PT1M' }).optional(),
  retryVm: duration({ min: 'PT1M' }).optional(),
  gateRecheck: duration({ min: 'PT1M' }).optional(),
  maxPhaseFailurePercent: percent0.optional(),
  groupMaxUnhealthyUpgradedPercent: percent0.optional(),
  // false lifts the fleet-wide verdict and the gradual fan-out, e.g. to isolate a per-machine rule in a test.
  releaseVerdict: z.boolean().optional(),
}).strict();

export const scenarioSchema = z
  .object({
    name: printed,
    description: z.string().optional(),
    start: instant,
    seed: z.number().int().optional(),
    horizon: duration({ aboveZero: true }).optional(),
    canaryRegions: z.array(name).optional(),
    profiles: z
      .object({ standard: profileOverride.optional(), critical: profileOverride.optional(), manual: profileOverride.optional() })
      .strict()
      .optional(),
    regions: z.array(z.object({ name, pair: name.nullable().optional(), zones: distinctZones.optional() }).strict()).optional(),
    catalog: z
      .array(
        z
          .object({
            publisher: printed,
            type: printed,
            supportsAutomaticUpgrade: z.boolean(),
            versions: z
              .array(
                z
                  .object({
                    version,
                    os: z.array(os).min(1).optional(),
                    regions: z.array(name).optional(),
                    critical: z.boolean().optional(),
                  })
                  .strict(),
              )
              .min(1, { error: 'expected at least one published version' }),
          })
          .strict(),
      )
      .min(1, { error: 'expected at least one extension type' }),
    extensions: z.record(name, extensionTemplate),
    fleet: z
      .object({
        scaleSets: z.array(scaleSet).optional(),
        availabilitySets: z.array(availabilitySet).optional(),
        vms: z.array(machineGroup).optional(),
        arcMachines: z.array(machineGroup).optional(),
        generate: generate.optional(),
      })
      .strict(),
    images: z.array(platformImage).optional(),
    maintenance: maintenance.optional(),
    events: z.array(event).optional(),
    failures: z
      .object({
        default: failureModelSchema.optional(),
        versions: z
          .record(
            z.string().refine((v) => isVersion(v) || isImageVersion(v), { error: FAILURE_VERSION_EXPECTED }),
            failureModelSchema,
            { error: (iss) => (iss.code === 'invalid_key' ? FAILURE_VERSION_EXPECTED : undefined) },
          )
          .optional(),
        slowAgents: z
          .object({ share: probability, factor: z.number().min(1, { error: 'expected a factor of 1 or more' }) })
          .strict()
          .optional(),
        background: z
          .array(
            z
              .object({ at: instant, duration: duration(), region: name.optional(), scaleSet: name.optional(), share: probability })
              .strict(),
          )
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type ScenarioInput = z.infer<typeof scenarioSchema>;
export type ScenarioEventInput = z.infer<typeof event>;
export type MaintenanceTargetInput = z.infer<typeof maintenanceTarget>;
export type FailureModelInput = z.infer<typeof failureModelSchema>;
export type ImageRefInput = z.infer<typeof imageRef>;
export type ReplicationInput = z.infer<typeof replication>;
export type MaintenanceAssignmentInput = z.infer<typeof maintenanceAssignment>;
