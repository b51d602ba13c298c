/**
 * PostgreSQL URLs as users type them: a password with any characters (raw or percent-encoded), odd ports
 * and hosts. Whatever the URL, connecting fails (nothing listens) with a StoreError of its own kind, and
 * the password is never in the message; a URL that cannot be parsed is bad input (exit code 2).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { connect, redact } from '../src/store/postgres/connect.js';
import { StoreError } from '../src/store/sqlite/database.js';

const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');

// A password a person could pick: printable ASCII, the URL's own delimiters included, and some non-ASCII.
const unit = fc.oneof(fc.constantFrom(...'@%:/?#[]&= +\\\'"'), fc.constantFrom('é', 'Ω', '中'), fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)));
const password = fc.string({ unit, minLength: 1, maxLength: 24 })
  .map((p) => `Zx7${p}Xq9`); // markers at both ends: a leaked head or tail shows one of them

test('a password of any characters, raw or encoded, with any port, is never printed; an unparseable URL is STORE_BAD_URL', async () => {
  await fc.assert(fc.asyncProperty(password, fc.boolean(), fc.constantFrom('1', '99999', '', '0', 'x'), async (pw, encode, port) => {
    const url = `postgres://someone:${encode ? encodeURIComponent(pw) : pw}@127.0.0.1${port ? `:${port}` : ''}/db`;
    const hidden = (text: string) => !/Zx7|Xq9/.test(text);
    assert.ok(hidden(redact(url)), redact(url));
    const err = await connect(url, { timeoutMs: 2000 }).then((c) => c.end().then(() => null), (e: unknown) => e);
    if (err === null) return; // something listened (port 5432 on this machine): nothing to check
    assert.ok(err instanceof StoreError, String(err));
    assert.ok(['STORE_BAD_URL', 'STORE_UNREACHABLE'].includes(err.code), `${err.code}: ${err.message}`);
    assert.ok(hidden(err.message), `the password is not in: ${err.message}`);
  }), { numRuns: 150 });
});

test('an unparseable URL is bad input for db check, sim --store and serve --store: exit 2, one line, no password', () => {
  const env = { ...process.env, PHASEWISE_TOKEN: 'a'.repeat(32), PHASEWISE_SECRET_KEY: 'b'.repeat(64) };
  for (const url of ['postgres://u:hunter2@127.0.0.1:99999/db', 'postgres://u:hunter2@[::1/db']) {
    for (const args of [['db', 'check', '--db', url], ['sim', 'examples/small.yaml', '--store', url], ['serve', '--port', '0', '--store', url]]) {
      const r = spawnSync(process.execPath, [cli, ...args], { cwd: join(import.meta.dirname, '..', '..'), env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^phasewise: the PostgreSQL URL cannot be parsed/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
    }
  }
});

test('a password given as a query parameter (?password=, sslpassword=, the key in any case or percent-encoded) is never printed either', async () => {
  // The driver reads `?password=` as libpq does; redact() hid only the one before the '@': the unreachable message printed it.
  const key = fc.constantFrom('password', 'sslpassword', 'PASSWORD', 'pass%77ord', 'Password');
  await fc.assert(fc.asyncProperty(password, fc.boolean(), key, fc.boolean(), async (pw, encode, k, userInQuery) => {
    const value = encode ? encodeURIComponent(pw) : pw;
    const url = userInQuery ? `postgres://127.0.0.1:1/db?user=someone&${k}=${value}&application_name=x` : `postgres://someone@127.0.0.1:1/db?${k}=${value}`;
    const hidden = (text: string) => !/Zx7|Xq9/.test(text);
    assert.ok(hidden(redact(url)), redact(url));
    const err = await connect(url, { timeoutMs: 2000 }).then((c) => c.end().then(() => null), (e: unknown) => e);
    if (err === null) return;
    assert.ok(err instanceof StoreError, String(err));
    assert.ok(hidden(err.message), `the password is not in: ${err.message}`);
  }), { numRuns: 100 });
  // What stays readable: the user, host, database and the parameters before it (a raw '&' or '#' may be part of it).
  assert.equal(redact('postgres://u@h:5432/d?sslmode=require&password=s3cret&x=1'), 'postgres://u@h:5432/d?sslmode=require&password=***');
  assert.equal(redact('postgres://u:pw@h/d?password=a#b&x=1'), 'postgres://u:***@h/d?password=***');
  assert.equal(redact('postgres://u:pw@h/d?sslmode=require'), 'postgres://u:***@h/d?sslmode=require');
});

test('db check and serve with the password in the URL\'s query: the unreachable message names the URL without it', () => {
  const env = { ...process.env, PHASEWISE_TOKEN: 'a'.repeat(32), PHASEWISE_SECRET_KEY: 'b'.repeat(64) };
  const url = 'postgres://u@127.0.0.1:1/db?password=hunter2';
  for (const args of [['db', 'check', '--db', url], ['serve', '--port', '0', '--store', url]]) {
    const r = spawnSync(process.execPath, [cli, ...args], { cwd: join(import.meta.dirname, '..', '..'), env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 8, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /cannot reach PostgreSQL at postgres:\/\/u@127\.0\.0\.1:1\/db\?password=\*\*\*/);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  }
});

test('a certificate file the URL names (sslrootcert=) that cannot be read is named as such, not as a URL that cannot be parsed', async () => {
  const err = await connect('postgres://u:hunter2@127.0.0.1:1/db?sslrootcert=/nonexistent/phasewise-ca.pem').then(() => null, (e: unknown) => e);
  assert.ok(err instanceof StoreError);
  assert.equal(err.code, 'STORE_BAD_URL');
  assert.match(err.message, /^a file the PostgreSQL URL names cannot be read \(ENOENT: .*\/nonexistent\/phasewise-ca\.pem/);
  assert.doesNotMatch(err.message, /hunter2|cannot be parsed/);
});
