/**
 * READ_PARAMETERS (query-parameters.ts) is the list the duplicate-parameter check reads, kept by hand: a
 * route that reads a parameter missing from it takes `?x=1&x=2` as one of them, silently. This test reads
 * the sources of the HTTP routes for every way they read a query parameter and fails when one is missing
 * from the list, or when the list names one nothing reads any more.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { READ_PARAMETERS } from '../src/api/arm/query-parameters.js';

const root = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The ways the routes read a query parameter; each captures the name. */
const READS: RegExp[] = [
  /queryOf\(req\)\.(\$?[\w-]+)/g, // queryOf(req).monitor
  /\bq\??\.(\$?\w+)/g, // const q = queryOf(req); q.status (files that call queryOf, or take its record as `q`)
  /\bq\[['"]([^'"]+)['"]\]/g, // q['api-version']
  /\b(?:intParam|booleanQuery)\(\s*(?:q|req)\s*,\s*'([^']+)'/g, // intParam(q, 'after', …), booleanQuery(req, 'forceExtensionUpgrade', …)
  /\(req\.query as [^)]*\)\.(\w+)/g, // (req.query as Record<string, unknown>).wait
  /\bk\.toLowerCase\(\) === '([^']+)'/g, // a loop over req.query comparing names
  /Object\.hasOwn\(query, '([^']+)'\)/g, // apiVersionParameter
];

/** Whether a file reads query parameters at all (so `q.` in it is a query record, not something else). */
const readsQuery = (text: string) => /queryOf\(|req\.query|booleanQuery\(|q: Record<string, string>/.test(text);

function readNames(): Map<string, string> {
  const found = new Map<string, string>(); // lower-cased name → where it is read first
  for (const file of [...sources(join(root, 'src/api')), ...sources(join(root, 'src/dashboard'))]) {
    const text = readFileSync(file, 'utf8');
    if (!readsQuery(text)) continue;
    for (const re of READS) {
      for (const m of text.matchAll(re)) {
        const name = m[1]!.toLowerCase();
        if (!found.has(name)) found.set(name, `${relative(root, file)}: ${m[0]}`);
      }
    }
  }
  return found;
}

test('every query parameter a route reads is in READ_PARAMETERS (so a repeat of it with another value is refused), and nothing else is', () => {
  const read = readNames();
  // The patterns still find the reads they were written for (a refactoring that changes how parameters are read must change them too).
  for (const known of ['api-version', '$skiptoken', '$filter', 'after', 'wait', 'unitskip', 'forceextensionupgrade', '$expand', 'monitor']) {
    assert.ok(read.has(known), `the scan no longer finds reads of '${known}'; update READS in this test`);
  }
  const missing = [...read].filter(([name]) => !READ_PARAMETERS.has(name)).map(([name, where]) => `${name} (${where})`);
  assert.deepEqual(missing, [], 'read by a route but not in READ_PARAMETERS');
  const unread = [...READ_PARAMETERS].filter((name) => !read.has(name));
  assert.deepEqual(unread, [], 'in READ_PARAMETERS but read by no route');
});
