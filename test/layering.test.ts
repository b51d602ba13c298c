/**
 * Architecture guard: the planner and the engine are the functional core. They take time from a Clock
 * and randomness from nowhere, and they import nothing from the shell (store implementations, drivers,
 * simulator, CLI, reports).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

const CORE = ['src/model', 'src/catalog', 'src/planner', 'src/engine', 'src/schedule'];

test('the core never reads the wall clock, sleeps or draws random numbers', () => {
  const banned = [/Date\.now\(/, /new Date\(\)/, /setTimeout\(/, /setInterval\(/, /Math\.random\(/, /performance\.now\(/];
  const found: string[] = [];
  for (const file of CORE.flatMap(sources)) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const re of banned) if (re.test(text)) found.push(`${file}: ${re}`);
  }
  assert.deepEqual(found, []);
});

test('the core imports nothing from the shell', () => {
  const shell = /from '\.\.\/(sim|drivers|cli|report|util\/system-clock|audit)\b|from '\.\.\/store\/(?!store\.js)/;
  const found: string[] = [];
  for (const file of CORE.flatMap(sources)) {
    for (const line of readFileSync(join(root, file), 'utf8').split('\n')) if (/^import /.test(line) && shell.test(line)) found.push(`${file}: ${line}`);
  }
  assert.deepEqual(found, []);
});

test('the planner is pure: it imports only the model, the window arithmetic and itself', () => {
  const found: string[] = [];
  for (const file of sources('src/planner')) {
    for (const line of readFileSync(join(root, file), 'utf8').split('\n')) {
      if (/^import /.test(line) && !/from '(\.\/|\.\.\/model\/|\.\.\/schedule\/|luxon')/.test(line)) found.push(`${file}: ${line}`);
    }
  }
  assert.deepEqual(found, []);
});
