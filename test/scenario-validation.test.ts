/**
 * Bad scenario input gives a clear message and exit code 2, never a stack trace (docs/scenarios.md,
 * "Errors"). The real CLI runs as a child process on bad files written to a temp dir; each message must
 * name the file, the path in the file and what was expected. `compileScenario` is also called
 * directly to show that every problem of a file is reported at once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { compileScenario, loadScenarioFile, ScenarioError } from '../src/sim/scenario.js';

/** The repository root: this file runs as dist/test/scenario-validation.test.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/cli/main.js');
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

function variant(change: (s: Raw) => void): Raw {
  const s = valid();
  change(s);
  return s;
}

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'phasewise-validation-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a child process (asynchronously, so the cases can run side by side). */
function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.PHASEWISE_DEBUG;
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

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
  { name: 'event with two actions', change: (s) => (s.events[0].setAutomaticUpgrade = { extension: 'agent', enabled: false }), path: 'events[0]', expected: 'expected exactly one of publish, setAutomaticUpgrade, manualUpgrade, supportAutomaticUpgrade' },
  { name: 'misspelt field', change: (s) => (s.fleet.scaleSets[0].capcity = 4), path: 'fleet.scaleSets[0]', expected: 'Unrecognized key: "capcity"' },
  { name: 'availability set with too many fault domains', change: (s) => (s.fleet.availabilitySets[0].faultDomains = 4), path: 'fleet.availabilitySets[0].faultDomains', expected: 'expected 1 to 3 fault domains' },
  { name: 'name with a space', change: (s) => (s.fleet.scaleSets[0].name = 'web tier'), path: 'fleet.scaleSets[0].name', expected: 'expected letters, digits' },
  // References between parts.
  { cli: true, name: 'unknown region in a pair', change: (s) => (s.regions[1].pair = 'nowhere'), path: 'regions[1].pair', expected: 'region west is paired with unknown region nowhere' },
  { cli: true, name: 'a pair that is not symmetric', change: (s) => s.regions.push({ name: 'north', pair: 'east' }), path: 'regions[2].pair', expected: 'region north is paired with east, but east is paired with west' },
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
  { name: 'a retry interval of zero', change: (s) => (s.profiles = { standard: { retryVm: 'PT0S' } }), path: 'profiles.standard', expected: 'retry intervals must be longer than zero' },
  { name: 'a machine name used twice', change: (s) => s.fleet.vms.push({ name: 'jump', region: 'west', subscription: 'prod', count: 1 }), path: 'fleet.vms[1]', expected: 'machine name "jump-0" is used twice' },
  // Files that cannot be parsed.
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
    const file = join(dir, 'does-not-exist.yaml');
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

describe('phasewise plan validates the same way', { concurrency: 4 }, () => {
  test('a bad percentage', async () => {
    const file = write('plan-percent.yaml', stringify(variant((s) => (s.fleet.scaleSets[0].upgradePolicy = { rollingUpgradePolicy: { maxBatchInstancePercent: 101 } }))));
    await expectRejected(file, 'fleet.scaleSets[0].upgradePolicy.rollingUpgradePolicy.maxBatchInstancePercent', 'expected a percentage from 1 to 100', 'plan');
  });

  test('--release beyond the publish events is a usage error', async () => {
    const file = write('plan-release.yaml', stringify(valid()));
    const r = await cli('plan', file, '--release', '3');
    assert.equal(r.status, 2, r.stderr);
    assert.ok(!STACK_LINE.test(r.stderr), r.stderr);
    assert.equal(r.stderr.trim(), `${file}: the scenario has 1 publish event(s); --release 3 does not exist`);
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
      assert.equal(r.stderr.trim(), `--seed: expected a whole number, got "${seed}"`);
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
