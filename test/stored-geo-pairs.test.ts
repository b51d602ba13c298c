/**
 * A database saved before the one-geo-pair check (R10) may hold two regions naming one region that names neither.
 * `serve` starts on it, keeps it as stored, and logs a warning naming the regions; the planner keeps the region
 * apart from both (test/sim-quiet-end.test.ts runs such a state to completion).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import { compileScenario } from '../src/sim/scenario.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { CERT, KEY, TEST_TOKEN } from './helpers/api-server.js';

test('R10: serve starts on stored regions with a double geo-pair claim, keeps them as stored and warns at start naming them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-pairs-'));
  try {
    const compiled = compileScenario({
      name: 'pairs', start: '2026-03-01T00:00:00Z',
      regions: [{ name: 'a', pair: 'b' }, { name: 'b' }, { name: 'c' }],
      catalog: [{ publisher: 'P', type: 'A', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
      extensions: { x: { publisher: 'P', type: 'A', typeHandlerVersion: '1.0' } },
      fleet: {},
    }, 'pairs.json');
    compiled.state.fleet.regions.set('c', { name: 'c', pair: 'b', zones: [] }); // refused by the check now
    const store = SqliteStore.open(join(dir, 'phasewise.sqlite'), { mode: 'either' });
    store.importState(compiled.state);
    store.close();

    const config = configSchema.parse({
      host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'warn', subscriptions: ['sub1'], tls: { cert: CERT, key: KEY },
      tokens: [{ token: TEST_TOKEN, name: 'alice@contoso.com', roles: ['reader', 'contributor', 'publisher'] }],
    });
    // The server's log goes to standard output (pino): read what it writes while it starts.
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    // Kept from the test's own output (the test runner reads it).
    process.stdout.write = ((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(config);
    } finally {
      process.stdout.write = write;
    }
    try {
      const warning = lines.map((l) => { try { return JSON.parse(l) as { level: number; msg: string }; } catch { return null; } }).find((l) => l?.msg?.startsWith('stored regions:'));
      assert.ok(warning, `a warning at start (log: ${lines.join('').slice(0, 500)})`);
      assert.equal(warning.level, 40, 'at warn');
      assert.match(warning.msg, /region c is paired with b, but b is the geo-pair of a already/);
      assert.match(warning.msg, /kept as stored; each region is planned in another phase than every region it names or that names it \(R10\)/);
      assert.equal(server.runtime.engine.state.fleet.regions.get('c')!.pair, 'b', 'nothing stored was changed');
    } finally {
      await server.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
