/**
 * Conditional writes (src/api/arm/preconditions.ts): the verdict on If-Match / If-None-Match for a
 * resource that exists or not, for every kind of header value. Phasewise issues no ETags, so `*` is the
 * only tag it can judge; anything else is refused rather than ignored (ignoring it let a create-only PUT
 * replace what a user had stored). The live server's side is in test/api-server.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { conditionOf, judgeCondition } from '../src/api/arm/preconditions.js';

const header = fc.oneof(fc.constant(undefined), fc.constantFrom('', ' ', '*', ' * ', '"abc"', 'W/"abc"', '"a", "b"', '**', 'null'), fc.string({ maxLength: 12 }));

test('conditions: * is judged on existence, any other ETag never matches (If-Match) or is refused (If-None-Match), empty counts as absent', () => {
  fc.assert(fc.property(header, header, fc.boolean(), (ifMatch, ifNoneMatch, exists) => {
    const c = conditionOf({ 'if-match': ifMatch, 'if-none-match': ifNoneMatch });
    const im = ifMatch?.trim() || null;
    const inm = ifNoneMatch?.trim() || null;
    if (im === null && inm === null) return assert.equal(c, null);
    const err = judgeCondition(c!, exists);
    // The expected verdict, If-None-Match first (RFC 9110 §13.2.2 evaluates If-Match first, but either failing refuses).
    const inmFails = inm !== null && (inm !== '*' || exists);
    const imFails = im !== null && (im !== '*' || !exists);
    if (!inmFails && !imFails) return assert.equal(err, null);
    assert.ok(err, `${JSON.stringify({ ifMatch, ifNoneMatch, exists })} is refused`);
    if (inm !== null && inm !== '*') assert.deepEqual([err.status, err.code, err.target], [400, 'InvalidHeaderValue', 'If-None-Match']);
    else assert.deepEqual([err.status, err.code], [412, 'PreconditionFailed']);
    assert.match(err.message, /If-(None-)?Match/);
  }), { numRuns: 2000 });
});

test('conditions: repeated headers are read as one list, and a list is never *', () => {
  const c = conditionOf({ 'if-match': ['*', '"x"'] });
  assert.equal(c?.ifMatch, '*,"x"');
  assert.equal(judgeCondition(c!, true)?.status, 412);
});
