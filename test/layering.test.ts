/**
 * Architecture guard: the planner and the engine are the functional core. They take time from a Clock
 * and randomness from nowhere, and they import nothing from the shell (store implementations, drivers,
 * simulator, CLI, reports).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

/** Every relative import of a source file (static `import … from`, `export … from`, `import('…')`), as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
    const spec = m[1] ?? m[2]!;
    out.push(join(dirname(file), spec).replace(/\.js$/, '.ts'));
  }
  return out;
}

/** The import graph of these files, restricted to them. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const known = new Set(files);
  return new Map(files.map((f) => [f, importsOf(f).filter((t) => known.has(t))]));
}

/** The import cycles of a graph: Tarjan's strongly connected components of more than one file, or a file importing itself. */
function importCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      onStack.delete(w);
      scc.push(w);
      if (w === v) break;
    }
    if (scc.length > 1 || edges.get(v)!.includes(v)) cycles.push(scc.sort());
  };
  for (const f of edges.keys()) if (!index.has(f)) visit(f);
  return cycles;
}

test('no import cycle anywhere under src/', () => {
  assert.deepEqual(importCycles(importGraph(sources('src'))), []);
});

test('the cycle check finds cycles, long and short', () => {
  const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a', 'd']], ['d', []], ['e', ['e']]]);
  assert.deepEqual(importCycles(g), [['a', 'b', 'c'], ['e']]);
  assert.deepEqual(importCycles(new Map([['a', ['b']], ['b', []]])), []);
});

/**
 * The engine's folders, bottom to top. A file imports only from its own folder or one below it; the four
 * files at the top of src/engine are its public surface: `clock`, `driver` and `state` at the bottom
 * (plain types and state every layer reads), `engine` (the Engine class) above everything.
 */
const ENGINE_LAYERS = ['(base)', 'core', 'attempts', 'rollouts', 'opt-in', 'maintenance', 'os-images', 'patches', 'fleet', 'tick', '(engine)'];

function engineLayer(file: string): string {
  const rel = file.slice('src/engine/'.length);
  if (!rel.includes('/')) return rel === 'engine.ts' ? '(engine)' : '(base)';
  return rel.split('/')[0]!;
}

test('the engine folders import only downward, in their declared order', () => {
  const found: string[] = [];
  for (const file of sources('src/engine')) {
    const from = ENGINE_LAYERS.indexOf(engineLayer(file));
    assert.ok(from >= 0, `${file}: its folder is not in ENGINE_LAYERS; add it where it belongs`);
    for (const target of importsOf(file)) {
      if (!target.startsWith('src/engine/')) continue;
      if (ENGINE_LAYERS.indexOf(engineLayer(target)) > from) found.push(`${file} imports ${target}`);
    }
  }
  assert.deepEqual(found, []);
});

// src/protocol is the bottom layer the agent and the server share (it imports neither: agent-layering), so the model
// may use its pure helpers (the patch masks' matcher) without reaching above itself.
test('the model imports nothing above it: only itself, the pure window arithmetic and the shared protocol', () => {
  const found: string[] = [];
  for (const file of sources('src/model')) {
    for (const target of importsOf(file)) if (!/^src\/(model|schedule|protocol)\//.test(target)) found.push(`${file} imports ${target}`);
  }
  assert.deepEqual(found, []);
});
