/**
 * dependencyLevel in goal states comes from ARM's provisionAfterExtensions: the pure mapping (chains,
 * diamonds, names not on the machine, any casing, cycles) and over the wire, an extension provisioned
 * after another is one level above it in its machine's goal state. (That the agent runs the levels in
 * order: test/agent-bad-input.test.ts, "dependency levels".)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dependencyLevels } from '../src/api/agent/dependency-levels.js';
import type { GoalState } from '../src/protocol/agent-wire.js';
import { call, eventually, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { handlerZip, statusReport, TestAgent, uploadPackage } from './helpers/agent-client.js';

const levels = (graph: Record<string, string[]>) => Object.fromEntries(dependencyLevels(Object.keys(graph), (n) => graph[n] ?? []));

test('levels from provisionAfterExtensions: chains, diamonds, unknown names, casing, cycles', () => {
  assert.deepEqual(levels({ a: [], b: ['a'], c: ['b'] }), { a: 0, b: 1, c: 2 });
  assert.deepEqual(levels({ top: ['left', 'right'], left: ['base'], right: [], base: [] }), { top: 2, left: 1, right: 0, base: 0 });
  assert.deepEqual(levels({ a: ['not-on-this-machine'], b: ['A'] }), { a: 0, b: 1 });
  assert.deepEqual(levels({ self: ['self'] }), { self: 0 });
  // A cycle still gives every entry a level, and an entry after the cycle is above it.
  const cyc = levels({ x: ['y'], y: ['x'], z: ['x'] });
  assert.ok(Number.isInteger(cyc.x) && Number.isInteger(cyc.y) && cyc.x !== cyc.y);
  assert.ok(cyc.z! > cyc.x!);
});

describe('dependencyLevel over the wire', () => {
  const SUB = 'sub1';
  const AV = 'api-version=2024-07-01';
  const ENROLL = 'enroll-token-0123456789abcdef';
  const ARC = `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines`;
  const TYPES = '/phasewise/publishers/Contoso/extensionTypes';
  let s: TestServer;
  let a: TestAgent;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }] });
    for (const t of ['Base', 'Dep']) {
      assert.equal((await call(s.url, 'PUT', `${TYPES}/${t}`, { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
      assert.equal((await uploadPackage(s, 'Contoso', t, '1.0.0.0', await handlerZip(t))).status, 201);
      assert.equal((await call(s.url, 'PUT', `${TYPES}/${t}/versions/1.0.0.0`, { os: ['linux'] }, PUBLISHER_TOKEN)).status, 201);
    }
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'dep-1' });
    assert.equal((await a.status(statusReport())).status, 204);
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  test('an extension provisioned after another is one level above it in the goal state', async () => {
    const ext = (type: string, after?: string[]) => ({ location: 'westus', properties: { publisher: 'Contoso', type, typeHandlerVersion: '1.0', ...(after ? { provisionAfterExtensions: after } : {}) } });
    assert.equal((await call(s.url, 'PUT', `${ARC}/dep-1/extensions/dep?${AV}`, ext('Dep', ['BASE']))).status, 200);
    assert.equal((await call(s.url, 'PUT', `${ARC}/dep-1/extensions/base?${AV}`, ext('Base'))).status, 200);
    const gs = await eventually(async () => {
      const r = await a.goalState();
      return r.status === 200 && (r.json as GoalState).extensions.length === 2 ? (r.json as GoalState) : null;
    }, 30_000, 'both extensions in the goal state');
    const level = Object.fromEntries(gs.extensions.map((e) => [e.extensionName, e.dependencyLevel]));
    assert.deepEqual(level, { base: 0, dep: 1 });
  });
});
