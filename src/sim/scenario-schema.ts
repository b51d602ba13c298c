/**
 * The scenario file's schema (docs/scenarios.md). Shapes and ranges are checked here; references
 * between parts (regions, extensions, sets) are checked when the scenario is compiled.
 */
import { DateTime, Duration } from 'luxon';
import { z } from 'zod';
import { isVersion, isVersionPrefix } from '../model/version.js';

const name = z.string().min(1, { error: 'expected a non-empty name' }).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { error: 'expected letters, digits, ".", "_" or "-", starting with a letter or digit' });
const version = z.string().refine(isVersion, { error: 'expected a version of four numbers such as 1.30.2.0' });
const versionPrefix = z.string().refine(isVersionPrefix, { error: 'expected a version of one to four numbers such as 1.30' });
const percent = z.number().int({ error: 'expected a whole percentage from 1 to 100' }).min(1, { error: 'expected a percentage from 1 to 100' }).max(100, { error: 'expected a percentage from 1 to 100' });
const percent0 = z.number().int({ error: 'expected a whole percentage from 0 to 100' }).min(0, { error: 'expected a percentage from 0 to 100' }).max(100, { error: 'expected a percentage from 0 to 100' });
const probability = z.number().min(0, { error: 'expected a probability from 0 to 1' }).max(1, { error: 'expected a probability from 0 to 1' });
const count = z.number().int({ error: 'expected a whole number' }).min(0, { error: 'expected a count of 0 or more' });
const positive = z.number().int({ error: 'expected a whole number' }).min(1, { error: 'expected a number of 1 or more' });
const duration = z.string().refine((s) => /^P/.test(s) && Duration.fromISO(s).isValid, { error: 'expected an ISO 8601 duration such as PT6H or P2D' });
const instant = z.string().refine((s) => (/^P/.test(s) ? Duration.fromISO(s).isValid : DateTime.fromISO(s, { setZone: true }).isValid && /T/.test(s)), {
  error: 'expected an ISO 8601 instant (2026-01-05T00:00:00Z) or an offset from the start (P1D, PT6H)',
});
const os = z.enum(['linux', 'windows'], { error: 'expected "linux" or "windows"' });
const zones = z.array(z.string().min(1));
const latency = z.object({ median: z.number().positive({ error: 'expected seconds above 0' }), p95: z.number().positive({ error: 'expected seconds above 0' }) }).strict();

export const failureModelSchema = z.object({
  installFailure: probability.optional(),
  unhealthyAfterUpgrade: probability.optional(),
  rollbackFailure: probability.optional(),
  installSeconds: latency.optional(),
  healthSeconds: latency.optional(),
  rollbackSeconds: latency.optional(),
}).strict();

const rollingUpgradePolicy = z.object({
  maxBatchInstancePercent: percent.optional(),
  maxUnhealthyInstancePercent: percent.optional(),
  maxUnhealthyUpgradedInstancePercent: percent0.optional(),
  pauseTimeBetweenBatches: z.string().refine((s) => Duration.fromISO(s).isValid, { error: 'expected an ISO 8601 duration such as PT0S' }).optional(),
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
  publisher: z.string().min(1),
  type: z.string().min(1),
  typeHandlerVersion: versionPrefix,
  autoUpgradeMinorVersion: z.boolean().optional(),
  /** Defaults to true on Arc machines and false elsewhere (R3). */
  enableAutomaticUpgrade: z.boolean().optional(),
  /** The version installed at the start; by default what R4 installs from the catalog. */
  installed: version.optional(),
  settings: z.record(z.string(), z.unknown()).optional(),
}).strict();

const placementCommon = {
  region: name,
  subscription: name,
  resourceGroup: name.optional(),
  os: os.optional(),
  extensions: z.array(name).optional(),
};

const scaleSet = z.object({
  name,
  ...placementCommon,
  zones: zones.optional(),
  capacity: positive,
  count: positive.optional(),
  updateDomains: z.number().int().min(1).max(20, { error: 'expected 1 to 20 update domains' }).optional(),
  faultDomains: z.number().int().min(1).max(5, { error: 'expected 1 to 5 fault domains' }).optional(),
  upgradePolicy: upgradePolicy.optional(),
  applicationHealth: z.boolean().optional(),
  healthGracePeriod: duration.optional(),
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

const range = z.object({ min: positive, max: positive }).strict();

const generate = z.object({
  regions: z.object({ count: positive, zones: z.number().int().min(0).max(3).optional(), prefix: name.optional() }).strict().optional(),
  subscriptions: positive.optional(),
  os: os.optional(),
  extensions: z.array(name).min(1, { error: 'expected at least one extension name' }),
  scaleSets: z.object({ count, capacity: range, zonalShare: probability.optional(), applicationHealthShare: probability.optional() }).strict().optional(),
  availabilitySets: z.object({ count, vms: range }).strict().optional(),
  vms: count.optional(),
  arcMachines: count.optional(),
  /** Standalone VMs are added until the fleet has this many machines. */
  totalMachines: count.optional(),
}).strict();

const selector = {
  extension: name,
  scaleSet: name.optional(),
  region: name.optional(),
  machines: z.array(z.string().min(1)).optional(),
  share: probability.optional(),
};

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
}).strict().refine((e) => [e.publish, e.setAutomaticUpgrade, e.manualUpgrade, e.supportAutomaticUpgrade].filter(Boolean).length === 1, {
  error: 'expected exactly one of publish, setAutomaticUpgrade, manualUpgrade, supportAutomaticUpgrade',
});

const profileOverride = z.object({
  phaseBake: duration.optional(),
  bound: duration.optional(),
  retryArc: duration.optional(),
  retryVm: duration.optional(),
  gateRecheck: duration.optional(),
  maxPhaseFailurePercent: percent0.optional(),
  groupMaxUnhealthyUpgradedPercent: percent0.optional(),
}).strict();

export const scenarioSchema = z.object({
  name: z.string().min(1),
  description: z.string().optional(),
  start: instant,
  seed: z.number().int().optional(),
  horizon: duration.optional(),
  canaryRegions: z.array(name).optional(),
  profiles: z.object({ standard: profileOverride.optional(), critical: profileOverride.optional(), manual: profileOverride.optional() }).strict().optional(),
  regions: z.array(z.object({ name, pair: name.nullable().optional(), zones: zones.optional() }).strict()).optional(),
  catalog: z.array(z.object({
    publisher: z.string().min(1),
    type: z.string().min(1),
    supportsAutomaticUpgrade: z.boolean(),
    versions: z.array(z.object({ version, os: z.array(os).min(1).optional(), regions: z.array(name).optional(), critical: z.boolean().optional() }).strict()).min(1, { error: 'expected at least one published version' }),
  }).strict()).min(1, { error: 'expected at least one extension type' }),
  extensions: z.record(name, extensionTemplate),
  fleet: z.object({
    scaleSets: z.array(scaleSet).optional(),
    availabilitySets: z.array(availabilitySet).optional(),
    vms: z.array(machineGroup).optional(),
    arcMachines: z.array(machineGroup).optional(),
    generate: generate.optional(),
  }).strict(),
  events: z.array(event).optional(),
  failures: z.object({
    default: failureModelSchema.optional(),
    versions: z.record(version, failureModelSchema).optional(),
    slowAgents: z.object({ share: probability, factor: z.number().min(1, { error: 'expected a factor of 1 or more' }) }).strict().optional(),
    background: z.array(z.object({ at: instant, duration, region: name.optional(), scaleSet: name.optional(), share: probability }).strict()).optional(),
  }).strict().optional(),
}).strict();

export type ScenarioInput = z.infer<typeof scenarioSchema>;
export type ScenarioEventInput = z.infer<typeof event>;
export type FailureModelInput = z.infer<typeof failureModelSchema>;
