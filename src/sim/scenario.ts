/**
 * Loading a scenario: read the file (YAML or JSON), check its shape, check its references, and build
 * the fleet, catalog, failure models and timed events the simulator runs. Every problem names the
 * file, the path in it and what was expected.
 */
import { DateTime, Duration } from 'luxon';
import { parseStrictYaml } from '../util/strict-yaml.js';
import { fleetSizeIssues } from './fleet-size.js';
import { firstDuplicateJsonKey } from '../util/json-duplicate-keys.js';
import { FileTooLargeError, readTextUpTo } from '../util/bounded-read.js';
import { Catalog, typeKey } from '../catalog/catalog.js';
import { isImageVersion } from '../model/image-version.js';
import type { PublishedVersion } from '../catalog/catalog.js';
import type { DriverBehaviourInput } from './behaviour.js';
import { compileBehaviour } from './behaviour.js';
import type { FleetBehaviour } from '../drivers/sim/failure-model.js';
import { newEngineState } from '../engine/state.js';
import type { Artifact } from '../model/artifact.js';
import type { OsType, Region } from '../model/fleet.js';
import { symmetricPairs } from '../model/fleet.js';
import type { RolloutProfileName } from '../model/events.js';
import type { RolloutProfile } from '../planner/profile.js';
import type { MaintenanceConfigSpec } from '../model/maintenance.js';
import { checkScopeLimits } from '../schedule/limits.js';
import { parseMaintenanceWindow } from '../schedule/window.js';
import { buildFleet, unknownRegion } from './fleet-builder.js';
import type { ImageAction } from './scenario-images.js';
import { compileImages } from './scenario-images.js';
import type { MachinePatchSettings } from './fleet-builder.js';
import type { ScenarioPatchSchedule } from './patch-schedules.js';
import { assignPatchSchedule, compileInstallPatches, leavePlatformPatching, newPatchSchedule } from './scenario-patches.js';
import type { MaintenanceTargetInput, ScenarioInput } from './scenario-schema.js';
import { scenarioSchema } from './scenario-schema.js';
import { listed } from './issue-lists.js';

export interface ScenarioIssue {
  path: string;
  message: string;
}

/** The most problems a ScenarioError's message lists, one line each. */
export const MAX_ISSUE_LINES = 100;

export class ScenarioError extends Error {
  readonly issues: ScenarioIssue[];
  constructor(readonly file: string, issues: ScenarioIssue[]) {
    const unique = uniqueIssues(issues);
    // Every problem is kept in `issues`; the message shows the first ones, as 150,000 VMs without a count made 150,000 lines.
    const lines = unique.slice(0, MAX_ISSUE_LINES).map((i) => `${file}: ${i.path || '(top level)'}: ${i.message}`);
    if (unique.length > MAX_ISSUE_LINES) lines.push(`${file}: and ${(unique.length - MAX_ISSUE_LINES).toLocaleString('en')} more problems`);
    super(lines.join('\n'));
    this.name = 'ScenarioError';
    this.issues = unique;
  }
}

/** One line per distinct problem: a bad reference repeated on every machine of a set is one mistake. */
function uniqueIssues(issues: readonly ScenarioIssue[]): ScenarioIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\n${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export type TimedAction =
  | { atMs: number; kind: 'publish'; publisher: string; type: string; version: PublishedVersion }
  | { atMs: number; kind: 'setAutomaticUpgrade'; artifactKey: string; machineIds: string[]; enabled: boolean }
  | { atMs: number; kind: 'manualUpgrade'; artifact: Artifact; machineIds: string[]; version: string }
  | { atMs: number; kind: 'supportAutomaticUpgrade'; publisher: string; type: string; supported: boolean }
  /** A maintenance configuration of `maintenance.configurations`, put at the start (R70). */
  | { atMs: number; kind: 'putMaintenance'; spec: MaintenanceConfigSpec }
  | { atMs: number; kind: 'publishPatchBaseline'; os: OsType; version: string; critical: boolean }
  /** Assigns (or unassigns) a configuration to machines or sets: `targets` are machine or set ids. */
  | { atMs: number; kind: 'assignMaintenance'; configuration: string; targets: string[]; assigned: boolean }
  /** Publishes OS image versions and records replications (`images`, `publishImage`, `replicateImage`; R64). */
  | ImageAction;

export interface Scenario {
  name: string;
  description: string;
  file: string;
  startMs: number;
  horizonMs: number;
  seed: number;
  state: import('../engine/state.js').EngineState;
  behaviour: FleetBehaviour;
  actions: TimedAction[];
  profiles: Partial<Record<RolloutProfileName, Partial<RolloutProfile>>>;
  canaryRegions: string[] | undefined;
  /** InGuestPatch schedules (R75), run by the simulator when their windows open. */
  patchSchedules: ScenarioPatchSchedule[];
  /** The fleet entries' `patchSettings` per machine id. */
  patchSettings: Map<string, MachinePatchSettings>;
}

const DEFAULT_HORIZON = 'P16W';

/**
 * The largest scenario files read. A YAML parser holds about a hundred times the text (18 MB of YAML took
 * 2 GB), JSON.parse far less; large fleets are written with `count` or `fleet.generate` instead.
 */
export const MAX_YAML_BYTES = 16 * 1024 * 1024;
export const MAX_JSON_BYTES = 128 * 1024 * 1024;

export function loadScenarioFile(file: string, overrides: { seed?: number } = {}): Scenario {
  const json = file.endsWith('.json');
  const maxBytes = json ? MAX_JSON_BYTES : MAX_YAML_BYTES;
  let text: string;
  try {
    text = readTextUpTo(file, maxBytes);
  } catch (err) {
    if (err instanceof FileTooLargeError) {
      const limit = `${maxBytes / 1024 / 1024} MiB`;
      throw new ScenarioError(file, [{ path: '', message: `the file is larger than ${limit}, the most a ${json ? 'JSON' : 'YAML'} scenario may be; write large fleets with count or fleet.generate` }]);
    }
    throw new ScenarioError(file, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }]);
  }
  let raw: unknown;
  try {
    raw = json ? JSON.parse(text) : parseStrictYaml(text);
  } catch (err) {
    throw new ScenarioError(file, [{ path: '', message: `not valid ${json ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}` }]);
  }
  // As in YAML, a key given twice is an error, not the last one silently winning.
  const dup = json ? firstDuplicateJsonKey(text) : null;
  if (dup) throw new ScenarioError(file, [{ path: '', message: `not valid JSON: key ${JSON.stringify(dup.key)} appears twice in one object, at line ${dup.line}, column ${dup.column}` }]);
  return compileScenario(raw, file, overrides);
}

/** Formats a zod path like `fleet.scaleSets[2].zones[0]`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

export function compileScenario(raw: unknown, file: string, overrides: { seed?: number } = {}): Scenario {
  const parsed = scenarioSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ScenarioError(file, parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })));
  }
  const input = parsed.data;
  // Templates are looked up by names from the file: "toString" or "constructor" must not find Object's own members.
  input.extensions = Object.assign(Object.create(null) as ScenarioInput['extensions'], input.extensions);
  // Before anything is built: a fleet too large to hold is reported, not attempted.
  const sizeIssues = fleetSizeIssues(input.fleet);
  if (sizeIssues.length > 0) throw new ScenarioError(file, sizeIssues);
  const issues: ScenarioIssue[] = [];
  const start = compileStart(input.start, issues);
  const at = timeOf(start, issues);
  const seed = overrides.seed ?? input.seed ?? 1;

  const catalog = buildCatalog(input, start.ms, issues);
  checkTemplates(input, catalog, issues);
  const fleetResult = buildFleet(input, catalog, start.ms, seed, issues);
  const regions = fleetResult.fleet.regions;
  checkCatalogRegions(input, regions, issues);
  const behaviour = compileBehaviour(input.failures as DriverBehaviourInput | undefined, at, fleetResult.setIds, regions, issues);
  checkFailureVersions(input, issues);
  const maintenance = compileMaintenance(input, start.ms, fleetResult, issues);
  const eventTimes = (input.events ?? []).map((e, i) => at(e.at, `events[${i}].at`));
  const images = compileImages(input, start.ms, at, eventTimes, regions, fleetResult.imageSets, issues);
  const actions = [...maintenance.actions, ...images, ...compileActions(input, at, start, fleetResult, catalog, seed, maintenance.names, issues)];
  const profiles = compileProfiles(input);
  checkCanaryRegions(input.canaryRegions ?? [], regions, issues);
  if (issues.length > 0) throw new ScenarioError(file, issues);

  const state = newEngineState(fleetResult.fleet, catalog);
  return {
    name: input.name,
    description: input.description ?? '',
    file,
    startMs: start.ms,
    horizonMs: Duration.fromISO(input.horizon ?? DEFAULT_HORIZON).toMillis(),
    seed,
    state,
    behaviour,
    actions: actions.sort((a, b) => a.atMs - b.atMs),
    profiles,
    canaryRegions: input.canaryRegions,
    patchSchedules: maintenance.patchSchedules,
    patchSettings: fleetResult.patchSettings,
  };
}

interface Start {
  text: string;
  ms: number;
  /** False when `start` is unusable: checks that compare with it are skipped rather than reported. */
  known: boolean;
}

/**
 * `start` anchors every offset. An offset here is reported once; a stand-in start then lets the
 * other checks run without reporting follow-on problems (versions published at NaN match nothing).
 */
function compileStart(text: string, issues: ScenarioIssue[]): Start {
  if (/^-?P/.test(text)) {
    issues.push({ path: 'start', message: 'expected an ISO 8601 instant such as 2026-01-05T00:00:00Z, not an offset' });
    return { text, ms: 0, known: false };
  }
  const ms = DateTime.fromISO(text, { setZone: true }).toMillis();
  if (ms > LAST_INSTANT_MS) {
    issues.push({ path: 'start', message: `expected an instant no later than ${LAST_INSTANT}, got ${text}` });
    return { text, ms: 0, known: false };
  }
  return { text, ms, known: true };
}

/** The last instant a scenario may name: beyond it, JavaScript dates (and the event log's times) break down. */
const LAST_INSTANT = '9999-12-31T23:59:59Z';
const LAST_INSTANT_MS = Date.parse(LAST_INSTANT);

/** The time of an `at` field, instant or offset; an instant before `start` is reported at `path`. */
type TimeOf = (text: string, path: string) => number;

function timeOf(start: Start, issues: ScenarioIssue[]): TimeOf {
  return (text, path) => {
    const offset = /^P/.test(text);
    const ms = offset ? start.ms + Duration.fromISO(text).toMillis() : DateTime.fromISO(text, { setZone: true }).toMillis();
    if (!offset && start.known && ms < start.ms) issues.push({ path, message: `expected an instant at or after start (${start.text}), got ${text}` });
    if (ms > LAST_INSTANT_MS && (start.known || !offset)) issues.push({ path, message: `expected an instant no later than ${LAST_INSTANT}, got ${offset ? `start + ${text}` : text}` });
    return ms;
  };
}

function buildCatalog(input: ScenarioInput, startMs: number, issues: ScenarioIssue[]): Catalog {
  const catalog = new Catalog();
  input.catalog.forEach((t, ti) => {
    if (catalog.getType(t.publisher, t.type)) {
      issues.push({ path: `catalog[${ti}]`, message: `${t.publisher}.${t.type} is listed twice` });
      return;
    }
    catalog.addType(t.publisher, t.type, t.supportsAutomaticUpgrade);
    t.versions.forEach((v, vi) => {
      try {
        catalog.publish(t.publisher, t.type, {
          version: v.version,
          os: (v.os ?? ['linux', 'windows']) as OsType[],
          regions: v.regions ?? null,
          publishedAtMs: startMs - 1,
          critical: v.critical ?? false,
          digest: null,
        });
      } catch (err) {
        issues.push({ path: `catalog[${ti}].versions[${vi}]`, message: (err as Error).message });
      }
    });
  });
  return catalog;
}

function checkCatalogRegions(input: ScenarioInput, regions: ReadonlyMap<string, Region>, issues: ScenarioIssue[]): void {
  input.catalog.forEach((t, ti) =>
    t.versions.forEach((v, vi) =>
      (v.regions ?? []).forEach((r, ri) => {
        if (!regions.has(r)) issues.push({ path: `catalog[${ti}].versions[${vi}].regions[${ri}]`, message: unknownRegion(r, regions) });
      })));
}

/** Every template must name a catalog type, used or not, and `installed` must be one of its versions. */
function checkTemplates(input: ScenarioInput, catalog: Catalog, issues: ScenarioIssue[]): void {
  for (const [name, t] of Object.entries(input.extensions)) {
    const type = catalog.getType(t.publisher, t.type);
    if (!type) {
      const known = listed(catalog.listTypes().map((x) => `${x.publisher}.${x.type}`));
      issues.push({ path: `extensions.${name}`, message: `${t.publisher}.${t.type} is not in the catalog; expected one of: ${known}` });
      continue;
    }
    if (t.installed !== undefined && !type.versions.some((v) => v.version === t.installed)) {
      const versions = listed(type.versions.map((v) => v.version));
      issues.push({ path: `extensions.${name}.installed`, message: `${t.installed} is not a catalog version of ${t.publisher}.${t.type}; expected one of: ${versions}` });
    }
  }
}

/** A failure model for a version nothing publishes is a typo: it would silently never apply. */
function checkFailureVersions(input: ScenarioInput, issues: ScenarioIssue[]): void {
  const known = new Set([...input.catalog.flatMap((t) => t.versions.map((v) => v.version)), ...(input.events ?? []).flatMap((e) => (e.publish ? [e.publish.version] : []))]);
  // Image versions (three parts) are looked up by the text the image is published with.
  const images = new Set([...(input.images ?? []).flatMap((i) => i.versions.map((v) => v.version)), ...(input.events ?? []).flatMap((e) => (e.publishImage ? [e.publishImage.version] : []))]);
  for (const e of input.events ?? []) if (e.publishPatchBaseline) images.add(e.publishPatchBaseline.version); // patch baselines (R76) are three-part too
  for (const key of Object.keys(input.failures?.versions ?? {})) {
    if (isImageVersion(key)) {
      if (!images.has(key)) issues.push({ path: formatPath(['failures', 'versions', key]), message: `no image or publishImage event has version ${key}; expected one of: ${listed(images)}` });
    } else if (!known.has(key)) issues.push({ path: formatPath(['failures', 'versions', key]), message: `no catalog entry or publish event has version ${key}; expected one of: ${listed(known)}` });
  }
}

/** Paired regions never share a phase (R10), so a canary phase cannot hold both. */
function checkCanaryRegions(canary: readonly string[], regions: ReadonlyMap<string, Region>, issues: ScenarioIssue[]): void {
  const pairs = symmetricPairs([...regions.values()]);
  canary.forEach((r, i) => {
    if (!regions.has(r)) {
      issues.push({ path: `canaryRegions[${i}]`, message: unknownRegion(r, regions) });
      return;
    }
    const j = canary.indexOf(pairs.get(r) ?? '');
    if (j >= 0 && j < i) issues.push({ path: `canaryRegions[${i}]`, message: `${r} is the geo-pair of ${canary[j]} (canaryRegions[${j}]); expected at most one region of each geo-pair, as paired regions never share a phase` });
  });
}

function compileProfiles(input: ScenarioInput): Scenario['profiles'] {
  const out: Scenario['profiles'] = {};
  const ms = (d: string) => Duration.fromISO(d).toMillis();
  for (const name of ['standard', 'critical', 'manual'] as const) {
    const p = input.profiles?.[name];
    if (!p) continue;
    const o: Partial<RolloutProfile> = {};
    if (p.phaseBake !== undefined) o.phaseBakeMs = ms(p.phaseBake);
    if (p.bound !== undefined) o.boundMs = ms(p.bound);
    if (p.retryArc !== undefined) o.retryIntervalArcMs = ms(p.retryArc);
    if (p.retryVm !== undefined) o.retryIntervalVmMs = ms(p.retryVm);
    if (p.gateRecheck !== undefined) o.gateRecheckMs = ms(p.gateRecheck);
    if (p.maxPhaseFailurePercent !== undefined) o.maxPhaseFailurePercent = p.maxPhaseFailurePercent;
    if (p.groupMaxUnhealthyUpgradedPercent !== undefined) o.groupMaxUnhealthyUpgradedPercent = p.groupMaxUnhealthyUpgradedPercent;
    if (p.releaseVerdict !== undefined) o.releaseVerdict = p.releaseVerdict;
    out[name] = o;
  }
  return out;
}

/** A version of a type and where it comes from: the catalog (before start) or a publish event. */
interface Release {
  version: string;
  atMs: number;
  /** `events[i]`, or null for the catalog. */
  event: string | null;
}

/**
 * Every version each type will have, by type key, catalog first. A version published twice would
 * make the catalog refuse the second one in the middle of a run, so it is reported here.
 */
function collectReleases(input: ScenarioInput, times: readonly number[], catalog: Catalog, issues: ScenarioIssue[]): Map<string, Release[]> {
  const releases = new Map<string, Release[]>();
  // By type key and version: a file of 20,000 publish events took minutes looking each one up in a list.
  const byVersion = new Map<string, Map<string, Release>>();
  for (const t of catalog.listTypes()) {
    const list = t.versions.map((v) => ({ version: v.version, atMs: Number.NEGATIVE_INFINITY, event: null }));
    releases.set(typeKey(t.publisher, t.type), list);
    byVersion.set(typeKey(t.publisher, t.type), new Map(list.map((r) => [r.version, r])));
  }
  (input.events ?? []).forEach((e, i) => {
    const t = e.publish && input.extensions[e.publish.extension];
    const list = t && releases.get(typeKey(t.publisher, t.type));
    if (!e.publish || !list) return; // an unknown template or type is reported elsewhere
    const known = byVersion.get(typeKey(t.publisher, t.type))!;
    const earlier = known.get(e.publish.version);
    if (earlier) {
      const where = earlier.event === null ? 'in the catalog' : `published by ${earlier.event}`;
      issues.push({ path: `events[${i}].publish.version`, message: `${e.publish.version} is already ${where}; expected a version not published before` });
      return;
    }
    const release = { version: e.publish.version, atMs: times[i]!, event: `events[${i}]` };
    list.push(release);
    known.set(release.version, release);
  });
  return releases;
}

/** R6 installs exactly the version asked for, so it must be published by the time of the event: the issue when it is not. */
function manualVersionIssue(releases: readonly Release[], version: string, atMs: number, start: Start, path: string): ScenarioIssue | null {
  if (releases.some((r) => r.version === version && (!start.known || r.atMs <= atMs))) return null;
  const byThen = releases.filter((r) => !start.known || r.atMs <= atMs);
  const later = releases.find((r) => r.version === version);
  const expected = `expected a version published by then: ${listed(byThen.map((r) => r.version))}`;
  return { path, message: later ? `${version} is published only later, by ${later.event}; ${expected}` : `${version} is never published; ${expected}` };
}

/**
 * `maintenance`: every configuration is put, then every assignment made, at the start, through the
 * engine's commands (so they are logged) and before any event of the same instant (the sort is stable).
 * A configuration's id is its name.
 */
function compileMaintenance(
  input: ScenarioInput, startMs: number, built: ReturnType<typeof buildFleet>, issues: ScenarioIssue[],
): { actions: TimedAction[]; names: string[]; patchSchedules: ScenarioPatchSchedule[] } {
  const configs = input.maintenance?.configurations ?? [];
  const names: string[] = [];
  const actions: TimedAction[] = [];
  const patchSchedules: ScenarioPatchSchedule[] = [];
  configs.forEach((c, i) => {
    const path = `maintenance.configurations[${i}]`;
    if (names.includes(c.name)) {
      issues.push({ path: `${path}.name`, message: `maintenance configuration "${c.name}" is defined twice; expected each name once` });
      return;
    }
    names.push(c.name);
    const scope = c.scope ?? 'Extension';
    const window = {
      startDateTime: c.startDateTime,
      duration: c.duration,
      timeZone: c.timeZone,
      recurEvery: c.recurEvery,
      ...(c.expirationDateTime !== undefined ? { expirationDateTime: c.expirationDateTime } : {}),
    };
    const parsed = parseMaintenanceWindow(window);
    if (!parsed.ok) {
      for (const e of parsed.errors) issues.push({ path: `${path}.${e.field}`, message: e.message });
      return;
    }
    for (const v of checkScopeLimits(scope, parsed.window)) issues.push({ path: `${path}.${v.field}`, message: v.message });
    if (scope === 'InGuestPatch') {
      const spec = compileInstallPatches(c.installPatches, path, issues);
      if (spec) patchSchedules.push(newPatchSchedule(c.name, parsed.window, spec));
      return;
    }
    if (c.installPatches !== undefined) {
      issues.push({ path: `${path}.installPatches`, message: `only InGuestPatch configurations install patches; this one's scope is ${scope}` });
      return;
    }
    actions.push({ atMs: startMs, kind: 'putMaintenance', spec: { id: c.name, scope, window, emergencyBypass: c.emergencyBypass ?? false } });
  });
  (input.maintenance?.assignments ?? []).forEach((a, i) => {
    const path = `maintenance.assignments[${i}]`;
    const schedule = patchSchedules.find((s) => s.id === a.configuration);
    if (schedule) return assignPatchSchedule(schedule, a, path, built.fleet, issues);
    if (a.dynamicScope) return void issues.push({ path: `${path}.dynamicScope`, message: 'only InGuestPatch configurations take a dynamic scope' });
    const targets = maintenanceTargets(a, path, names, built, issues);
    if (targets) actions.push({ atMs: startMs, kind: 'assignMaintenance', configuration: a.configuration, targets, assigned: true });
  });
  leavePlatformPatching(patchSchedules, built.fleet);
  // Events assign the engine's configurations only: schedules are assigned in maintenance.assignments.
  return { actions, names: names.filter((n) => !patchSchedules.some((s) => s.id === n)), patchSchedules };
}

/** The set or machine ids an assignment names; null (with issues) when a name is unknown. */
function maintenanceTargets(t: MaintenanceTargetInput, path: string, configurations: readonly string[], built: ReturnType<typeof buildFleet>, issues: ScenarioIssue[]): string[] | null {
  let ok = true;
  if (!configurations.includes(t.configuration)) {
    ok = false;
    const known = listed(configurations, '(none: maintenance.configurations is empty)');
    issues.push({ path: `${path}.configuration`, message: `unknown maintenance configuration "${t.configuration}"; expected one of: ${known}` });
  }
  if (t.scaleSet !== undefined) {
    const id = built.setIds.get(t.scaleSet);
    if (id === undefined) {
      issues.push({ path: `${path}.scaleSet`, message: `unknown scale set or availability set "${t.scaleSet}"` });
      return null;
    }
    return ok ? [id] : null;
  }
  const machines = t.machines ?? [];
  machines.forEach((id, k) => {
    if (!built.fleet.machines.has(id)) {
      ok = false;
      issues.push({ path: `${path}.machines[${k}]`, message: `unknown machine "${id}"` });
    }
  });
  return ok ? [...new Set(machines)] : null;
}

function compileActions(
  input: ScenarioInput,
  at: TimeOf,
  start: Start,
  built: ReturnType<typeof buildFleet>,
  catalog: Catalog,
  seed: number,
  maintenanceNames: readonly string[],
  issues: ScenarioIssue[],
): TimedAction[] {
  const events = input.events ?? [];
  const times = events.map((e, i) => at(e.at, `events[${i}].at`));
  const releases = collectReleases(input, times, catalog, issues);
  const out: TimedAction[] = [];
  events.forEach((e, i) => {
    const path = `events[${i}]`;
    const atMs = times[i]!;
    const template = (ref: string, field: string) => {
      const t = input.extensions[ref];
      if (!t) issues.push({ path: `${path}.${field}.extension`, message: `unknown extension "${ref}"; expected one of: ${listed(Object.keys(input.extensions))}` });
      return t;
    };
    if (e.publish) {
      const t = template(e.publish.extension, 'publish');
      if (!t) return;
      for (const [ri, r] of (e.publish.regions ?? []).entries()) if (!built.fleet.regions.has(r)) issues.push({ path: `${path}.publish.regions[${ri}]`, message: unknownRegion(r, built.fleet.regions) });
      out.push({
        atMs,
        kind: 'publish',
        publisher: t.publisher,
        type: t.type,
        version: {
          version: e.publish.version,
          os: (e.publish.os ?? ['linux', 'windows']) as OsType[],
          regions: e.publish.regions ?? null,
          publishedAtMs: atMs,
          critical: e.publish.critical ?? false,
          digest: null,
        },
      });
      return;
    }
    if (e.publishImage || e.replicateImage) return; // compiled with the images (scenario-images.ts)
    if (e.publishPatchBaseline) {
      out.push({ atMs, kind: 'publishPatchBaseline', os: e.publishPatchBaseline.os, version: e.publishPatchBaseline.version, critical: e.publishPatchBaseline.critical ?? false });
      return;
    }
    const assignment = e.assignMaintenance ?? e.unassignMaintenance;
    if (assignment) {
      const field = e.assignMaintenance ? 'assignMaintenance' : 'unassignMaintenance';
      const targets = maintenanceTargets(assignment, `${path}.${field}`, maintenanceNames, built, issues);
      if (targets) out.push({ atMs, kind: 'assignMaintenance', configuration: assignment.configuration, targets, assigned: e.assignMaintenance !== undefined });
      return;
    }
    if (e.supportAutomaticUpgrade) {
      const t = template(e.supportAutomaticUpgrade.extension, 'supportAutomaticUpgrade');
      if (t) out.push({ atMs, kind: 'supportAutomaticUpgrade', publisher: t.publisher, type: t.type, supported: e.supportAutomaticUpgrade.supported });
      return;
    }
    const sel = e.setAutomaticUpgrade ?? e.manualUpgrade!;
    const field = e.setAutomaticUpgrade ? 'setAutomaticUpgrade' : 'manualUpgrade';
    const t = template(sel.extension, field);
    if (!t) return;
    // A manual upgrade to a version not published by then fails the scenario: its machines are never needed, and
    // picking them (a hash of every machine's id when a share is given) is what made thousands of such errors slow.
    const known = e.manualUpgrade ? releases.get(typeKey(t.publisher, t.type)) : undefined;
    const versionIssue = known ? manualVersionIssue(known, e.manualUpgrade!.version, atMs, start, `${path}.manualUpgrade.version`) : null;
    const machineIds = built.select(sel, `${path}.${field}`, seed + i, issues, versionIssue === null);
    const key = `extension:${t.publisher}.${t.type}`.toLowerCase();
    if (e.setAutomaticUpgrade) {
      out.push({ atMs, kind: 'setAutomaticUpgrade', artifactKey: key, machineIds, enabled: e.setAutomaticUpgrade.enabled });
      return;
    }
    if (versionIssue) issues.push(versionIssue);
    out.push({ atMs, kind: 'manualUpgrade', artifact: { kind: 'extension', publisher: t.publisher, type: t.type }, machineIds, version: e.manualUpgrade!.version });
  });
  return out;
}
