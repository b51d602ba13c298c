/**
 * Resources seeded from a scenario read and write through ARM exactly as if a client had created them:
 * the demo's scale sets show the image the engine follows, keep it across any PATCH, and take
 * `osRollingUpgrade` with a history to show for it (R65, R66).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Documents } from '../src/api/arm/documents.js';
import type { SimDriverSnapshot } from '../src/drivers/sim/sim-driver.js';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import type { RunningServer } from '../src/server/serve.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { call, CERT, eventually, KEY, PUBLISHER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const AV = 'api-version=2026-03-01';
const VMSS = '/subscriptions/contoso-prod/resourceGroups/rg-contoso-prod/providers/Microsoft.Compute/virtualMachineScaleSets';
const UBUNTU = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';

describe('scale sets seeded from the demo scenario', () => {
  let s: TestServer;
  // Real time: the scenario's own events (days in) do not happen during the test.
  before(async () => { s = await startTestServer({ scenario: 'examples/demo.yaml', clockFactor: 1, subscriptions: [] }); });
  after(async () => s?.stop());

  const engineImage = () => [...s.runtime.engine.state.fleet.scaleSets.values()].find((x) => x.name === 'api-eus')?.image;

  test('R60: the ARM document names the image the engine follows', async () => {
    const r = await call(s.url, 'GET', `${VMSS}/api-eus?${AV}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const ref = r.body.properties.virtualMachineProfile.storageProfile.imageReference;
    assert.deepEqual({ publisher: ref.publisher, offer: ref.offer, sku: ref.sku, version: ref.version }, { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' });
  });

  test('R60: a tags-only PATCH keeps the image, in the document and in the engine', async () => {
    assert.ok(engineImage());
    const p = await call(s.url, 'PATCH', `${VMSS}/api-eus?${AV}`, { tags: { team: 'web' } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.properties.virtualMachineProfile.storageProfile.imageReference.offer, 'ubuntu-24_04-lts');
    assert.deepEqual(engineImage(), { kind: 'platform', publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' });
    const again = await call(s.url, 'GET', `${VMSS}/api-eus?${AV}`);
    assert.equal(again.body.tags.team, 'web');
    assert.equal(again.body.properties.virtualMachineProfile.storageProfile.imageReference.sku, 'server');
  });

  test('R65, R66: osRollingUpgrade on a seeded set starts, and its history shows it', async () => {
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202612010`, { osType: 'Linux' }, PUBLISHER_TOKEN)).status, 201);
    assert.equal((await call(s.url, 'PUT', `${UBUNTU}/24.04.202612010/replications/eastus`, undefined, PUBLISHER_TOKEN)).status, 201);
    const start = await call(s.url, 'POST', `${VMSS}/api-eus/osRollingUpgrade?${AV}`);
    assert.equal(start.status, 202, JSON.stringify(start.body));
    const history = await call(s.url, 'GET', `${VMSS}/api-eus/osUpgradeHistory?${AV}`);
    assert.equal(history.status, 200);
    assert.ok(history.body.value.length >= 1, JSON.stringify(history.body));
    assert.equal(history.body.value[0].properties.targetImageReference.version, '24.04.202612010');
  });
});

describe('one OS image release reads as one rollout', () => {
  let s: RunningServer;
  let url: string;
  let dir: string;
  // Deterministic: the demo runs on the virtual clock to day 6 (its image release superseded as it
  // reaches more regions), then serve opens that database on a stopped clock and is asked about it.
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'phasewise-superseded-'));
    const scenario = loadScenarioFile('examples/demo.yaml');
    const store = SqliteStore.open(join(dir, 'phasewise.sqlite'), { mode: 'new' });
    store.importState(scenario.state);
    const sim = new Simulation(scenario, { store });
    while (sim.clock.now() < scenario.startMs + 6 * 86_400_000 && sim.step());
    store.close();
    s = await startServer(configSchema.parse({
      host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', clockFactor: 1, subscriptions: [], scenario: 'examples/demo.yaml',
      tls: { cert: CERT, key: KEY }, tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }],
    }));
    s.runtime.stop();
    url = s.url.replace('127.0.0.1', 'localhost');
  });
  after(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('R66: superseded rollouts say superseded (and by which), osUpgradeHistory has one entry per release, no phase shows baking without a start', async () => {
    const list = (await call(url, 'GET', '/phasewise/rollouts')).body.value as Array<Record<string, any>>;
    const os = list.filter((r) => r.artifact.kind === 'osImage');
    const superseded = os.filter((r) => r.status === 'superseded');
    assert.ok(superseded.length > 0, JSON.stringify(os.map((r) => [r.id, r.status])));
    assert.equal(os.filter((r) => r.status === 'cancelled').length, 0, 'nobody cancelled them');
    for (const r of superseded) assert.ok(os.some((o) => o.id === r.supersededBy), `${r.id} names its successor`);
    for (const r of list) {
      for (const p of r.phases) {
        assert.notEqual(p.status, 'baking', `${r.id} phase ${p.index}`);
        if (p.startedAt === null) assert.equal(p.status, 'pending', `${r.id} phase ${p.index} has not started`);
      }
    }
    const filtered = (await call(url, 'GET', '/phasewise/rollouts?status=superseded')).body.value;
    assert.equal(filtered.length, superseded.length);
    const history = (await call(url, 'GET', `${VMSS}/web-eus/osUpgradeHistory?${AV}`)).body.value as Array<Record<string, any>>;
    const versions = history.map((h) => h.properties.targetImageReference.version);
    assert.deepEqual(versions, [...new Set(versions)], 'one entry per release');
    assert.ok(history.every((h) => h.properties.runningStatus.code !== 'Cancelled'), JSON.stringify(history.map((h) => h.properties.runningStatus)));
  });
});

describe('serve keeps the simulated fleet across a restart', () => {
  test('the fleet\'s state is saved when serve stops and restored when it starts again', async () => {
    const s = await startTestServer({ scenario: 'examples/demo.yaml', clockFactor: 86_400, subscriptions: [] });
    let again: Awaited<ReturnType<typeof startServer>> | null = null;
    try {
      await eventually(async () => s.driver.stats.actions > 0, 30_000, 'the simulated fleet to take actions');
      await s.close();
      const store = SqliteStore.open(join(s.dir, 'phasewise.sqlite'), { mode: 'existing' });
      const saved = new Documents(store.database).get<SimDriverSnapshot>('/phasewise/simulator')?.body;
      store.close();
      assert.ok(saved, 'saved on stop');
      assert.ok(saved.stats.actions > 0 && saved.queue.length > 0);
      // Started again (clock stopped, so nothing moves before we look): the fleet is the one saved, not a reseeded one.
      again = await startServer(configSchema.parse({
        host: '127.0.0.1', port: 0, dataDir: s.dir, logLevel: 'silent', clockFactor: 86_400, subscriptions: [], scenario: 'examples/demo.yaml',
        tls: { cert: CERT, key: KEY }, tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }],
      }));
      again.runtime.stop();
      // Recovery resends committed but unanswered actions: duplicates to the restored fleet, not new work.
      assert.equal(again.driver.stats.actions, saved.stats.actions);
      assert.deepEqual(again.driver.snapshot().rng, saved.rng);
      assert.deepEqual(again.driver.snapshot().sick, saved.sick);
    } finally {
      await again?.close();
      await s.stop();
    }
  });
});
