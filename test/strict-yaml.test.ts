/**
 * parseStrictYaml finds repeated keys itself, in linear time, instead of the parser's uniqueKeys check
 * (which compares each key with every earlier key of its map: 150,000 keys took minutes). Its answers
 * must stay those of the parser's check: the property compares both on generated YAML, byte for byte.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { duplicateKeys, parseStrictYaml } from '../src/util/strict-yaml.js';

/** parseStrictYaml as it was, with the parser's own uniqueKeys check: the reference. */
function referenceParse(text: string): unknown {
  const docs = parseAllDocuments(text, { uniqueKeys: true, logLevel: 'silent' });
  if (docs.length === 0) return null;
  if (docs.length > 1) {
    const line = text.slice(0, docs[1]!.range[0]).split('\n').length;
    throw new Error(`Source contains multiple documents; expected one (the second starts at line ${line})`);
  }
  const doc = docs[0]!;
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new Error(firstLine(problem.message));
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new Error(firstLine((err as Error).message));
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/:$/, '');
}

function outcome(parse: (text: string) => unknown, text: string): { value: unknown } | { error: string } {
  try {
    return { value: parse(text) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

// Keys that are equal or not by the parser's rule (same scalar value): 1 and 1.0 and 0x1 are one key, "1" another.
const key = fc.constantFrom('a', 'b', '"a"', "'b'", '1', '1.0', '0x1', '"1"', '~', 'null', '.nan', '.NaN', 'true', '&k a', '!!str a', '!!str 1', '*k', '? a', '[a]', '{a: 1}');
const scalar = fc.constantFrom('1', 'x', '"two\n  lines"', '[1, 2]', '{}', '&k a', '*k', '|\n  text', '!foo bar', ': bad', '[unclosed', '"', '- item');

const yamlText: fc.Arbitrary<string> = fc.letrec<{ map: string }>((tie) => ({
  map: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.array(fc.tuple(key, scalar), { minLength: 1, maxLength: 6 }).map((pairs) => pairs.map(([k, v]) => `${k}: ${v}`).join('\n')),
    fc.array(fc.tuple(key, scalar), { minLength: 1, maxLength: 5 }).map((pairs) => `{ ${pairs.map(([k, v]) => `${k}: ${v}`).join(', ')} }`),
    fc.array(fc.tuple(key, tie('map')), { minLength: 1, maxLength: 4 })
      .map((pairs) => pairs.map(([k, v]) => `${k}:\n${v.split('\n').map((l) => `  ${l}`).join('\n')}`).join('\n')),
    fc.array(tie('map'), { minLength: 1, maxLength: 3 }).map((items) => items.map((m) => `- ${m.split('\n').join('\n  ')}`).join('\n')),
  ),
})).map;

describe('parseStrictYaml: repeated keys', { concurrency: 2 }, () => {
  test('the same data or the same error as the parser\'s own uniqueKeys check, on generated YAML', () => {
    fc.assert(fc.property(yamlText, (text) => {
      assert.deepEqual(outcome(parseStrictYaml, text), outcome(referenceParse, text), text);
    }), { numRuns: 1000 });
  });

  test('a map larger than the parser\'s check is run on (1,000 keys): the same data or the same error, on generated keys among 1,100 others', () => {
    const others = Array.from({ length: 1100 }, (_, i) => `k${i}: ${i}`);
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(1100), key, scalar), { maxLength: 3 }), (inserts) => {
      const lines = [...others];
      for (const [at, k, v] of inserts) lines.splice(at, 0, `${k.startsWith('?') ? k.slice(2) : k}: ${v.includes('\n') ? 'x' : v}`);
      const text = lines.join('\n');
      assert.deepEqual(outcome(parseStrictYaml, text), outcome(referenceParse, text), inserts.join(' | '));
    }), { numRuns: 60 });
  });

  test('a repeated key is refused with the parser\'s message, line and column', () => {
    assert.throws(() => parseStrictYaml('a: 1\nb: 2\na: 3\n'), { message: 'Map keys must be unique at line 3, column 1' });
    assert.throws(() => parseStrictYaml('x:\n  y: {k: 1, "k": 2}\n'), { message: 'Map keys must be unique at line 2, column 13' });
    assert.throws(() => parseStrictYaml('a: "one\n  two"\n1: x\n1.0: y\n'), { message: 'Map keys must be unique at line 4, column 1' });
    assert.deepEqual(parseStrictYaml('.nan: 1\n.nan: 2\n"1": a\n1: b\n'), { NaN: 2, '1': 'b' });
  });

  test('the check examines each key once: linear in the size of the map (the parser\'s check was quadratic)', () => {
    const n = 20_000;
    const text = Array.from({ length: n }, (_, i) => `k${i}: { v: ${i} }`).join('\n');
    const doc = parseAllDocuments(text, { uniqueKeys: false })[0]!;
    assert.deepEqual(duplicateKeys(doc.contents), { first: undefined, largestMap: n, keys: 2 * n }, 'n outer keys and one inner key each: each examined once');
  });

  test('parsing a map of 2,000 keys makes no pairwise key comparisons (Array.prototype.some is how the parser\'s check compares)', () => {
    const n = 2_000;
    const text = Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join('\n');
    const some = Array.prototype.some;
    let calls = 0;
    Array.prototype.some = function (this: unknown[], fn: (v: unknown, i: number, a: unknown[]) => unknown, thisArg?: unknown) {
      return some.call(this, (v: unknown, i: number, a: unknown[]) => (calls++, fn.call(thisArg, v, i, a)));
    } as typeof some;
    try {
      assert.equal((parseStrictYaml(text) as Record<string, number>)[`k${n - 1}`], n - 1);
    } finally {
      Array.prototype.some = some;
    }
    // The parser's check made n²/2 (2,000,000) calls here; other uses of some() are a few per key at most.
    assert.ok(calls < 10 * n, `${calls} callback calls of Array.prototype.some for ${n} keys`);
  });
});
