/**
 * docs/cli.md: a profile's `server` is an `https://` URL, and `serve` speaks HTTPS only. `login --server
 * http://…` was accepted and then sent the token in clear, failing with `socket hang up` (exit 1) that
 * did not say what to do; a profile naming an http:// server was used as it was.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawn } from 'node:child_process';
import { CLI, ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-login-https-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = 'a-token-of-enough-length-123';

function run(configDir: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, PHASEWISE_CONFIG_DIR: configDir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('login --server http://… is a usage error that names the https:// URL to use, and saves nothing', { timeout: 30_000 }, async () => {
  const config = join(dir, 'a');
  const r = await run(config, 'login', '--server', 'http://127.0.0.1:8443', '--token', TOKEN);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, 'phasewise login: --server: phasewise serve speaks HTTPS only (the token must not travel in clear); use https://127.0.0.1:8443\n');
  assert.ok(!existsSync(join(config, 'profile.json')));
});

test('a profile whose server is http:// is refused before anything is sent', { timeout: 30_000 }, async () => {
  const config = join(dir, 'b');
  mkdirSync(config, { mode: 0o700 });
  writeFileSync(join(config, 'profile.json'), JSON.stringify({ server: 'http://127.0.0.1:8443', token: TOKEN }), { mode: 0o600 });
  const r = await run(config, 'rollout', 'list');
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /profile\.json: server: 'http:\/\/127\.0\.0\.1:8443' is not an https:\/\/ URL; /);
});

test('login --server with a path, a query, a fragment or a user and password is a usage error naming what would be dropped, and saves nothing '
  + '(they were dropped without a word)', { timeout: 60_000 }, async () => {
  const config = join(dir, 'c');
  for (const [server, message] of [
    ['https://127.0.0.1:8443/phasewise-east', /'\/phasewise-east' would not be used: phasewise serve answers at the root of its address; use https:\/\/127\.0\.0\.1:8443$/],
    ['https://127.0.0.1:8443/?tenant=1', /'\?tenant=1' would not be used/],
    ['https://127.0.0.1:8443#x', /'#x' would not be used/],
    ['https://alice:secret@127.0.0.1:8443', /a user name or password in the URL is not used \(the token is the credential\); use https:\/\/127\.0\.0\.1:8443$/],
  ] as const) {
    const r = await run(config, 'login', '--server', server, '--token', TOKEN);
    assert.equal(r.status, 2, `${server}: ${r.stderr}`);
    assert.match(r.stderr.trim(), message, server);
    assert.ok(r.stderr.startsWith('phasewise login: --server: '));
  }
  assert.ok(!existsSync(join(config, 'profile.json')));
});
