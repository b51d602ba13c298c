/**
 * docs/deploy.md's systemd units followed literally: `systemd-analyze verify` accepts them (where it is
 * installed), every PHASEWISE_* variable the page names is one Phasewise reads, the units' settings are
 * ones `serve` takes, the data folder is one systemd makes for the service's user (`StateDirectory=`: the
 * user cannot create a folder in /var/lib, and the units had none), and `serve` started with the single
 * replica's environment serves, then stops on the unit's KillSignal with exit status 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ENV_VARS, loadConfig } from '../src/server/config.js';
import { ROOT, startServe } from './helpers/cli.js';

const page = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
const blocks = [...page.matchAll(/```ini\n([^]*?)```/g)].map((m) => m[1]!);
const units = blocks.filter((b) => b.includes('[Service]'));
const dir = mkdtempSync(join(tmpdir(), 'phasewise-deploy-docs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** `Key=value` lines of a unit (or an environment file), comments left out. */
const settings = (text: string) => text.split('\n').filter((l) => /^[A-Za-z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const);
const environment = (unit: string) => Object.fromEntries(settings(unit).filter(([k]) => k === 'Environment').map(([, v]) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]));

/** Every source file's text, to find where a variable is read. */
function sources(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => readFileSync(join(folder, f), 'utf8'));
}

test('the units pass systemd-analyze verify, name only settings serve reads, and have systemd make the data folder', () => {
  assert.equal(units.length, 2, 'the single replica and the PostgreSQL replica');
  const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
  for (const [i, unit] of units.entries()) {
    const env = environment(unit);
    for (const name of Object.keys(env)) assert.ok(name in ENV_VARS, `${name} is a setting serve reads`);
    const exec = settings(unit).find(([k]) => k === 'ExecStart')![1].split(' ');
    assert.equal(exec[1], '/opt/phasewise/dist/src/cli/main.js');
    assert.ok(existsSync(join(ROOT, 'dist/src/cli/main.js')));
    assert.deepEqual(exec.slice(2), ['serve']);
    // PHASEWISE_DATA_DIR is /var/lib/NAME and StateDirectory=NAME makes it, owned by User=.
    const state = settings(unit).find(([k]) => k === 'StateDirectory')?.[1];
    assert.equal(env.PHASEWISE_DATA_DIR, `/var/lib/${state}`, `unit ${i}: the data folder is the unit's StateDirectory`);
    if (which.status === 0) {
      const file = join(dir, `phasewise-${i}.service`);
      writeFileSync(file, unit);
      const v = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stderr.trim(), '', `unit ${i}: ${v.stderr}`);
    }
  }
});

test('every PHASEWISE_* variable the page names is read by Phasewise; the replicas\' environment file is a valid configuration', () => {
  const code = sources(join(ROOT, 'src')).join('\n');
  for (const name of new Set(page.match(/PHASEWISE_[A-Z_]+/g))) assert.match(code, new RegExp(`\\b${name}\\b`), `${name} is read somewhere`);
  const file = blocks.find((b) => b.includes('/etc/phasewise/replica.env'))!;
  const values: Record<string, string> = { PHASEWISE_TOKEN: 'a-token-of-16-characters', PHASEWISE_SECRET_KEY: 'ab'.repeat(32) };
  const env = Object.fromEntries(settings(file).map(([k, v]) => [k, values[k] ?? v]));
  const replica = units.find((u) => u.includes('EnvironmentFile=/etc/phasewise/replica.env'))!;
  const c = loadConfig(undefined, { ...env, ...environment(replica) });
  assert.match(c.store ?? '', /^postgres:\/\/phasewise:PASSWORD@db\.internal:5432\/phasewise/);
  assert.equal(c.advertiseUrl, 'https://cp1.internal:8443');
  assert.equal(c.tokens.length, 1);
});

test('serve with the single replica\'s environment serves, and stops on SIGTERM with exit status 0', async () => {
  const env = environment(units[0]!);
  const data = join(dir, 'var-lib-phasewise');
  const s = await startServe([], 60_000, { ...env, PHASEWISE_DATA_DIR: data, PHASEWISE_HOST: '127.0.0.1', PHASEWISE_PORT: '0' });
  const code = await new Promise<number | null>((resolve) => {
    s.child.once('exit', (c) => resolve(c));
    s.child.kill('SIGTERM');
  });
  assert.equal(code, 0);
  assert.ok(statSync(join(data, 'phasewise.sqlite')).isFile(), 'its database in the data folder');
});
