/**
 * The API's documents refuse a resource id or parent id over MAX_ID_BYTES (UTF-8) with a clear ARM
 * error and store nothing: PostgreSQL's indexes take keys of about 2,700 bytes at most, and a row the
 * leader could not ship to it would block every later change (docs/api.md#limits).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { Documents, MAX_ID_BYTES } from '../src/api/arm/documents.js';
import { ArmError } from '../src/api/arm/errors.js';

test('ids over the limit are refused by name and nothing is stored; ids within it are kept', () => {
  const seen = { over: 0, within: 0 };
  // Names of 1–1,500 characters of 1, 2 or 4 bytes each: both sides of the limit, at and near it.
  const names = fc.tuple(fc.integer({ min: 1, max: 1500 }), fc.constantFrom('a', 'é', '😀')).map(([n, c]) => c.repeat(n));
  fc.assert(fc.property(names, fc.boolean(), (name, asParent) => {
    const db = new Database(':memory:');
    try {
      const docs = new Documents(db);
      const id = `/subscriptions/s/resourceGroups/${name}`;
      const [docId, parent] = asParent ? [`${id}/child`, id] : [id, '/subscriptions/s'];
      const over = Buffer.byteLength(docId) > MAX_ID_BYTES || Buffer.byteLength(parent) > MAX_ID_BYTES;
      seen[over ? 'over' : 'within']++;
      if (over) {
        assert.throws(() => docs.put(docId, parent, 'resourceGroup', { n: 1 }), (err: unknown) => err instanceof ArmError && err.status === 400
          && (err.body().error.code === 'InvalidResourceId') && /at most 2048/.test(err.message));
        assert.equal((db.prepare('SELECT count(*) AS n FROM arm_documents').get() as { n: number }).n, 0);
      } else {
        docs.put(docId, parent, 'resourceGroup', { n: 1 });
        assert.deepEqual(docs.get(docId)?.body, { n: 1 });
      }
    } finally {
      db.close();
    }
  }), { numRuns: 200 });
  assert.ok(seen.over > 20 && seen.within > 20, JSON.stringify(seen));
});
