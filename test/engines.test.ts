/**
 * The documented runtime is Node.js 20 (README, package.json engines): no installed package may ask for
 * a newer Node (issue 12: cookie 2.x under fastify's light-my-request wanted Node 22, and `npm ci`
 * warned; package.json overrides light-my-request to 6.6.0, which uses cookie 1.x).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';

/** Whether Node `major` (any minor) satisfies an engines range of the forms npm packages use here. */
export function allowsMajor(range: string, major: number): boolean {
  return range.split('||').some((alt) => alt.replace(/([<>=^~]+)\s+/g, '$1').trim().split(/\s+/).every((c) => {
    const m = /^(>=|>|<=|<|\^|~|=)?v?(\d+)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?$/.exec(c);
    if (!m) return c === '*' || c === 'x';
    const n = Number(m[2]);
    switch (m[1]) {
      case '>=': return major >= n;
      case '>': return major > n || (major === n && (m[3] !== undefined && m[3] !== 'x'));
      case '<': return major < n;
      case '<=': return major <= n;
      default: return major === n;
    }
  }));
}

test('every package in package-lock.json runs on Node 20', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[] }> };
  const wanting = Object.entries(lock.packages)
    .map(([name, p]) => [name, Array.isArray(p.engines) ? undefined : p.engines?.node] as const)
    .filter(([, node]) => node !== undefined && !allowsMajor(node, 20));
  assert.deepEqual(wanting, []);
  assert.equal(allowsMajor('>=22', 20), false);
  assert.ok(allowsMajor('20.x || 22.x', 20) && allowsMajor('>= 18', 20) && allowsMajor('^20.17.0 || >=22.9.0', 20));
});
