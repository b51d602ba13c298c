/**
 * One rule for package name masks (src/protocol/package-masks.ts): a mask the API takes in installPatches is
 * one the agent driver puts in the goal state and one the agent's goal-state schema takes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GoalStateError, parseGoalState } from '../src/agent/goal-state-schema.js';
import { maskMatches } from '../src/agent/patching/selection.js';
import { ArmError } from '../src/api/arm/errors.js';
import { parseInstallRequest } from '../src/api/arm/patch-requests.js';
import { installOperationOf, PatchRequestError } from '../src/drivers/agent/patch-wire.js';
import { matchesMask } from '../src/model/patches.js';
import { globMatch } from '../src/protocol/glob-match.js';
import { isPackageMask, MAX_MASK_CHARS, MAX_MASKS_PER_LIST, packageMaskProblem } from '../src/protocol/package-masks.js';
import { goal } from './helpers/agent-kit.js';

const body = (include: unknown[], exclude: unknown[] = []) => ({
  maximumDuration: 'PT2H', rebootSetting: 'IfRequired',
  linuxParameters: { classificationsToInclude: ['Critical'], packageNameMasksToInclude: include, packageNameMasksToExclude: exclude },
});

/** null when the API takes the body, else the error's target. */
function apiRefusal(include: string[], exclude: string[] = []): string | null {
  try {
    parseInstallRequest(body(include, exclude), 'linux', 'k');
    return null;
  } catch (e) {
    if (e instanceof ArmError) return e.target ?? e.code;
    throw e;
  }
}

/** Throws unless the driver builds the operation and the agent's schema takes the goal state carrying it. */
function throughTheAgent(include: string[], exclude: string[]): void {
  const op = installOperationOf('install:k', parseInstallRequest(body(include, exclude), 'linux', 'k'));
  parseGoalState(Buffer.from(JSON.stringify({ ...goal(1, []), patchOperations: [op] })));
}

/** null when the agent's goal-state schema takes an install operation with these masks (written by hand, not by the driver), else its error. */
function agentRefusal(include: string[], exclude: string[] = []): string | null {
  const op = installOperationOf('install:k', parseInstallRequest(body([], []), 'linux', 'k'));
  const hand = { ...op, install: { ...op.install!, packageNameMasksToInclude: include, packageNameMasksToExclude: exclude } };
  try {
    parseGoalState(Buffer.from(JSON.stringify({ ...goal(1, []), patchOperations: [hand] })));
    return null;
  } catch (e) {
    if (e instanceof GoalStateError) return e.message;
    throw e;
  }
}

/** Strings near the rule's edges: its own characters, the ones it refuses, and any unicode. */
const near = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'ab9Z*?[]!^._+:~=-<> /;$\'"|&`(){}\\\n'), maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ maxLength: MAX_MASK_CHARS + 4 }),
);

test('a mask the API accepts is one the driver and the agent accept (property)', () => {
  fc.assert(fc.property(fc.array(near, { maxLength: 4 }), fc.array(near, { maxLength: 4 }), (include, exclude) => {
    if (apiRefusal(include, exclude) !== null) return;
    throughTheAgent(include, exclude);
  }), { numRuns: 400 });
});

test('the API and the driver refuse the same masks, the API naming the mask (property)', () => {
  fc.assert(fc.property(near, (mask) => {
    const api = apiRefusal([mask]);
    let driver: string | null = null;
    try {
      installOperationOf('install:k', { key: 'k', maximumDurationMs: 7_200_000, rebootSetting: 'IfRequired', classifications: ['Critical'], include: [mask], exclude: [] });
    } catch (e) {
      if (!(e instanceof PatchRequestError)) throw e;
      driver = e.message;
    }
    assert.equal(api === null, driver === null, `${JSON.stringify(mask)}: API ${api}, driver ${driver}`);
    assert.equal(api === null, isPackageMask(mask));
    if (api !== null) assert.equal(api, 'linuxParameters.packageNameMasksToInclude[0]');
  }), { numRuns: 400 });
});

test('fnmatch masks and version pins are taken; shell characters, < >, a leading - and 129 characters are not', () => {
  for (const ok of ['openssl', 'kernel*', 'lib?ssl3', 'python3-[a-m]*', 'linux-image-[!0-9]*', 'libc6=2.31-0ubuntu9.*', 'nginx=1:1.24.0~jammy', 'a'.repeat(MAX_MASK_CHARS)]) {
    assert.equal(packageMaskProblem(ok), null, ok);
    assert.equal(apiRefusal([ok]), null, ok);
    throughTheAgent([ok], [ok]);
  }
  for (const bad of ['', 'kernel>=5', 'glibc<2.35', '-y', '--allow-downgrades', '=1.0', 'a b', 'a;reboot', '$(id)', 'x/y', 'é', 'a'.repeat(MAX_MASK_CHARS + 1)]) {
    assert.notEqual(packageMaskProblem(bad), null, bad);
    assert.equal(apiRefusal(['openssl', bad]), 'linuxParameters.packageNameMasksToInclude[1]', bad);
  }
});

test('at most 64 masks per list, on both sides', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => `pkg${i}*`);
  assert.equal(MAX_MASKS_PER_LIST, 64);
  assert.equal(apiRefusal(many(64), many(64)), null);
  throughTheAgent(many(64), many(64));
  assert.equal(apiRefusal([], many(65)), 'linuxParameters.packageNameMasksToExclude');
  assert.throws(() => installOperationOf('x', { key: 'k', maximumDurationMs: 7_200_000, rebootSetting: 'IfRequired', classifications: [], include: many(65), exclude: [] }),
    /packageNameMasksToInclude: at most 64 package name masks per list/);
});

test('a mask the API accepts matches on a simulated machine what it matches on a real one, and never throws (property)', () => {
  const text = fc.string({ unit: fc.constantFrom(...'abz9Z.-+:~_'), minLength: 1, maxLength: 8 });
  const sets = fc.constantFrom('*', '?', '[a-c]', '[!a]', '[^9]', '[]]', '[', 'a*', '[z-a]', '=');
  const mask = fc.oneof(near, fc.array(fc.oneof(text, sets), { minLength: 1, maxLength: 5 }).map((xs) => xs.join('')));
  fc.assert(fc.property(mask, text, text, (m, name, version) => {
    if (!isPackageMask(m)) return;
    assert.equal(matchesMask(name, m, version), maskMatches(m, { name, version }), `${JSON.stringify(m)} on ${name} ${version}`);
  }), { numRuns: 1000 });
});

test('a set whose range runs backwards is refused before it reaches a regular expression', () => {
  assert.match(packageMaskProblem('lib[z-a]*') ?? '', /the set \[z-a\], whose range runs backwards/);
  assert.equal(apiRefusal(['lib[z-a]*']), 'linuxParameters.packageNameMasksToInclude[0]');
  assert.equal(packageMaskProblem('lib[a-z]*'), null);
  assert.equal(packageMaskProblem('lib[z-a'), null, 'a [ without its ] is itself');
  assert.ok(matchesMask('libssl', 'lib[r-t]sl') && matchesMask('lib[z-a', 'lib[z-a'));
  assert.ok(matchesMask('openssl', 'open*=3.0.*', '3.0.13') && !matchesMask('openssl', 'open*=3.0.*', '3.1.0'), 'name=version pins the version');
});

test('the agent refuses exactly the masks the API refuses, one rule on both sides (property)', () => {
  fc.assert(fc.property(near, fc.boolean(), (mask, exclude) => {
    const agent = exclude ? agentRefusal(['openssl'], [mask]) : agentRefusal([mask]);
    assert.equal(agent === null, apiRefusal([mask]) === null, `${JSON.stringify(mask)}: agent ${agent}`);
    if (agent !== null) assert.match(agent, exclude ? /packageNameMasksToExclude\.0/ : /packageNameMasksToInclude\.0/);
  }), { numRuns: 400 });
});

test('the agent refuses a leading -, a bare version pin and a backwards set, which its own looser pattern took', () => {
  for (const bad of ['-y', '--allow-downgrades', '=1.0', 'lib[z-a]*', ']x', '!x']) {
    assert.notEqual(packageMaskProblem(bad), null, bad);
    assert.match(agentRefusal([bad]) ?? 'taken', /packageNameMasksToInclude\.0/, bad);
  }
  assert.match(agentRefusal(['lib[z-a]*']) ?? '', /whose range runs backwards/, "the agent says the server's words");
  const many = Array.from({ length: 65 }, (_, i) => `pkg${i}*`);
  assert.match(agentRefusal([], many) ?? '', /packageNameMasksToExclude: at most 64 package name masks per list/);
  assert.equal(agentRefusal(many.slice(0, 64), many.slice(0, 64)), null);
});

/** The regular expression masks were read with until session 21: the oracle the matcher must agree with. */
function regexOracle(pattern: string): RegExp {
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const end = c === '[' ? pattern.indexOf(']', i + 2) : -1;
    if (c === '*') src += '.*';
    else if (c === '?') src += '.';
    else if (end > 0) {
      let b = pattern.slice(i + 1, end);
      const negate = b.startsWith('!') || b.startsWith('^');
      if (negate) b = b.slice(1);
      src += `[${negate ? '^' : ''}${b.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else src += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 'i');
}

test('masks match as the regular expression did: any mask, any name, line breaks and sets included (property)', () => {
  const text = fc.string({ unit: fc.constantFrom(...'abAB9.-\n\r'), maxLength: 10 });
  const part = fc.oneof(fc.string({ unit: fc.constantFrom(...'abAB9.-'), minLength: 1, maxLength: 3 }), fc.constantFrom('*', '**', '?', '[a-c]', '[!a]', '[^9]', '[]]', '[', '[A]'));
  const mask = fc.array(part, { minLength: 1, maxLength: 6 }).map((xs) => xs.join(''));
  fc.assert(fc.property(mask, text, (m, name) => {
    let oracle: RegExp;
    try {
      oracle = regexOracle(m);
    } catch {
      // A set whose range runs backwards: the API refuses the mask (above); the matcher throws as the regular expression did.
      assert.throws(() => globMatch(m, name), SyntaxError);
      return;
    }
    assert.equal(globMatch(m, name), oracle.test(name), `${JSON.stringify(m)} on ${JSON.stringify(name)}`);
  }), { numRuns: 3000 });
});

test('a mask of many stars on a long name is answered (the regular expression backtracked for hours, on the engine thread or the agent)', { timeout: 120_000 }, () => {
  // Valid masks (at most 128 characters) and a name a repository may offer: `^.*a.*a…b$` tried every split.
  const mask = `${'*a'.repeat(40)}*b`;
  assert.equal(packageMaskProblem(mask), null, 'the API takes this mask');
  const name = 'a'.repeat(120);
  assert.equal(matchesMask(name, mask), false);
  assert.equal(maskMatches(mask, { name, version: '1' }), false);
  assert.equal(matchesMask(`${name}b`, mask), true);
});
