/**
 * Scenario files and command lines written to hurt (docs/scenarios.md, "Errors"; docs/cli.md): fleets too
 * large to hold, files too large to parse, instants past the year 9999, keys given twice in JSON, options given twice, output paths
 * that are folders, and the files YAML and JSON parsers choke on (exploding aliases, deep nesting, binary,
 * a folder). Each must end in exit code 2 with a message naming the file and the field, no stack trace,
 * quickly, and change nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { MAX_MACHINES } from '../src/sim/fleet-size.js';
import { compileScenario, MAX_ISSUE_LINES, MAX_JSON_BYTES, MAX_YAML_BYTES, ScenarioError } from '../src/sim/scenario.js';
import { repeatedOption } from '../src/cli/repeated-options.js';
import { firstDuplicateJsonKey } from '../src/util/json-duplicate-keys.js';
import { MAX_YAML_DEPTH, parseStrictYaml } from '../src/util/strict-yaml.js';
import { scenarioFolder, variant as changed } from './helpers/scenario-files.js';
import { cli, cliWithEnv } from './helpers/cli.js';

const STACK_LINE = /\n\s+at /;

type Raw = Record<string, any>;

function valid(): Raw {
  return {
    name: 'hostile',
    start: '2026-01-05T00:00:00Z',
    horizon: 'P2W',
    regions: [{ name: 'east', pair: 'west', zones: ['1', '2'] }, { name: 'west', pair: 'east' }],
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      scaleSets: [{ name: 'web', region: 'east', subscription: 'prod', zones: ['1', '2'], capacity: 4, extensions: ['agent'] }],
      vms: [{ name: 'jump', region: 'west', subscription: 'prod', count: 2, extensions: ['agent'] }],
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  };
}

const variant = (change: (s: Raw) => void): Raw => changed(valid, change);

const files = scenarioFolder('phasewise-hostile-');
const write = files.write;

/** `phasewise <args>` exits 2 within 30 s, prints no stack trace and nothing on stdout; returns stderr. */
async function rejected(...args: string[]): Promise<string> {
  const started = Date.now();
  const r = await cli(...args);
  assert.equal(r.status, 2, `exit status ${r.status} after ${Date.now() - started} ms; stderr:\n${r.stderr}`);
  assert.ok(!STACK_LINE.test(r.stderr), `stack trace on stderr:\n${r.stderr}`);
  assert.equal(r.stdout, '', 'nothing on stdout');
  return r.stderr;
}

function issuesOf(raw: unknown): ScenarioError {
  try {
    compileScenario(raw, 'inline.yaml');
  } catch (err) {
    assert.ok(err instanceof ScenarioError, `expected a ScenarioError, got ${String(err)}`);
    return err;
  }
  assert.fail('the scenario was accepted');
}

describe('fleets too large to hold are refused before anything is built', { concurrency: 2 }, () => {
  test('a billion standalone VMs: exit 2 at once naming the field, not minutes of work and an out-of-memory abort', async () => {
    const file = write('billion.yaml', stringify(variant((s) => (s.fleet.vms[0].count = 1_000_000_000))));
    const stderr = await rejected('sim', file, '--quiet');
    assert.equal(stderr.trim(), `${file}: fleet.vms[0].count: the fleet would have up to 1,000,000,004 machines (1,000,000,000 here); a scenario holds at most 20,000,000`);
  });

  test('plan refuses the same way (scale set capacity times count)', async () => {
    const file = write('sets.yaml', stringify(variant((s) => Object.assign(s.fleet.scaleSets[0], { capacity: 1_000_000, count: 1_000 }))));
    const stderr = await rejected('plan', file);
    assert.match(stderr, /fleet\.scaleSets\[0\]: the fleet would have up to 1,000,000,002 machines \(1,000,000,000 here\); a scenario holds at most 20,000,000/);
  });

  const generate = (g: Raw) => (s: Raw) => (s.fleet.generate = { extensions: ['agent'], ...g });
  const cases: Array<[string, (s: Raw) => void, string, RegExp]> = [
    ['generate.totalMachines', generate({ totalMachines: 1e10 }), 'fleet.generate.totalMachines', /up to 10,000,000,000 machines/],
    ['generated scale sets at their largest', generate({ scaleSets: { count: 30_000, capacity: { min: 1, max: 1_000 } } }), 'fleet.generate.scaleSets', /up to 30,000,006 machines/],
    ['generated availability sets', generate({ availabilitySets: { count: 10_000_000, vms: { min: 2, max: 3 } } }), 'fleet.generate.availabilitySets', /up to 30,000,006/],
    ['generated Arc machines', generate({ arcMachines: 1e15 }), 'fleet.generate.arcMachines', /a scenario holds at most 20,000,000/],
    ['a billion generated regions', generate({ regions: { count: 1e9 } }), 'fleet.generate.regions.count', /expected at most 10,000 generated regions, got 1,000,000,000/],
    ['a billion subscriptions', generate({ subscriptions: 1e9, vms: 1 }), 'fleet.generate.subscriptions', /expected at most 100,000 subscriptions/],
  ];
  for (const [name, change, path, message] of cases) {
    test(name, () => {
      const started = Date.now();
      const err = issuesOf(variant(change));
      assert.ok(Date.now() - started < 5_000, 'refused at once');
      const issue = err.issues.find((i) => i.path === path);
      assert.ok(issue, `no issue at ${path}: ${err.message}`);
      assert.match(issue.message, message);
    });
  }

  test('a fleet at the limit is not refused for its size; totalMachines counts once with what it fills', () => {
    // Only the size check is exercised: the regions are missing, so nothing is built.
    const at = issuesOf(variant((s) => { s.regions = []; s.fleet = { generate: { extensions: ['agent'], vms: 1_000_000, totalMachines: MAX_MACHINES } }; }));
    assert.deepEqual(at.issues.map((i) => i.path), ['fleet.generate.regions']);
    const over = issuesOf(variant((s) => { s.regions = []; s.fleet = { generate: { extensions: ['agent'], vms: 1_000_000, totalMachines: MAX_MACHINES + 1 } }; }));
    assert.deepEqual(over.issues.map((i) => i.path), ['fleet.generate.totalMachines']);
  });
});

describe('instants past 9999-12-31T23:59:59Z', { concurrency: 2 }, () => {
  test('an event offset of a million years: plan exits 2 naming the event (it exited 1 with "Invalid time value")', async () => {
    const file = write('far-event.yaml', stringify(variant((s) => (s.events[0].at = 'P1000000Y'))));
    const stderr = await rejected('plan', file);
    assert.equal(stderr.trim(), `${file}: events[0].at: expected an instant no later than 9999-12-31T23:59:59Z, got start + P1000000Y`);
  });

  test('a start, an event instant and a background episode past the year 9999', () => {
    const start = issuesOf(variant((s) => (s.start = '+275000-01-01T00:00:00Z')));
    assert.deepEqual(start.issues.map((i) => `${i.path}: ${i.message}`), ['start: expected an instant no later than 9999-12-31T23:59:59Z, got +275000-01-01T00:00:00Z']);
    const event = issuesOf(variant((s) => (s.events[0].at = '+10000-01-01T00:00:00Z')));
    assert.deepEqual(event.issues.map((i) => i.path), ['events[0].at']);
    const background = issuesOf(variant((s) => (s.failures = { background: [{ at: 'P8000Y', duration: 'PT1H', share: 0.5 }] })));
    assert.deepEqual(background.issues.map((i) => i.path), ['failures.background[0].at']);
  });

  test('the last instant itself is accepted, and so is a thousand-year offset', () => {
    assert.equal(compileScenario(variant((s) => (s.events[0].at = 'P1000Y')), 'inline.yaml').actions.length, 1);
    assert.equal(compileScenario(variant((s) => (s.events[0].at = '9999-12-31T23:59:59Z')), 'inline.yaml').actions.length, 1);
  });
});

describe('keys given twice', { concurrency: 2 }, () => {
  test('in a JSON file: refused with the key, line and column, as YAML refuses it (JSON.parse kept the last silently)', async () => {
    const text = JSON.stringify(valid(), null, 2).replace('"horizon": "P2W",', '"horizon": "P2W",\n  "horizon": "P16W",');
    const file = write('dup.json', text);
    const stderr = await rejected('sim', file, '--quiet');
    assert.equal(stderr.trim(), `${file}: (top level): not valid JSON: key "horizon" appears twice in one object, at line 5, column 3`);
  });

  test('in YAML: refused by the parser', async () => {
    const file = write('dup.yaml', `${stringify(valid())}horizon: P16W\n`);
    assert.match(await rejected('sim', file, '--quiet'), /not valid YAML: Map keys must be unique/);
  });

  test('firstDuplicateJsonKey: nothing in what JSON.stringify writes (any keys, escapes, nesting); the repeated key where one is', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => assert.equal(firstDuplicateJsonKey(JSON.stringify(v, null, 1)), null)), { numRuns: 300 });
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1 }), fc.nat(), fc.jsonValue({ maxDepth: 1 }), (obj, pick, value) => {
        const keys = Object.keys(obj);
        const key = keys[pick % keys.length]!;
        const text = `[0, {"inner": ${JSON.stringify(obj).slice(0, -1)}, ${JSON.stringify(key)}: ${JSON.stringify(value)}}}]`;
        JSON.parse(text);
        const dup = firstDuplicateJsonKey(text);
        assert.equal(dup?.key, key);
        assert.equal(text.slice(dup.column - 1, dup.column - 1 + JSON.stringify(key).length), JSON.stringify(key));
      }),
      { numRuns: 300 },
    );
  });

  test('firstDuplicateJsonKey walks a million levels of nesting without recursion', () => {
    const text = `${'['.repeat(1_000_000)}{"a": 1, "b": {"a": 2}, "a": 3}${']'.repeat(1_000_000)}`;
    assert.deepEqual(firstDuplicateJsonKey(text), { key: 'a', line: 1, column: 1_000_000 + 25 });
  });
});

describe('files the parsers choke on', { concurrency: 2 }, () => {
  test('YAML aliases that would explode (billion laughs): refused, bounded', async () => {
    let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    for (let i = 1; i < 10; i++) text += `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]\n`;
    const file = write('laughs.yaml', text);
    assert.match(await rejected('sim', file, '--quiet'), /not valid YAML: Excessive alias count/);
  });

  test('nesting 100,000 deep, in YAML and in JSON', async () => {
    const yaml = write('deep.yaml', `name: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
    // It said "Maximum call stack size exceeded at line 1, column 786": accurate, but no limit named.
    assert.equal((await rejected('sim', yaml, '--quiet')).trim(),
      `${yaml}: (top level): not valid YAML: nested more than ${MAX_YAML_DEPTH} levels deep at line 1, column ${MAX_YAML_DEPTH + 6}; `
      + `Phasewise reads at most ${MAX_YAML_DEPTH} levels of mappings and lists`);
    const block = write('deep-block.yaml', Array.from({ length: 5000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n');
    assert.match(await rejected('plan', block), /deep-block\.yaml: \(top level\): not valid YAML: nested more than 100 levels deep at line 101, column 101;/);
    const json = write('deep.json', `{"name": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    assert.match(await rejected('plan', json), /deep\.json: name: Invalid input: expected string, received array/);
  });

  test('the nesting limit: 100 levels of mappings or lists are read, 101 are refused, keys count too', () => {
    const maps = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n';
    const flows = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    assert.doesNotThrow(() => parseStrictYaml(maps(MAX_YAML_DEPTH)));
    assert.doesNotThrow(() => parseStrictYaml(flows(MAX_YAML_DEPTH)));
    assert.throws(() => parseStrictYaml(maps(MAX_YAML_DEPTH + 1)), /nested more than 100 levels deep at line 101, column 101/);
    assert.throws(() => parseStrictYaml(flows(MAX_YAML_DEPTH + 1)), /nested more than 100 levels deep at line 1, column 101/);
    assert.throws(() => parseStrictYaml(`? ${flows(MAX_YAML_DEPTH)}\n: 1\n`), /nested more than 100 levels/); // a key holding the depth
    // An unclosed `[` makes the parser nest every line after it one level deeper: the `[` is the cause, not the depth.
    const unclosed = ['*k: [unclosed', ...Array.from({ length: 150 }, (_, i) => `k${i}: ${i}`)].join('\n');
    assert.throws(() => parseStrictYaml(unclosed), /Unexpected flow-seq-start token at line 1, column 5$/);
    assert.throws(() => parseStrictYaml(`a: [1, 2\n${maps(MAX_YAML_DEPTH + 1)}`), (err: Error) => !/nested more than/.test(err.message));
    // Errors still say where, as the library's own messages did.
    assert.throws(() => parseStrictYaml('a: 1\na: 2\n'), /Map keys must be unique at line 2, column 1$/);
  });

  test('files past the size limit, and /dev/zero, are refused after reading at most the limit (/dev/zero aborted on bad_alloc)', async () => {
    const yaml = write('huge.yaml', `${stringify(valid())}# ${'x'.repeat(MAX_YAML_BYTES)}\n`);
    const limit = (kind: string, mib: number) => `(top level): the file is larger than ${mib} MiB, the most a ${kind} scenario may be; write large fleets with count or fleet.generate`;
    assert.equal((await rejected('sim', yaml, '--quiet')).trim(), `${yaml}: ${limit('YAML', 16)}`);
    // A sparse file: its size is past the limit without writing 128 MiB.
    const json = files.path('huge.json');
    writeFileSync(json, '');
    truncateSync(json, MAX_JSON_BYTES + 1);
    assert.equal((await rejected('plan', json)).trim(), `${json}: ${limit('JSON', 128)}`);
    if (existsSync('/dev/zero')) assert.equal((await rejected('sim', '/dev/zero', '--quiet')).trim(), `/dev/zero: ${limit('YAML', 16)}`);
    // Up to the limit is read as usual.
    const atLimit = write('at-limit.yaml', stringify(valid()).padEnd(MAX_YAML_BYTES - 1, ' ') + '\n');
    assert.equal((await cli('plan', atLimit)).status, 0);
  });

  test('a binary file and a folder', async () => {
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + 7) % 256;
    const binary = write('binary.yaml', bytes);
    assert.match(await rejected('sim', binary, '--quiet'), /binary\.yaml: \(top level\): /);
    const folder = files.path('folder.yaml');
    mkdirSync(folder);
    assert.equal((await rejected('plan', folder)).trim(), `${folder}: (top level): cannot read the file (EISDIR)`);
  });
});

describe('command-line options', { concurrency: 2 }, () => {
  test('an option that takes a value, given twice, is refused (commander kept the last one silently)', async () => {
    const file = write('twice.yaml', stringify(valid()));
    assert.equal((await rejected('sim', file, '--seed', '1', '--seed=2', '--quiet')).trim(), 'phasewise sim: --seed: given more than once; give it once');
    assert.equal((await rejected('plan', file, '--release', '1', '--release', '1')).trim(), 'phasewise plan: --release: given more than once; give it once');
    const r = await cli('sim', file, '--quiet', '--quiet', '--seed', '3');
    assert.equal(r.status, 0, `a flag without a value may be repeated: ${r.stderr}`);
  });

  test('repeatedOption: only the options named, only before --', () => {
    assert.equal(repeatedOption(['sim', 'f', '--seed', '1', '--seed=2'], ['--seed']), '--seed');
    assert.equal(repeatedOption(['sim', 'f', '--quiet', '--quiet'], ['--seed']), null);
    assert.equal(repeatedOption(['sim', 'f', '--seed', '1', '--', '--seed'], ['--seed']), null);
    assert.equal(repeatedOption(['--seeds', '1', '--seed', '2'], ['--seed']), null);
  });

  test('repeatedOption: a short name counts as its long one; an option\'s value is never taken for an option', () => {
    const output = { long: '--output', short: '-o' };
    const reason = { long: '--reason' };
    assert.equal(repeatedOption(['rollout', 'list', '-o', 'table', '-o', 'json'], [output]), '--output');
    assert.equal(repeatedOption(['rollout', 'list', '-o', 'table', '--output=json'], [output]), '--output');
    assert.equal(repeatedOption(['rollout', 'list', '-otable', '--output', 'json'], [output]), '--output');
    assert.equal(repeatedOption(['rollout', 'list', '-o', 'table'], [output]), null);
    assert.equal(repeatedOption(['rollout', 'pause', 'ro-1', '--reason', '-o x', '-o', 'json'], [output, reason]), null);
    assert.equal(repeatedOption(['rollout', 'pause', 'ro-1', '--reason', '--reason'], [reason]), null);
    assert.equal(repeatedOption(['x', '--level', '-o', 'json', '-o', 'yaml'], [{ long: '--level', optional: true }, output]), '--output');
  });

  test('an option given twice by its short name, or by both names, is refused before anything is sent (it kept the last)', async () => {
    for (const args of [['rollout', 'list', '-o', 'table', '-o', 'json'], ['rollout', 'list', '-o', 'table', '--output', 'json'],
      ['set', 'show', '--subscription', 's', '-g', 'a', '-g', 'b', '-n', 'x']]) {
      const r = await cliWithEnv({ PHASEWISE_CONFIG_DIR: files.path('no-profile') }, 30_000, ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^phasewise ${args[0]} ${args[1]}: --(output|resource-group): given more than once; give it once\n$`));
    }
  });

  for (const release of ['0x1', '1e0', '1.0', ' 1', '+1']) {
    test(`--release "${release}" is refused (Number() took it as 1)`, async () => {
      const file = write('release.yaml', stringify(valid()));
      assert.equal((await rejected('plan', file, '--release', release)).trim(), `phasewise plan: --release: expected a number from 1 to 1, got "${release}"`);
    });
  }

  test('plan of a scenario that publishes nothing says so, not "expected a number from 1 to 0"', async () => {
    const file = write('no-release.yaml', stringify({ ...valid(), events: [] }));
    for (const release of ['1', '0']) {
      assert.equal((await rejected('plan', file, '--release', release)).trim(),
        `phasewise plan: ${file}: the scenario publishes nothing (no publish or publishPatchBaseline event); there is no release to plan`);
    }
  });

  test('--events naming a folder is refused before the store is made: no database file is left', async () => {
    const file = write('events.yaml', stringify(valid()));
    const folder = files.path('events-folder');
    mkdirSync(folder);
    const db = files.path('left-behind.db');
    const stderr = await rejected('sim', file, '--quiet', '--store', `sqlite:${db}`, '--events', folder);
    assert.equal(stderr.trim(), `phasewise sim: --events: ${folder} is a folder; expected a file to write`);
    assert.equal(existsSync(db), false, 'the SQLite store was not created');
  });
});

describe('lists that cost time or memory out of proportion to the file', { concurrency: 2 }, () => {
  test('100,000 zones on a region and a scale set: refused at once naming the limit (the pairwise check took 71 s)', () => {
    const many = (prefix: string) => Array.from({ length: 100_000 }, (_, i) => `${prefix}${i}`);
    const started = Date.now();
    const err = issuesOf(variant((s) => { s.regions[0].zones = many('z'); s.fleet.scaleSets[0].zones = many('q'); }));
    assert.ok(Date.now() - started < 5_000, `refused in ${Date.now() - started} ms`);
    assert.deepEqual(err.issues.map((i) => [i.path, i.message]), [
      ['regions[0].zones', 'expected at most 3 zones (an Azure region has up to 3)'],
      ['fleet.scaleSets[0].zones', 'expected at most 3 zones (an Azure region has up to 3)'],
    ]);
  });

  test('a fourth zone is refused; three distinct zones are accepted, a zone twice is still named', () => {
    assert.match(issuesOf(variant((s) => (s.regions[0].zones = ['1', '2', '3', '4']))).message, /regions\[0\]\.zones: expected at most 3 zones/);
    assert.match(issuesOf(variant((s) => (s.regions[0].zones = ['1', '2', '1']))).message, /regions\[0\]\.zones\[2\]: zone "1" is listed twice/);
    compileScenario(variant((s) => { s.regions[0].zones = ['1', '2', '3']; s.fleet.scaleSets[0].zones = ['1', '2', '3']; }), 'inline.yaml');
  });
});

describe('names that are members of every JavaScript object', { concurrency: 2 }, () => {
  test('a VM naming extension "toString" or "constructor" is refused as unknown (it was accepted)', () => {
    for (const name of ['toString', 'constructor', 'hasOwnProperty', 'valueOf']) {
      const err = issuesOf(variant((s) => (s.fleet.vms[0].extensions = [name])));
      assert.deepEqual(err.issues.map((i) => [i.path, i.message]), [['fleet.vms[0].extensions[0]', `unknown extension "${name}"; expected one of: agent`]], name);
    }
  });

  test('a publish event naming extension "hasOwnProperty": exit 2 naming the event (exit 1, "extension type undefined.undefined is not in the catalog")', async () => {
    const file = write('proto-event.yaml', stringify(variant((s) => (s.events[0].publish.extension = 'hasOwnProperty'))));
    assert.equal((await rejected('plan', file)).trim(), `${file}: events[0].publish.extension: unknown extension "hasOwnProperty"; expected one of: agent`);
  });
});

describe('error lines list a few names, not thousands', { concurrency: 2 }, () => {
  test('2,000 publish events and 2,000 manual upgrades to unknown versions: each line lists 20 versions and how many more (380 MB before)', () => {
    const publishes = Array.from({ length: 2_000 }, (_, i) => ({ at: 'PT2H', publish: { extension: 'agent', version: `1.5.${i}.0` } }));
    const manual = Array.from({ length: 2_000 }, (_, i) => ({ at: 'PT3H', manualUpgrade: { extension: 'agent', region: 'east', version: `9.9.${i}.0` } }));
    const started = Date.now();
    const err = issuesOf(variant((s) => s.events.push(...publishes, ...manual)));
    assert.ok(Date.now() - started < 20_000, `refused in ${Date.now() - started} ms`);
    assert.equal(err.issues.length, 2_000);
    assert.match(err.issues[0]!.message, /^9\.9\.0\.0 is never published; expected a version published by then: 1\.0\.0\.0, 1\.1\.0\.0, 1\.5\.0\.0, (1\.5\.\d+\.0, ){16}1\.5\.17\.0 and 1,982 more$/);
  });
});

describe('manual upgrades to versions never published, over a large fleet', { concurrency: 2 }, () => {
  test('4,000 of them, each picking a share of 20,000 VMs: refused in well under 5 s of CPU (about 14 s before: each hashed every machine id), issues in order', () => {
    const manual = Array.from({ length: 4_000 }, (_, i) => ({ at: 'PT3H', manualUpgrade: { extension: 'agent', share: 0.5, version: `9.9.${i}.0` } }));
    const cpu = process.cpuUsage();
    const err = issuesOf(variant((s) => {
      s.fleet.vms[0].count = 20_000;
      s.events.push(...manual, { at: 'PT4H', manualUpgrade: { extension: 'agent', region: 'north', share: 0.5, version: '9.8.0.0' } });
    }));
    const used = process.cpuUsage(cpu);
    assert.ok(used.user + used.system < 5_000_000, `refused in ${((used.user + used.system) / 1e6).toFixed(1)} s of CPU`);
    assert.equal(err.issues.length, 4_002);
    assert.deepEqual(err.issues[0], { path: 'events[1].manualUpgrade.version', message: '9.9.0.0 is never published; expected a version published by then: 1.0.0.0, 1.1.0.0' });
    // The selector is still checked, before the version, as when its machines were picked.
    assert.deepEqual(err.issues.slice(-2).map((i) => i.path), ['events[4001].manualUpgrade.region', 'events[4001].manualUpgrade.version']);
  });

  test('a manual upgrade to a published version still picks its share of the machines', () => {
    const sim = compileScenario(variant((s) => {
      s.fleet.vms[0].count = 200;
      s.events.push({ at: 'PT3H', manualUpgrade: { extension: 'agent', share: 0.5, version: '1.1.0.0' } });
    }), 'inline.yaml');
    const action = sim.actions.find((a) => a.kind === 'manualUpgrade');
    assert.ok(action && action.kind === 'manualUpgrade');
    assert.ok(action.machineIds.length > 50 && action.machineIds.length < 154, `${action.machineIds.length} of 204 machines`);
  });
});

describe('YAML tags', { concurrency: 2 }, () => {
  test('!!js/function and an unknown tag: exit 2 naming the tag and its place (were accepted as text, with a multi-line Node warning)', async () => {
    const body = stringify(valid()).replace(/^name: hostile$/m, 'name: !!js/function "function () { return 1 }"');
    const fn = write('tag-fn.yaml', body);
    assert.equal((await rejected('plan', fn)).trim(), `${fn}: (top level): not valid YAML: Unresolved tag: tag:yaml.org,2002:js/function at line 1, column 7`);
    const custom = write('tag-custom.yaml', stringify(valid()).replace(/^name: hostile$/m, 'name: !foo hostile'));
    assert.equal((await rejected('sim', custom, '--quiet')).trim(), `${custom}: (top level): not valid YAML: Unresolved tag: !foo at line 1, column 7`);
  });

  test('two documents in one file are refused, naming where the second starts; one document between --- and ... is read', async () => {
    const two = write('two-docs.yaml', `${stringify(valid())}---\nname: second\n`);
    const line = stringify(valid()).split('\n').length;
    assert.equal((await rejected('plan', two)).trim(), `${two}: (top level): not valid YAML: Source contains multiple documents; expected one (the second starts at line ${line})`);
    const one = write('one-doc.yaml', `---\n${stringify(valid())}...\n`);
    assert.equal((await cli('plan', one)).status, 0);
    assert.match(await rejected('plan', write('empty.yaml', '# nothing\n')), /empty\.yaml: \(top level\): Invalid input: expected object, received null/);
  });

  test('the standard tags still read as before: !!str, and !!binary is refused by the schema, not the parser', async () => {
    const str = write('tag-str.yaml', stringify(valid()).replace(/^name: hostile$/m, 'name: !!str 12'));
    assert.equal((await cli('plan', str)).status, 0);
    const bin = write('tag-binary.yaml', stringify(valid()).replace(/^name: hostile$/m, 'name: !!binary aGVsbG8='));
    assert.match(await rejected('plan', bin), /tag-binary\.yaml: name: Invalid input: expected string, received Buffer/);
  });
});

describe('a flood of problems', { concurrency: 2 }, () => {
  test('30,000 VM entries without a count: the message lists 100 and says how many more; every issue is kept (30,000 lines were printed)', () => {
    const vms = Array.from({ length: 30_000 }, (_, i) => ({ name: `v${i}`, region: 'west', subscription: 'prod', extensions: ['agent'] }));
    const err = issuesOf(variant((s) => (s.fleet.vms = vms)));
    assert.equal(err.issues.length, 30_000);
    const lines = err.message.split('\n');
    assert.equal(lines.length, MAX_ISSUE_LINES + 1);
    assert.equal(lines[0], 'inline.yaml: fleet.vms[0].count: Invalid input: expected number, received undefined');
    assert.equal(lines.at(-1), 'inline.yaml: and 29,900 more problems');
  });
});
