/**
 * Every rule the engine issue promises has a test named after it (`R22: ...`), so that
 * `grep -r "R22:" test/` finds its proof.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const testDir = join(import.meta.dirname, '..', '..', 'test');
const REQUIRED = ['R1', 'R2', 'R3', 'R4', 'R5', 'R6', 'R10', 'R11', 'R12', 'R13', 'R14', 'R15', 'R20', 'R21', 'R22', 'R23', 'R24', 'R25', 'R30', 'R31', 'R32', 'R40', 'R41', 'R50', 'R60', 'R61',
  'R62', 'R63', 'R64', 'R65', 'R66', 'R70', 'R71', 'R72', 'R73', 'R74', 'R75', 'R77', 'R83', 'R84'];

function namedRules(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const f of readdirSync(testDir).filter((n) => n.endsWith('.test.ts'))) {
    const text = readFileSync(join(testDir, f), 'utf8');
    // A test or describe name (or a table row that becomes one) that starts with the rule id.
    for (const m of text.matchAll(/(?:test|it|describe)\(\s*[`'"](R\d+):|[`'"](R\d+): /g)) {
      const id = m[1] ?? m[2]!;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  }
  return counts;
}

test('every rule of R1–R6, R10–R15, R20–R25, R30–R32, R40–R41, R50, R60–R66, R70–R75, R77, R83, R84 has a test that names it', () => {
  const counts = namedRules();
  assert.deepEqual(REQUIRED.filter((r) => !counts.has(r)), []);
});
