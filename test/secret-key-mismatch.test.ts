/**
 * A data folder whose secret key does not open the secrets stored in its database (a backup restored onto a
 * new machine without the old `secret.key`, docs/deploy.md). `serve` started normally, and every later request
 * that needed a stored secret answered 500: a PUT of another extension on the machine (it sums the protected
 * settings), a VM replace (it keeps the admin password), an agent's goal state. Now serve refuses to start
 * (exit 2, naming where the key came from) and changes nothing; with the right key it starts as before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import { call, CERT, KEY, TEST_TOKEN } from './helpers/api-server.js';
import { cliWithEnv } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-secret-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const RG = '/subscriptions/sub1/resourceGroups/rg1';
const VM = `${RG}/providers/Microsoft.Compute/virtualMachines`;
const SS = `${RG}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const AV = 'api-version=2026-03-01';
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const TYPES = `/phasewise/publishers/${AMA.publisher}/extensionTypes`;

function config(dataDir: string) {
  return configSchema.parse({
    host: '127.0.0.1', port: 0, dataDir, logLevel: 'silent', clockFactor: 1, tls: { cert: CERT, key: KEY },
    tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }], subscriptions: ['sub1'],
  });
}

/** A database holding one sealed value of `what` (an extension's protected settings, a VM's or a scale set's password). */
async function seeded(what: 'extension' | 'vm' | 'scaleSet'): Promise<string> {
  const dataDir = mkdtempSync(join(dir, `${what}-`));
  const s = await startServer(config(dataDir));
  try {
    const ok = async (method: string, path: string, body: unknown) => {
      const r = await call(s.url, method, path, body);
      assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await ok('PUT', `${RG}?${AV}`, { location: 'westus' });
    await ok('PUT', `${TYPES}/${AMA.type}`, { supportsAutomaticUpgrade: true });
    await ok('PUT', `${TYPES}/${AMA.type}/versions/1.30.0.0`, { os: ['linux'] });
    const osProfile = { adminUsername: 'me', adminPassword: 'P@ssw0rd!' };
    if (what === 'scaleSet') {
      await ok('PUT', `${SS}/ss1?${AV}`, { location: 'westus', sku: { capacity: 1 }, properties: { virtualMachineProfile: { osProfile: { computerNamePrefix: 'ss', ...osProfile } } } });
    } else {
      await ok('PUT', `${VM}/vm1?${AV}`, { location: 'westus', ...(what === 'vm' ? { properties: { osProfile } } : {}) });
    }
    if (what === 'extension') {
      await ok('PUT', `${VM}/vm1/extensions/ama?${AV}`, {
        location: 'westus', properties: { ...AMA, typeHandlerVersion: '1.30', settings: {}, protectedSettings: { key: 'secret' } },
      });
    }
  } finally {
    await s.close();
  }
  return dataDir;
}

for (const what of ['extension', 'vm', 'scaleSet'] as const) {
  test(`serve with a secret key that does not open the stored secrets (${what}) exits 2 naming the key, the database unchanged; the right key starts`, { timeout: 180_000 }, async () => {
    const dataDir = await seeded(what);
    const db = join(dataDir, 'phasewise.sqlite');
    const keyFile = join(dataDir, 'secret.key');
    copyFileSync(keyFile, join(dataDir, 'secret.key.original'));
    writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`); // what a new machine generates
    const before = readFileSync(db);
    const env = { PHASEWISE_TOKEN: TEST_TOKEN, PHASEWISE_SUBSCRIPTIONS: 'sub1' };
    const args = ['serve', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', '--clock-factor', '1'];
    const wrong = await cliWithEnv(env, 120_000, ...args);
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, /secret key in .*secret\.key does not open the secrets stored in this database/);
    assert.match(wrong.stderr, /restored backup needs the old data folder's secret\.key/);
    assert.ok(readFileSync(db).equals(before), 'the database is unchanged');
    // The same through the configuration's key: named as such.
    const viaEnv = await cliWithEnv({ ...env, PHASEWISE_SECRET_KEY: randomBytes(32).toString('hex') }, 120_000, ...args);
    assert.equal(viaEnv.status, 2, viaEnv.stderr);
    assert.match(viaEnv.stderr, /secret key in secretKey \(PHASEWISE_SECRET_KEY\) does not open/);
    // The key the database was written with: serve starts and reads what it stored.
    copyFileSync(join(dataDir, 'secret.key.original'), keyFile);
    const s = await startServer(config(dataDir));
    try {
      const path = what === 'scaleSet' ? `${SS}/ss1?${AV}` : `${VM}/vm1?${AV}`;
      assert.equal((await call(s.url, 'GET', path)).status, 200);
    } finally {
      await s.close();
    }
    assert.ok(statSync(db).size > 0);
  });
}

test('serve on a database with no secrets starts with any key', { timeout: 120_000 }, async () => {
  const dataDir = mkdtempSync(join(dir, 'none-'));
  const first = await startServer(config(dataDir));
  await first.close();
  writeFileSync(join(dataDir, 'secret.key'), `${randomBytes(32).toString('hex')}\n`);
  const s = await startServer(config(dataDir));
  try {
    assert.equal((await call(s.url, 'GET', `/phasewise/rollouts`)).status, 200);
  } finally {
    await s.close();
  }
});
