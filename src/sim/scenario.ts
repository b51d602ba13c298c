/**
 * Loading a scenario: read the file (YAML or JSON), check its shape, check its references, and build
 * the fleet, catalog, failure models and timed events the simulator runs. Every problem names the
 * file, the path in it and what was expected.
 */
import { readFileSync } from 'node:fs';
import { DateTime, Duration } from 'luxon';
import { parse as parseYaml } from 'yaml';
import { Catalog } from '../catalog/catalog.js';
import type { PublishedVersion } from '../catalog/catalog.js';
import type { DriverBehaviourInput } from './behaviour.js';
import { compileBehaviour } from './behaviour.js';
import type { FleetBehaviour } from '../drivers/sim/failure-model.js';
import { newEngineState } from '../engine/state.js';
import type { Artifact } from '../model/artifact.js';
import type { OsType } from '../model/fleet.js';
import type { RolloutProfileName } from '../model/events.js';
import type { RolloutProfile } from '../planner/profile.js';
import { buildFleet } from './fleet-builder.js';
import type { ScenarioInput } from './scenario-schema.js';
import { scenarioSchema } from './scenario-schema.js';

export interface ScenarioIssue {
  path: string;
  message: string;
}

export class ScenarioError extends Error {
  constructor(readonly file: string, readonly issues: ScenarioIssue[]) {
    super(issues.map((i) => `${file}: ${i.path || '(top level)'}: ${i.message}`).join('\n'));
    this.name = 'ScenarioError';
  }
}

export type TimedAction =
  | { atMs: number; kind: 'publish'; publisher: string; type: string; version: PublishedVersion }
  | { atMs: number; kind: 'setAutomaticUpgrade'; artifactKey: string; machineIds: string[]; enabled: boolean }
  | { atMs: number; kind: 'manualUpgrade'; artifact: Artifact; machineIds: string[]; version: string }
  | { atMs: number; kind: 'supportAutomaticUpgrade'; publisher: string; type: string; supported: boolean };

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
}

const DEFAULT_HORIZON = 'P16W';

export function loadScenarioFile(file: string, overrides: { seed?: number } = {}): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(file, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` }]);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ScenarioError(file, [{ path: '', message: `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}` }]);
  }
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
  const issues: ScenarioIssue[] = [];
  const startMs = DateTime.fromISO(input.start, { setZone: true }).toMillis();
  if (/^P/.test(input.start)) issues.push({ path: 'start', message: 'expected an ISO 8601 instant such as 2026-01-05T00:00:00Z, not an offset' });
  const at = (text: string) => (/^P/.test(text) ? startMs + Duration.fromISO(text).toMillis() : DateTime.fromISO(text, { setZone: true }).toMillis());
  const seed = overrides.seed ?? input.seed ?? 1;

  const catalog = buildCatalog(input, startMs, issues);
  const fleetResult = buildFleet(input, catalog, startMs, seed, issues);
  const behaviour = compileBehaviour(input.failures as DriverBehaviourInput | undefined, at, fleetResult.setIds, issues);
  const actions = compileActions(input, at, fleetResult, catalog, seed, issues);
  const profiles = compileProfiles(input, issues);
  for (const [i, r] of (input.canaryRegions ?? []).entries()) {
    if (!fleetResult.fleet.regions.has(r)) issues.push({ path: `canaryRegions[${i}]`, message: `unknown region "${r}"` });
  }
  if (issues.length > 0) throw new ScenarioError(file, issues);

  const state = newEngineState(fleetResult.fleet, catalog);
  return {
    name: input.name,
    description: input.description ?? '',
    file,
    startMs,
    horizonMs: Duration.fromISO(input.horizon ?? DEFAULT_HORIZON).toMillis(),
    seed,
    state,
    behaviour,
    actions: actions.sort((a, b) => a.atMs - b.atMs),
    profiles,
    canaryRegions: input.canaryRegions,
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
        catalog.publish(t.publisher, t.type, { version: v.version, os: (v.os ?? ['linux', 'windows']) as OsType[], regions: v.regions ?? null, publishedAtMs: startMs - 1, critical: v.critical ?? false, digest: null });
      } catch (err) {
        issues.push({ path: `catalog[${ti}].versions[${vi}]`, message: (err as Error).message });
      }
    });
  });
  return catalog;
}

function compileProfiles(input: ScenarioInput, issues: ScenarioIssue[]): Scenario['profiles'] {
  const out: Scenario['profiles'] = {};
  const ms = (d: string | undefined) => (d === undefined ? undefined : Duration.fromISO(d).toMillis());
  for (const name of ['standard', 'critical', 'manual'] as const) {
    const p = input.profiles?.[name];
    if (!p) continue;
    const o: Partial<RolloutProfile> = {};
    if (p.phaseBake !== undefined) o.phaseBakeMs = ms(p.phaseBake)!;
    if (p.bound !== undefined) o.boundMs = ms(p.bound)!;
    if (p.retryArc !== undefined) o.retryIntervalArcMs = ms(p.retryArc)!;
    if (p.retryVm !== undefined) o.retryIntervalVmMs = ms(p.retryVm)!;
    if (p.gateRecheck !== undefined) o.gateRecheckMs = ms(p.gateRecheck)!;
    if (p.maxPhaseFailurePercent !== undefined) o.maxPhaseFailurePercent = p.maxPhaseFailurePercent;
    if (p.groupMaxUnhealthyUpgradedPercent !== undefined) o.groupMaxUnhealthyUpgradedPercent = p.groupMaxUnhealthyUpgradedPercent;
    if (o.retryIntervalVmMs === 0 || o.retryIntervalArcMs === 0) issues.push({ path: `profiles.${name}`, message: 'retry intervals must be longer than zero' });
    out[name] = o;
  }
  return out;
}

function compileActions(
  input: ScenarioInput,
  at: (t: string) => number,
  built: ReturnType<typeof buildFleet>,
  catalog: Catalog,
  seed: number,
  issues: ScenarioIssue[],
): TimedAction[] {
  const out: TimedAction[] = [];
  (input.events ?? []).forEach((e, i) => {
    const path = `events[${i}]`;
    const atMs = at(e.at);
    const template = (ref: string, field: string) => {
      const t = input.extensions[ref];
      if (!t) issues.push({ path: `${path}.${field}.extension`, message: `unknown extension "${ref}"; expected one of: ${Object.keys(input.extensions).join(', ')}` });
      return t;
    };
    if (e.publish) {
      const t = template(e.publish.extension, 'publish');
      if (!t) return;
      const type = catalog.getType(t.publisher, t.type);
      if (type?.versions.some((v) => v.version === e.publish!.version)) {
        issues.push({ path: `${path}.publish.version`, message: `${e.publish.version} is already in the catalog` });
      }
      for (const [ri, r] of (e.publish.regions ?? []).entries()) if (!built.fleet.regions.has(r)) issues.push({ path: `${path}.publish.regions[${ri}]`, message: `unknown region "${r}"` });
      out.push({ atMs, kind: 'publish', publisher: t.publisher, type: t.type, version: { version: e.publish.version, os: (e.publish.os ?? ['linux', 'windows']) as OsType[], regions: e.publish.regions ?? null, publishedAtMs: atMs, critical: e.publish.critical ?? false, digest: null } });
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
    const machineIds = built.select(sel, `${path}.${field}`, seed + i, issues);
    const key = `extension:${t.publisher}.${t.type}`.toLowerCase();
    if (e.setAutomaticUpgrade) out.push({ atMs, kind: 'setAutomaticUpgrade', artifactKey: key, machineIds, enabled: e.setAutomaticUpgrade.enabled });
    else out.push({ atMs, kind: 'manualUpgrade', artifact: { kind: 'extension', publisher: t.publisher, type: t.type }, machineIds, version: e.manualUpgrade!.version });
  });
  return out;
}
