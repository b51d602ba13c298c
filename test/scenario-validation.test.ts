/**
 * Bad scenario input gives a clear message and exit code 2, never a stack trace (docs/scenarios.md,
 * "Errors"). The real CLI runs as a child process on bad files written to a temp dir; each message must
 * name the file, the path in the file and what was expected. `compileScenario` is also called
 * directly to show that every problem of a file is reported at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { compileScenario, loadScenarioFile, ScenarioError } from '../src/sim/scenario.js';
import { spawn } from 'node:child_process';
import { scenarioFolder, variant as changed } from './helpers/scenario-files.js';
import { cli, CLI, ROOT } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';

/** The repository root: this file runs as dist/test/scenario-validation.test.js. */
const STACK_LINE = /\n\s+at /;

type Raw = Record<string, any>;

/** A small valid scenario; each case breaks one thing. */
function valid(): Raw {
  return {
    name: 'validation',
    start: '2026-01-05T00:00:00Z',
    seed: 1,
    horizon: 'P6W',
    regions: [
      { name: 'east', pair: 'west', zones: ['1', '2'] },
      { name: 'west', pair: 'east' },
    ],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      scaleSets: [{ name: 'web', region: 'east', subscription: 'prod', zones: ['1', '2'], capacity: 4, extensions: ['agent'] }],
      availabilitySets: [{ name: 'db', region: 'west', subscription: 'prod', vms: 2, os: 'linux', extensions: ['agent'] }],
      vms: [{ name: 'jump', region: 'west', subscription: 'prod', count: 2, extensions: ['agent'] }],
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  };
}

/** A valid nightly maintenance configuration; cases change one field. */
function nightly(change: Raw = {}): Raw {
  return { name: 'nightly', startDateTime: '2026-01-01 23:00', duration: '06:00', timeZone: 'W. Europe Standard Time', recurEvery: 'Day', ...change };
}

const variant = (change: (s: Raw) => void): Raw => changed(valid, change);

const files = scenarioFolder('phasewise-validation-');
const write = files.write;


/** Runs `phasewise <command> file`; asserts exit 2, one `file: path: message` line, no stack trace, no output. */
async function expectRejected(file: string, path: string, expected: string, command: 'sim' | 'plan' = 'sim'): Promise<string> {
  const r = await cli(command, file, ...(command === 'sim' ? ['--quiet'] : []));
  const context = `stderr was:\n${r.stderr}`;
  assert.equal(r.status, 2, `exit status ${r.status}; ${context}`);
  assert.ok(!STACK_LINE.test(r.stderr), `stack trace on stderr; ${context}`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.trimEnd().split('\n');
  const line = lines.find((l) => l.startsWith(`${file}: ${path}: `));
  assert.ok(line, `no line starting with "${file}: ${path}: "; ${context}`);
  assert.ok(line.includes(expected), `"${line}" does not say "${expected}"`);
  for (const l of lines) assert.ok(l.startsWith(`${file}: `), `every line names the file: "${l}"`);
  return r.stderr;
}

/** In-process: `loadScenarioFile` throws the ScenarioError whose message the CLI prints. */
function expectLoadError(file: string, path: string, expected: string): void {
  let err: unknown;
  try {
    loadScenarioFile(file);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ScenarioError, `expected a ScenarioError, got ${String(err)}`);
  const line = err.message.split('\n').find((l) => l.startsWith(`${file}: ${path}: `));
  assert.ok(line, `no line starting with "${file}: ${path}: " in:\n${err.message}`);
  assert.ok(line.includes(expected), `"${line}" does not say "${expected}"`);
}

describe('the base scenario of these tests', () => {
  test('is valid, so each case below fails only because of what it breaks', async () => {
    const file = write('valid.yaml', stringify(valid()));
    const r = await cli('sim', file, '--quiet');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /8 machines in 2 regions/);
    assert.match(r.stdout, /Rollout ro-1: Contoso\.Agent → 1\.1\.0\.0 \(standard\) — completed/);
  });
});

interface Case {
  /** Run through the CLI; the other cases go through `loadScenarioFile`, which builds the same message. */
  cli?: boolean;
  name: string;
  /** A change to the valid scenario, or the raw text of the file. */
  change?: (s: Raw) => void;
  text?: string;
  ext?: 'yaml' | 'json';
  path: string;
  expected: string;
}

const cases: Case[] = [
  // Shape: required fields, types, ranges.
  { cli: true, name: 'missing required field: no catalog', change: (s) => delete s.catalog, path: 'catalog', expected: 'expected array' },
  { name: 'missing required field: no start', change: (s) => delete s.start, path: 'start', expected: 'expected string' },
  { cli: true, name: 'wrong type: capacity is a string', change: (s) => (s.fleet.scaleSets[0].capacity = 'ten'), path: 'fleet.scaleSets[0].capacity', expected: 'expected number, received string' },
  { name: 'wrong type: typeHandlerVersion is a number (unquoted 1.0 in YAML)', text: stringify(valid()).replace('typeHandlerVersion: "1.0"', 'typeHandlerVersion: 1.0'), path: 'extensions.agent.typeHandlerVersion', expected: 'expected string, received number' },
  { name: 'wrong type: zones are numbers', change: (s) => (s.regions[0].zones = [1, 2]), path: 'regions[0].zones[0]', expected: 'expected string, received number' },
  { cli: true, name: 'catalog version of three numbers', change: (s) => (s.catalog[0].versions[0].version = '1.0.0'), path: 'catalog[0].versions[0].version', expected: 'expected a version of four numbers such as 1.30.2.0' },
  { name: 'catalog version with a leading zero', change: (s) => (s.catalog[0].versions[0].version = '1.01.0.0'), path: 'catalog[0].versions[0].version', expected: 'expected a version of four numbers' },
  { cli: true, name: 'publish event version of two numbers', change: (s) => (s.events[0].publish.version = '1.1'), path: 'events[0].publish.version', expected: 'expected a version of four numbers such as 1.30.2.0' },
  { cli: true, name: 'maxBatchInstancePercent 0', change: (s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 0 } }), path: 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent', expected: 'expected a percentage from 1 to 100' },
  { cli: true, name: 'maxBatchInstancePercent 101', change: (s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 101 } }), path: 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent', expected: 'expected a percentage from 1 to 100' },
  { name: 'maxBatchInstancePercent 12.5', change: (s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 12.5 } }), path: 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent', expected: 'expected a whole percentage from 1 to 100' },
  { name: 'maxUnhealthyUpgradedInstancePercent 101', change: (s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxUnhealthyUpgradedInstancePercent: 101 } }), path: 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxUnhealthyUpgradedInstancePercent', expected: 'expected a percentage from 0 to 100' },
  { name: 'probability above 1', change: (s) => (s.failures = { default: { installFailure: 1.5 } }), path: 'failures.default.installFailure', expected: 'expected a probability from 0 to 1' },
  { name: 'duration that is not ISO 8601', change: (s) => (s.horizon = '16 weeks'), path: 'horizon', expected: 'expected an ISO 8601 duration' },
  { name: 'event time that is a date without a time', change: (s) => (s.events[0].at = '2026-01-06'), path: 'events[0].at', expected: 'expected an ISO 8601 instant' },
  { name: 'event with two actions', change: (s) => (s.events[0].setAutomaticUpgrade = { extension: 'agent', enabled: false }), path: 'events[0]', expected: 'expected exactly one of publish, setAutomaticUpgrade, manualUpgrade, supportAutomaticUpgrade, assignMaintenance, unassignMaintenance' },
  { name: 'misspelt field', change: (s) => (s.fleet.scaleSets[0].capcity = 4), path: 'fleet.scaleSets[0]', expected: 'Unrecognized key: "capcity"' },
  { name: 'availability set with too many fault domains', change: (s) => (s.fleet.availabilitySets[0].faultDomains = 4), path: 'fleet.availabilitySets[0].faultDomains', expected: 'expected 1 to 3 fault domains' },
  { name: 'name with a space', change: (s) => (s.fleet.scaleSets[0].name = 'web tier'), path: 'fleet.scaleSets[0].name', expected: 'expected letters, digits' },
  // References between parts.
  { cli: true, name: 'unknown region in a pair', change: (s) => (s.regions[1].pair = 'nowhere'), path: 'regions[1].pair', expected: 'region west is paired with unknown region nowhere' },
  { cli: true, name: 'a pair that is not symmetric', change: (s) => s.regions.push({ name: 'north', pair: 'east' }), path: 'regions[2].pair', expected: 'region north is paired with east, but east is paired with west' },
  {
    cli: true, name: 'two regions that name one unpaired region as their geo-pair',
    change: (s) => s.regions.push({ name: 'south' }, { name: 'north', pair: 'south' }, { name: 'central', pair: 'south' }),
    path: 'regions[4].pair', expected: 'region central is paired with south, but south is the geo-pair of north already; a region has at most one geo-pair',
  },
  // Text that sim and plan print: an escape sequence rewrote the reader's terminal, a bidi override reversed a type's name.
  { cli: true, name: 'a scenario name with a terminal escape', change: (s) => (s.name = 'demo\u001b[2J\u001b[H'), path: 'name', expected: 'expected one line of text without control characters' },
  {
    name: 'a catalog type with a bidirectional override', change: (s) => (s.catalog[0].type = 'Agent\u202etxt.exe'),
    path: 'catalog[0].type', expected: 'expected one line of text without control characters',
  },
  { name: 'a zone with a line break', change: (s) => (s.regions[0].zones = ['1', '2\nzone 3']), path: 'regions[0].zones[1]', expected: 'expected one line of text without control characters' },
  { name: 'a region paired with itself', change: (s) => s.regions.push({ name: 'solo', pair: 'solo' }), path: 'regions[2].pair', expected: 'region solo is paired with itself' },
  { cli: true, name: 'unknown extension referenced by a scale set', change: (s) => s.fleet.scaleSets[0].extensions.push('nosuch'), path: 'fleet.scaleSets[0].extensions[1]', expected: 'unknown extension "nosuch"; expected one of: agent' },
  { cli: true, name: 'a zone the region does not have', change: (s) => (s.fleet.scaleSets[0].zones = ['1', '4']), path: 'fleet.scaleSets[0].zones[1]', expected: 'region east has no zone "4"; it has: 1, 2' },
  { name: 'a zone in a region without zones', change: (s) => (s.fleet.vms[0].zones = ['1']), path: 'fleet.vms[0].zones[0]', expected: 'region west has no zone "1"; it has: none' },
  { name: 'a scale set in an unknown region', change: (s) => (s.fleet.scaleSets[0].region = 'mars'), path: 'fleet.scaleSets[0].region', expected: 'unknown region "mars"' },
  { name: 'a published version already in the catalog', change: (s) => (s.events[0].publish.version = '1.0.0.0'), path: 'events[0].publish.version', expected: '1.0.0.0 is already in the catalog' },
  { name: 'start given as an offset', change: (s) => (s.start = 'P1D'), path: 'start', expected: 'expected an ISO 8601 instant such as 2026-01-05T00:00:00Z, not an offset' },
  { name: 'unknown canary region', change: (s) => (s.canaryRegions = ['mars']), path: 'canaryRegions[0]', expected: 'unknown region "mars"' },
  { name: 'unknown scale set in an event', change: (s) => s.events.push({ at: 'P2D', setAutomaticUpgrade: { extension: 'agent', scaleSet: 'nope', enabled: false } }), path: 'events[1].setAutomaticUpgrade.scaleSet', expected: 'unknown scale set or availability set "nope"' },
  { name: 'unknown scale set in a background episode', change: (s) => (s.failures = { background: [{ at: 'P1D', duration: 'PT1H', scaleSet: 'nope', share: 0.5 }] }), path: 'failures.background[0].scaleSet', expected: 'unknown scale set "nope"' },
  { name: 'typeHandlerVersion that matches no published version', change: (s) => (s.extensions.agent.typeHandlerVersion = '2.0'), path: 'extensions.agent.typeHandlerVersion', expected: 'no published version of Contoso.Agent matches 2.0' },
  { name: 'a retry interval of zero', change: (s) => (s.profiles = { standard: { retryVm: 'PT0S' } }), path: 'profiles.standard.retryVm', expected: 'expected a duration of at least PT1M, got PT0S' },
  { name: 'a machine name used twice', change: (s) => s.fleet.vms.push({ name: 'jump', region: 'west', subscription: 'prod', count: 1 }), path: 'fleet.vms[1]', expected: 'machine name "jump-0" is used twice' },
  // Durations and times: nothing negative, nothing that would stall the engine (review item 1).
  { cli: true, name: 'a gate recheck of zero (the engine would loop within one instant)', change: (s) => (s.profiles = { standard: { gateRecheck: 'PT0S' } }), path: 'profiles.standard.gateRecheck', expected: 'expected a duration of at least PT1M, got PT0S' },
  { name: 'a gate recheck of one second', change: (s) => (s.profiles = { critical: { gateRecheck: 'PT1S' } }), path: 'profiles.critical.gateRecheck', expected: 'expected a duration of at least PT1M' },
  { name: 'an Arc retry of 30 seconds', change: (s) => (s.profiles = { manual: { retryArc: 'PT30S' } }), path: 'profiles.manual.retryArc', expected: 'expected a duration of at least PT1M, got PT30S' },
  { name: 'a negative phase bake (PT-1H)', change: (s) => (s.profiles = { standard: { phaseBake: 'PT-1H' } }), path: 'profiles.standard.phaseBake', expected: 'expected a positive ISO 8601 duration' },
  { name: 'a negative phase bake (-PT5M)', change: (s) => (s.profiles = { standard: { phaseBake: '-PT5M' } }), path: 'profiles.standard.phaseBake', expected: 'expected a positive ISO 8601 duration' },
  { name: 'a bound of zero', change: (s) => (s.profiles = { standard: { bound: 'PT0S' } }), path: 'profiles.standard.bound', expected: 'expected a duration longer than zero, got PT0S' },
  { name: 'a horizon of zero', change: (s) => (s.horizon = 'PT0S'), path: 'horizon', expected: 'expected a duration longer than zero' },
  { name: 'a negative horizon', change: (s) => (s.horizon = '-P1W'), path: 'horizon', expected: 'expected a positive ISO 8601 duration' },
  { name: 'a bare P as a duration (luxon reads it as zero)', change: (s) => (s.horizon = 'P'), path: 'horizon', expected: 'expected an ISO 8601 duration such as PT6H or P2D' },
  { name: 'a negative background episode', change: (s) => (s.failures = { background: [{ at: 'P1D', duration: 'PT-2H', share: 0.5 }] }), path: 'failures.background[0].duration', expected: 'expected a positive ISO 8601 duration' },
  { name: 'a negative event offset', change: (s) => (s.events[0].at = 'PT-1H'), path: 'events[0].at', expected: 'expected an offset of zero or more from the start' },
  { cli: true, name: 'an event instant before start', change: (s) => (s.events[0].at = '2026-01-04T23:00:00Z'), path: 'events[0].at', expected: 'expected an instant at or after start (2026-01-05T00:00:00Z), got 2026-01-04T23:00:00Z' },
  { name: 'a background instant before start', change: (s) => (s.failures = { background: [{ at: '2026-01-01T00:00:00Z', duration: 'PT1H', share: 0.5 }] }), path: 'failures.background[0].at', expected: 'expected an instant at or after start' },
  { name: 'a health grace period of one second', change: (s) => (s.fleet.scaleSets[0].healthGracePeriod = 'PT1S'), path: 'fleet.scaleSets[0].healthGracePeriod', expected: 'expected a duration from PT10S to PT2H, got PT1S' },
  { name: 'a health grace period of three hours', change: (s) => (s.fleet.scaleSets[0].healthGracePeriod = 'PT3H'), path: 'fleet.scaleSets[0].healthGracePeriod', expected: 'expected a duration from PT10S to PT2H' },
  // Unbounded, `plan` ended with "phasewise: Invalid time value" (exit 1): the estimated end passed what a date holds.
  { cli: true, name: 'a pause between batches over 30 days (P99999999999D)', change: (s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { pauseTimeBetweenBatches: 'P99999999999D' } }), path: 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches', expected: 'at most P30D (30 days), got P99999999999D' },
  { cli: true, name: 'a negative pause between batches', change: (s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { pauseTimeBetweenBatches: 'PT-1M' } }), path: 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches', expected: 'expected an ISO 8601 duration such as PT0S, got PT-1M' },
  // Time zones (item 6).
  { cli: true, name: 'start without a time zone', change: (s) => (s.start = '2026-01-05T00:00:00'), path: 'start', expected: 'expected a time zone at the end of 2026-01-05T00:00:00: Z for UTC or an offset such as +01:00' },
  { name: 'an event instant without a time zone', change: (s) => (s.events[0].at = '2026-01-06T08:00'), path: 'events[0].at', expected: 'expected a time zone' },
  // Versions: published once, published before use, known to failure models (items 2, 3, 5, 10).
  { cli: true, name: 'the same version published by two events', change: (s) => s.events.push({ at: 'P2D', publish: { extension: 'agent', version: '1.1.0.0' } }), path: 'events[1].publish.version', expected: '1.1.0.0 is already published by events[0]' },
  { name: 'the same version published through two templates of one type', change: (s) => { s.extensions.agent2 = { ...s.extensions.agent }; s.events.push({ at: 'P2D', publish: { extension: 'agent2', version: '1.1.0.0' } }); }, path: 'events[1].publish.version', expected: 'is already published by events[0]' },
  { name: 'an unused template whose type is not in the catalog', change: (s) => (s.extensions.ghost = { publisher: 'Nobody', type: 'Ghost', typeHandlerVersion: '1.0' }), path: 'extensions.ghost', expected: 'Nobody.Ghost is not in the catalog; expected one of: Contoso.Agent' },
  { cli: true, name: 'a manual upgrade to a version never published', change: (s) => s.events.push({ at: 'P2D', manualUpgrade: { extension: 'agent', version: '9.9.9.9' } }), path: 'events[1].manualUpgrade.version', expected: '9.9.9.9 is never published; expected a version published by then: 1.0.0.0, 1.1.0.0' },
  { name: 'a manual upgrade before its version is published', change: (s) => s.events.push({ at: 'PT30M', manualUpgrade: { extension: 'agent', version: '1.1.0.0' } }), path: 'events[1].manualUpgrade.version', expected: '1.1.0.0 is published only later, by events[0]; expected a version published by then: 1.0.0.0' },
  { name: 'a failure model for a version nothing publishes', change: (s) => (s.failures = { versions: { '1.3.0.0': { installFailure: 0.5 } } }), path: 'failures.versions.1.3.0.0', expected: 'no catalog entry or publish event has version 1.3.0.0; expected one of: 1.0.0.0, 1.1.0.0' },
  { name: 'a failure model keyed by a malformed version', change: (s) => (s.failures = { versions: { '1.2': { installFailure: 0.5 } } }), path: 'failures.versions.1.2', expected: 'expected a version of four numbers such as 1.30.2.0' },
  { name: 'an installed version that is not in the catalog', change: (s) => (s.extensions.agent.installed = '1.5.0.0'), path: 'extensions.agent.installed', expected: '1.5.0.0 is not a catalog version of Contoso.Agent; expected one of: 1.0.0.0' },
  // Regions (items 4, 8, 9).
  { name: 'a background episode in an unknown region', change: (s) => (s.failures = { background: [{ at: 'P1D', duration: 'PT1H', region: 'mars', share: 0.5 }] }), path: 'failures.background[0].region', expected: 'unknown region "mars"; expected one of: east, west' },
  { cli: true, name: 'a generated region with the name of a written-out one', change: (s) => { s.regions.push({ name: 'gen00' }); s.fleet.generate = { regions: { count: 2, prefix: 'gen' }, extensions: ['agent'], vms: 2 }; }, path: 'fleet.generate.regions.prefix', expected: 'generated region name gen00 is already used in regions; expected a prefix that gives new names' },
  { name: 'a catalog version in an unknown region', change: (s) => s.catalog[0].versions.push({ version: '1.0.1.0', regions: ['east', 'mars'] }), path: 'catalog[0].versions[1].regions[1]', expected: 'unknown region "mars"' },
  // Ranges and pairs (items 7, 13).
  { name: 'generated scale sets with min capacity above max', change: (s) => (s.fleet.generate = { extensions: ['agent'], scaleSets: { count: 1, capacity: { min: 50, max: 20 } } }), path: 'fleet.generate.scaleSets.capacity', expected: 'expected min to be at most max, got min 50 and max 20' },
  { name: 'generated availability sets with min VMs above max', change: (s) => (s.fleet.generate = { extensions: ['agent'], availabilitySets: { count: 1, vms: { min: 3, max: 2 } } }), path: 'fleet.generate.availabilitySets.vms', expected: 'expected min to be at most max' },
  { name: 'a latency whose p95 is below its median', change: (s) => (s.failures = { default: { installSeconds: { median: 60, p95: 10 } } }), path: 'failures.default.installSeconds.p95', expected: 'expected a 95th percentile of at least the median (60), got 10' },
  { cli: true, name: 'both regions of a geo-pair as canary regions', change: (s) => (s.canaryRegions = ['east', 'west']), path: 'canaryRegions[1]', expected: 'west is the geo-pair of east (canaryRegions[0]); expected at most one region of each geo-pair' },
  { name: 'a zone listed twice in a region', change: (s) => (s.regions[0].zones = ['1', '1']), path: 'regions[0].zones[1]', expected: 'zone "1" is listed twice' },
  { name: 'a zone listed twice in a scale set', change: (s) => (s.fleet.scaleSets[0].zones = ['1', '2', '1']), path: 'fleet.scaleSets[0].zones[2]', expected: 'zone "1" is listed twice' },
  // Files that cannot be parsed.
  // Maintenance windows (R70, R71): the schedule module's messages at the field's path.
  { cli: true, name: 'R71: maintenance window recurring every two weeks', change: (s) => (s.maintenance = { configurations: [nightly({ recurEvery: '2Weeks' })] }), path: 'maintenance.configurations[0].recurEvery', expected: 'recurEvery: Extension windows recur at most 7 days apart; "2Weeks" leaves 14 days between windows' },
  { name: 'R71: maintenance window shorter than five hours', change: (s) => (s.maintenance = { configurations: [nightly({ duration: '04:59' })] }), path: 'maintenance.configurations[0].duration', expected: 'duration: Extension windows last at least 05:00; got 04:59' },
  { name: 'R71: a Host window of two hours is allowed, an Extension one is not', change: (s) => (s.maintenance = { configurations: [nightly({ name: 'host', scope: 'Host', duration: '02:00' }), nightly({ duration: '02:00' })] }), path: 'maintenance.configurations[1].duration', expected: 'Extension windows last at least 05:00' },
  { name: 'maintenance window with an unknown time zone', change: (s) => (s.maintenance = { configurations: [nightly({ timeZone: 'Mars Standard Time' })] }), path: 'maintenance.configurations[0].timeZone', expected: 'timeZone: unknown time zone "Mars Standard Time"' },
  { name: 'maintenance window with a bad recurrence', change: (s) => (s.maintenance = { configurations: [nightly({ recurEvery: 'Daily' })] }), path: 'maintenance.configurations[0].recurEvery', expected: 'recurEvery: ' },
  { name: 'maintenance window expiring before it starts', change: (s) => (s.maintenance = { configurations: [nightly({ expirationDateTime: '2025-12-31 00:00' })] }), path: 'maintenance.configurations[0].expirationDateTime', expected: 'is not after startDateTime' },
  { name: 'maintenance configuration defined twice', change: (s) => (s.maintenance = { configurations: [nightly(), nightly()] }), path: 'maintenance.configurations[1].name', expected: 'maintenance configuration "nightly" is defined twice' },
  { name: 'maintenance scope unknown', change: (s) => (s.maintenance = { configurations: [nightly({ scope: 'Resource' })] }), path: 'maintenance.configurations[0].scope', expected: 'expected Extension, OSImage, Host or InGuestPatch' },
  { name: 'InGuestPatch schedule without installPatches', change: (s) => (s.maintenance = { configurations: [nightly({ scope: 'InGuestPatch', duration: '03:00' })] }),
    path: 'maintenance.configurations[0].installPatches', expected: 'InGuestPatch configurations need installPatches' },
  { cli: true, name: 'assignment of an unknown configuration', change: (s) => (s.maintenance = { configurations: [nightly()], assignments: [{ configuration: 'weekly', scaleSet: 'web' }] }), path: 'maintenance.assignments[0].configuration', expected: 'unknown maintenance configuration "weekly"; expected one of: nightly' },
  { name: 'assignment to an unknown set', change: (s) => (s.maintenance = { configurations: [nightly()], assignments: [{ configuration: 'nightly', scaleSet: 'webb' }] }), path: 'maintenance.assignments[0].scaleSet', expected: 'unknown scale set or availability set "webb"' },
  { name: 'assignment to an unknown machine', change: (s) => (s.maintenance = { configurations: [nightly()], assignments: [{ configuration: 'nightly', machines: ['jump-0', 'jump-9'] }] }), path: 'maintenance.assignments[0].machines[1]', expected: 'unknown machine "jump-9"' },
  { name: 'assignment to a set and machines at once', change: (s) => (s.maintenance = { configurations: [nightly()], assignments: [{ configuration: 'nightly', scaleSet: 'web', machines: ['jump-0'] }] }), path: 'maintenance.assignments[0]', expected: 'expected exactly one of scaleSet, machines' },
  { name: 'assignMaintenance event of an unknown configuration', change: (s) => s.events.push({ at: 'P1D', assignMaintenance: { configuration: 'nightly', scaleSet: 'db' } }), path: 'events[1].assignMaintenance.configuration', expected: 'unknown maintenance configuration "nightly"' },
  { name: 'unassignMaintenance event on an unknown set', change: (s) => { s.maintenance = { configurations: [nightly()] }; s.events.push({ at: 'P1D', unassignMaintenance: { configuration: 'nightly', scaleSet: 'nope' } }); }, path: 'events[1].unassignMaintenance.scaleSet', expected: 'unknown scale set or availability set "nope"' },
  { cli: true, name: 'unparseable YAML', text: 'name: broken\nstart: [2026-01-05T00:00:00Z\ncatalog: []\n', path: '(top level)', expected: 'not valid YAML' },
  { cli: true, name: 'invalid JSON', ext: 'json', text: '{ "name": "broken", }', path: '(top level)', expected: 'not valid JSON' },
  { name: 'a JSON file that is an array', ext: 'json', text: '[]', path: '(top level)', expected: 'expected object, received array' },
  { cli: true, name: 'an empty file', text: '', path: '(top level)', expected: 'expected object' },
];

describe('phasewise sim rejects bad scenarios with exit code 2, file, path and expectation', { concurrency: 4 }, () => {
  cases.forEach((c, i) => {
    test(c.name, async () => {
      const ext = c.ext ?? 'yaml';
      const content = c.text ?? (ext === 'json' ? JSON.stringify(variant(c.change!)) : stringify(variant(c.change!)));
      const file = write(`case-${String(i).padStart(2, '0')}.${ext}`, content);
      if (c.cli) await expectRejected(file, c.path, c.expected);
      else expectLoadError(file, c.path, c.expected);
    });
  });

  test('the same scenario as JSON gives the same messages', async () => {
    const file = write('percent.json', JSON.stringify(variant((s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 0 } }))));
    await expectRejected(file, 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent', 'expected a percentage from 1 to 100');
  });

  test('a missing file', async () => {
    const file = files.path('does-not-exist.yaml');
    await expectRejected(file, '(top level)', 'cannot read the file (ENOENT)');
  });

  test('every problem of a file is printed, one line each', async () => {
    const file = write('several.yaml', stringify(variant((s) => {
      s.regions.push({ name: 'north', pair: 'east' });
      s.fleet.scaleSets[0].zones = ['1', '4'];
      s.canaryRegions = ['mars'];
    })));
    const stderr = await expectRejected(file, 'regions[2].pair', 'but east is paired with west');
    assert.ok(stderr.includes(`${file}: fleet.scaleSets[0].zones[1]: region east has no zone "4"`), stderr);
    assert.ok(stderr.includes(`${file}: canaryRegions[0]: unknown region "mars"`), stderr);
    assert.equal(stderr.trimEnd().split('\n').length, 3, stderr);
  });
});

describe('checks that depend on other parts of the file', () => {
  function issuesOf(raw: unknown): ScenarioError {
    try {
      compileScenario(raw, 'inline.yaml');
    } catch (err) {
      assert.ok(err instanceof ScenarioError, `expected a ScenarioError, got ${String(err)}`);
      return err;
    }
    assert.fail('the scenario was accepted');
  }

  test('what the new checks allow: zone offsets, a manual upgrade at its publish time, failure models of released versions', () => {
    const s = compileScenario(variant((x) => {
      x.start = '2026-01-05T01:00:00+01:00';
      x.events.push({ at: '2026-01-05T02:00:00+01:00', manualUpgrade: { extension: 'agent', version: '1.1.0.0' } });
      x.failures = { versions: { '1.0.0.0': { rollbackFailure: 0.1 }, '1.1.0.0': { installFailure: 0.1 } }, default: { installSeconds: { median: 60, p95: 60 } } };
      x.profiles = { standard: { phaseBake: 'PT0S', gateRecheck: 'PT1M', retryArc: 'PT1M' } };
      x.extensions.agent.installed = '1.0.0.0';
      x.fleet.scaleSets[0].healthGracePeriod = 'PT10S';
    }), 'inline.yaml');
    assert.equal(s.startMs, Date.parse('2026-01-05T00:00:00Z'));
    assert.deepEqual(s.actions.map((a) => [a.kind, a.atMs - s.startMs]), [['publish', 3_600_000], ['manualUpgrade', 3_600_000]]);
  });

  test('an unknown extension on a scale set of 4 is reported once, not once per instance', () => {
    const err = issuesOf(variant((s) => {
      s.fleet.scaleSets[0].extensions.push('nosuch');
      s.fleet.scaleSets[0].count = 3;
    }));
    const lines = err.issues.filter((i) => i.path === 'fleet.scaleSets[0].extensions[1]');
    assert.equal(lines.length, 1, err.message);
    assert.match(lines[0]!.message, /unknown extension "nosuch"; expected one of: agent/);
  });

  test('identical problems are listed once wherever they come from', () => {
    const issue = { path: 'fleet.vms[0]', message: 'the same problem' };
    const err = new ScenarioError('f.yaml', [issue, { ...issue }, { path: 'fleet.vms[1]', message: 'the same problem' }]);
    assert.deepEqual(err.issues.map((i) => i.path), ['fleet.vms[0]', 'fleet.vms[1]']);
    assert.equal(err.message.split('\n').length, 2);
  });

  test('start given as an offset is reported alone, without problems that follow from it', () => {
    const err = issuesOf(variant((s) => {
      s.start = 'P1D';
      s.canaryRegions = ['mars'];
    }));
    // Before the fix every typeHandlerVersion failed too: versions published at NaN match nothing.
    assert.deepEqual(err.issues.map((i) => i.path).sort(), ['canaryRegions[0]', 'start'], err.message);
    assert.match(err.issues.find((i) => i.path === 'start')!.message, /expected an ISO 8601 instant such as 2026-01-05T00:00:00Z, not an offset/);
  });
});

describe('phasewise plan validates the same way', { concurrency: 4 }, () => {
  test('a pause between batches no date can hold is refused, not a crash', async () => {
    const file = write('plan-pause.yaml', stringify(variant((s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { pauseTimeBetweenBatches: 'P99999999999D' } }))));
    await expectRejected(file, 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches', 'at most P30D (30 days)', 'plan');
  });

  test('a bad percentage', async () => {
    const file = write('plan-percent.yaml', stringify(variant((s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 101 } }))));
    await expectRejected(file, 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent', 'expected a percentage from 1 to 100', 'plan');
  });

  test('--release 2 says which release it plans before the plan (numbered ro-1 by its fresh engine)', async () => {
    const file = write('plan-release-2.yaml', stringify(variant((s) => s.events.push({ at: 'P1D', publish: { extension: 'agent', version: '1.2.0.0' } }))));
    const r = await cli('plan', file, '--release', '2');
    assert.equal(r.status, 0, r.stderr);
    const [first, second] = r.stdout.split('\n');
    assert.equal(first, 'Release 2 of 2: Contoso.Agent 1.2.0.0, published 2026-01-06 00:00 UTC; planned on its own, so its rollout is numbered ro-1 below');
    assert.match(second ?? '', /^Plan ro-1: Contoso\.Agent → 1\.2\.0\.0/);
  });

  test('--release beyond the publish events is a usage error', async () => {
    const file = write('plan-release.yaml', stringify(valid()));
    const r = await cli('plan', file, '--release', '3');
    assert.equal(r.status, 2, r.stderr);
    assert.ok(!STACK_LINE.test(r.stderr), r.stderr);
    assert.equal(r.stderr.trim(), `phasewise plan: ${file}: the scenario has 1 publish event(s); --release 3 does not exist`);
  });
});

describe('stdout closed early (phasewise plan big.yaml | head)', { concurrency: 2 }, () => {
  /** Runs the CLI and closes its stdout after `afterBytes` bytes (0: at once); the child must exit 0 quietly. */
  function closedEarly(args: string[], afterBytes: number): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      let seen = 0;
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      if (afterBytes === 0) child.stdout.destroy();
      else child.stdout.on('data', (d: Buffer) => { if ((seen += d.length) >= afterBytes) child.stdout.destroy(); });
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout: '', stderr });
      });
    });
  }

  test('plan of a large fleet, stdout closed after the first chunk', async () => {
    const r = await closedEarly(['plan', 'examples/large.yaml'], 1);
    assert.ok(!STACK_LINE.test(r.stderr), `stack trace on stderr:\n${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
  });

  test('sim, stdout closed before anything is written', async () => {
    const file = write('epipe.yaml', stringify(valid()));
    const r = await closedEarly(['sim', file, '--quiet'], 0);
    assert.ok(!STACK_LINE.test(r.stderr), `stack trace on stderr:\n${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
  });
});

describe('command-line options', { concurrency: 4 }, () => {
  for (const seed of ['abc', '1.5', '1e3', '99999999999999999999']) {
    test(`--seed ${seed} is rejected with exit code 2`, async () => {
      const file = write('seed.yaml', stringify(valid()));
      const r = await cli('sim', file, '--seed', seed);
      assert.equal(r.status, 2, r.stderr);
      assert.ok(!STACK_LINE.test(r.stderr), r.stderr);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim(), `phasewise sim: --seed: expected a whole number, got "${seed}"`);
    });
  }

  test('--seed overrides the seed of the file', async () => {
    const file = write('seed-ok.yaml', stringify(valid()));
    const r = await cli('sim', file, '--seed', '-42');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /, seed -42:/);
  });

  test('a missing scenario argument', async () => {
    const r = await cli('sim');
    assert.equal(r.status, 2);
    assert.ok(!STACK_LINE.test(r.stderr), r.stderr);
    assert.match(r.stderr, /missing required argument 'scenario'/);
  });
});

describe('compileScenario reports every problem at once', () => {
  function issuesOf(raw: unknown): ScenarioError {
    try {
      compileScenario(raw, 'inline.yaml');
    } catch (err) {
      assert.ok(err instanceof ScenarioError, `expected a ScenarioError, got ${String(err)}`);
      return err;
    }
    assert.fail('the scenario was accepted');
  }

  test('the valid base scenario compiles', () => {
    const s = compileScenario(valid(), 'inline.yaml');
    assert.equal(s.state.fleet.machines.size, 8);
    assert.equal(s.actions.length, 1);
    assert.equal(s.horizonMs, 6 * 7 * 86_400_000);
  });

  test('shape problems in several parts of the file', () => {
    const err = issuesOf(variant((s) => {
      delete s.catalog;
      s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 0 } };
      s.events[0].publish.version = '1.1';
      s.fleet.vms[0].count = 0;
    }));
    assert.equal(err.file, 'inline.yaml');
    assert.deepEqual(err.issues.map((i) => i.path).sort(), [
      'catalog',
      'events[0].publish.version',
      'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent',
      'fleet.vms[0].count',
    ]);
    assert.ok(err.issues.find((i) => i.path === 'fleet.vms[0].count')!.message.includes('expected a number of 1 or more'));
    for (const line of err.message.split('\n')) assert.match(line, /^inline\.yaml: \S+: \S/);
  });

  test('reference problems in several parts of the file', () => {
    const err = issuesOf(variant((s) => {
      s.regions.push({ name: 'north', pair: 'east' });
      s.fleet.scaleSets[0].zones = ['1', '4'];
      s.fleet.availabilitySets[0].extensions = ['nosuch'];
      s.events.push({ at: 'P2D', manualUpgrade: { extension: 'agent', machines: ['web/0', 'web/99'], version: '1.1.0.0' } });
      s.events.push({ at: 'P3D', publish: { extension: 'ghost', version: '9.0.0.0' } });
    }));
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.match(byPath.get('regions[2].pair') ?? '', /region north is paired with east, but east is paired with west/);
    assert.match(byPath.get('fleet.scaleSets[0].zones[1]') ?? '', /region east has no zone "4"/);
    assert.match(byPath.get('fleet.availabilitySets[0].extensions[0]') ?? '', /unknown extension "nosuch"/);
    assert.match(byPath.get('events[1].manualUpgrade.machines[1]') ?? '', /unknown machine "web\/99"/);
    assert.match(byPath.get('events[2].publish.extension') ?? '', /unknown extension "ghost"/);
    assert.equal(byPath.has('events[1].manualUpgrade.machines[0]'), false, 'web/0 exists');
  });

  test('the message lists each issue as file: path: message', () => {
    const err = issuesOf({ name: 'x' });
    const lines = err.message.split('\n');
    assert.equal(lines.length, err.issues.length);
    assert.ok(err.issues.length >= 4, 'start, catalog, extensions and fleet are all missing');
    err.issues.forEach((issue, i) => assert.equal(lines[i], `inline.yaml: ${issue.path || '(top level)'}: ${issue.message}`));
  });
});
