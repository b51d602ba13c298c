/**
 * The agent runs on machines without the server: src/agent imports only itself, the wire contract
 * (src/protocol) and libraries; nothing of the engine, store, server, simulator or API.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');

test('src/agent imports only itself, src/protocol and packages', () => {
  const found: string[] = [];
  for (const f of readdirSync(join(root, 'src/agent')).filter((n) => n.endsWith('.ts'))) {
    for (const line of readFileSync(join(root, 'src/agent', f), 'utf8').split('\n')) {
      const m = /^import .* from '(\.[^']*)'/.exec(line);
      if (m && !/^\.\/(patching\/)?[a-z-]+\.js$|^\.\.\/protocol\/[a-z-]+\.js$/.test(m[1]!)) found.push(`${f}: ${line}`);
    }
  }
  // The package manager adapters: only themselves and the wire contract (they run where the agent runs).
  for (const f of readdirSync(join(root, 'src/agent/patching')).filter((n) => n.endsWith('.ts'))) {
    for (const line of readFileSync(join(root, 'src/agent/patching', f), 'utf8').split('\n')) {
      const m = /^import .* from '(\.[^']*)'/.exec(line);
      if (m && !/^\.\/[a-z-]+\.js$|^\.\.\/\.\.\/protocol\/[a-z-]+\.js$/.test(m[1]!)) found.push(`patching/${f}: ${line}`);
    }
  }
  assert.deepEqual(found, []);
});

test('src/protocol imports nothing of either side', () => {
  const found: string[] = [];
  for (const f of readdirSync(join(root, 'src/protocol')).filter((n) => n.endsWith('.ts'))) {
    for (const line of readFileSync(join(root, 'src/protocol', f), 'utf8').split('\n')) {
      if (/^import .* from '\.\.\//.test(line)) found.push(`${f}: ${line}`);
    }
  }
  assert.deepEqual(found, []);
});
