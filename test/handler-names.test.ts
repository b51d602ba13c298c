/**
 * One rule for a handler name `Publisher.Type` (src/protocol/handler-names.ts): a type the server registers in its
 * catalog is one whose goal-state entry the agent takes. The server took `Contoso.` + `Agent` (an empty part) and
 * 128 + 128 characters; the agent refused every goal state holding such an entry, whole, so nothing else on that
 * machine changed either.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { GoalStateError, parseGoalState } from '../src/agent/goal-state-schema.js';
import { handlerNameProblem, MAX_HANDLER_NAME_CHARS } from '../src/protocol/handler-names.js';
import { extension, goal } from './helpers/agent-kit.js';
import { call, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

let s: TestServer;
before(async () => (s = await startTestServer()));
after(() => s.stop());

const ref = { uris: ['https://localhost:1/v1/packages/x'], sha256: 'a'.repeat(64), size: 10, signature: { alg: 'ed25519' as const, keyId: 'k1', sig: 'AA==' } };

/** null when the agent's goal-state check takes an entry named `name`, else its error. */
function agentRefusal(name: string): string | null {
  try {
    parseGoalState(Buffer.from(JSON.stringify(goal(1, [{ ...extension({ version: '1.0.0', package: ref, operationId: 'op-1' }), name }]))));
    return null;
  } catch (e) {
    if (e instanceof GoalStateError) return e.message;
    throw e;
  }
}

async function register(publisher: string, type: string): Promise<{ status: number; body: { error?: { code: string; target?: string; message: string } } }> {
  const path = `/phasewise/publishers/${encodeURIComponent(publisher)}/extensionTypes/${encodeURIComponent(type)}`;
  return call(s.url, 'PUT', path, { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN);
}

test('the server registers no extension type whose handler name the agent refuses: an empty part, over 128 characters', async () => {
  for (const [publisher, type] of [['Contoso.', 'Agent'], ['Contoso..Corp', 'Agent'], ['Contoso', 'Agent.'], ['P'.repeat(64), 'T'.repeat(64)]] as const) {
    assert.notEqual(agentRefusal(`${publisher}.${type}`), null, `the agent refuses ${publisher}.${type}`);
    const r = await register(publisher, type);
    assert.equal(r.status, 400, `${publisher}.${type}: ${JSON.stringify(r.body)}`);
    assert.deepEqual([r.body.error?.code, r.body.error?.target], ['InvalidParameter', 'type']);
    assert.match(r.body.error?.message ?? '', /not a handler name|at most 128/);
  }
  const longest = ['P'.repeat(63), 'T'.repeat(MAX_HANDLER_NAME_CHARS - 64)] as const;
  assert.equal((await register(...longest)).status, 201);
  assert.equal(agentRefusal(longest.join('.')), null);
  assert.equal((await register('Contoso.Azure', 'Monitor_Agent-2')).status, 201);
});

test('a handler name the shared rule takes is one the agent takes, and the other way round (property)', () => {
  const part = fc.string({ unit: fc.constantFrom(...'aZ9_-.'), maxLength: 70 });
  fc.assert(fc.property(part, part, (publisher, type) => {
    const name = `${publisher}.${type}`;
    assert.equal(handlerNameProblem(name) === null, agentRefusal(name) === null, name);
  }), { numRuns: 500 });
});
