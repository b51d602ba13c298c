/**
 * Resource group names as ARM takes them: 1 to 90 letters, digits, '-', '_', '.', '(' and ')', not ending in
 * '.'. Phasewise took the stricter rule of the resources it creates (64 characters, no parentheses, a letter
 * or digit first), so a group Azure accepts (`rg-(legacy)`, `_shared`, 80 characters) was refused, with a
 * 404; and it took `rg.`, which Azure refuses. A name refused is `400 InvalidResourceGroup` and creates nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { call, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const AV = 'api-version=2021-04-01';
const group = (name: string) => `/subscriptions/${SUB}/resourceGroups/${encodeURIComponent(name)}?${AV}`;
const ALLOWED = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.()';

describe('resource group names', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer(); });
  after(async () => s?.stop());

  test('names Azure accepts are created and read back: parentheses, a leading - or _, 90 characters', async () => {
    for (const name of ['rg-(legacy)', '_shared', '-dash', '(x)', 'a', 'r'.repeat(90), 'a.b']) {
      const put = await call(s.url, 'PUT', group(name), { location: 'westus' });
      assert.equal(put.status, 201, `${name}: ${JSON.stringify(put.body)}`);
      const get = await call(s.url, 'GET', group(name));
      assert.equal(get.body.name, name);
    }
    // A machine lives in such a group as in any other.
    const vm = await call(s.url, 'PUT', `/subscriptions/${SUB}/resourceGroups/rg-(legacy)/providers/Microsoft.Compute/virtualMachines/vm1?api-version=2026-03-01`,
      { location: 'westus' });
    assert.ok(vm.status === 200 || vm.status === 201, JSON.stringify(vm.body));
  });

  test('names Azure refuses answer 400 InvalidResourceGroup and create nothing: a final period, 91 characters, other characters', async () => {
    for (const name of ['rg.', 'r'.repeat(91), 'a b', 'rg!', 'a/b', 'caf\u00e9', 'a\u200bb']) {
      const put = await call(s.url, 'PUT', group(name), { location: 'westus' });
      assert.equal(put.status, 400, `${name}: ${JSON.stringify(put.body)}`);
      assert.equal(put.body.error.code, 'InvalidResourceGroup', name);
      assert.equal((await call(s.url, 'GET', group(name))).status, 404, `${name} was not created`);
    }
  });

  test('property: a name of the allowed characters, 1 to 90 long, is taken exactly when it does not end in a period', async () => {
    // `.` and `..` are path segments every client resolves away: they never reach the group's route.
    const name = fc.array(fc.constantFrom(...ALLOWED), { minLength: 1, maxLength: 95 }).map((cs) => cs.join('')).filter((n) => n !== '.' && n !== '..');
    await fc.assert(fc.asyncProperty(name, async (n) => {
      const put = await call(s.url, 'PUT', group(n), { location: 'westus' });
      const valid = n.length <= 90 && !n.endsWith('.');
      if (valid) assert.ok(put.status === 200 || put.status === 201, `${n}: ${JSON.stringify(put.body)}`);
      else assert.equal(put.body?.error?.code, 'InvalidResourceGroup', `${n}: ${put.status} ${JSON.stringify(put.body)}`);
    }), { numRuns: 40 });
  });
});
