/**
 * `serve` started again on its data folder without the `--scenario` it was first started with (the scenario
 * seeds a new database only; docs/api.md). The simulated fleet's saved state names the scenario's background
 * episodes that had not started yet; restoring it looked each one up in the failure models of the scenario
 * given now, found none, and ended serve with `phasewise: Cannot read properties of undefined (reading 'region')`
 * (exit 1) on the demo's database after a few minutes of `npm start`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import { CERT, KEY, TEST_TOKEN } from './helpers/api-server.js';
import { ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-restart-scenario-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(scenario: string | undefined) {
  return configSchema.parse({
    host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', clockFactor: 1, tls: { cert: CERT, key: KEY },
    tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }],
    ...(scenario ? { scenario } : {}),
  });
}

async function rollouts(url: string): Promise<number> {
  const res = await fetch(`${url.replace('127.0.0.1', 'localhost')}/phasewise/rollouts`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
  return res.status;
}

test('serve started again without its scenario (a background episode not started yet) serves on; with the scenario again too', { timeout: 120_000 }, async () => {
  // The episode starts 70 minutes into the scenario: at the real-time clock it has not started at the stop.
  const first = await startServer(config(join(ROOT, 'examples/background-faults.yaml')));
  assert.equal(await rollouts(first.url), 200);
  await first.close(); // saves the simulated fleet's state, the episode still to come
  const second = await startServer(config(undefined));
  try {
    assert.equal(await rollouts(second.url), 200);
  } finally {
    await second.close();
  }
  const third = await startServer(config(join(ROOT, 'examples/background-faults.yaml')));
  try {
    assert.equal(await rollouts(third.url), 200);
  } finally {
    await third.close();
  }
});
