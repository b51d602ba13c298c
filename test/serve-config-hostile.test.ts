/**
 * `serve`'s own configuration (docs/api.md#configuration): a config file that is not YAML, endless
 * (/dev/zero), a FIFO or huge; TLS files missing, not PEM, or a key that is not the certificate's; a data
 * folder that is a file; a host that does not resolve; environment numbers written as 0x50 or 1e4. Each is
 * one line on standard error, exit code 2, and nothing created (no data folder, no database).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigError, ENV_VARS, loadConfig } from '../src/server/config.js';
import { cli, cliWithEnv } from './helpers/cli.js';
import { CERT, KEY } from './helpers/api-server.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-serve-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Runs serve with `args` and a fresh data folder; it must refuse with exit 2, one line, and create nothing. */
async function refused(args: string[], message: RegExp): Promise<void> {
  const data = join(dir, `data-${n++}`);
  const r = await cli('serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', data, ...args);
  assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}: ${r.stderr.slice(0, 500)}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.equal(existsSync(data), false, 'no data folder');
}

const file = (name: string, text: string | Buffer) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('serve --config FILE that is not a configuration', () => {
  test('YAML with a syntax error or a duplicate key: the position in one line, exit 2', async () => {
    await refused(['--config', file('bad.yaml', 'port: [1\nhost: x\n')], /^phasewise serve: .*bad\.yaml: not valid YAML or JSON: .* at line \d+, column \d+$/m);
    await refused(['--config', file('dup.yaml', 'port: 1\nport: 2\n')], /dup\.yaml: not valid YAML or JSON: Map keys must be unique/);
  });

  test('a tag the parser does not know (!!js/function): refused in one line, exit 2 (it was read as text after a multi-line warning)', async () => {
    const config = file('tag.yaml', 'logLevel: !!js/function "function () {}"\n');
    await refused(['--config', config], /tag\.yaml: not valid YAML or JSON: Unresolved tag: tag:yaml\.org,2002:js\/function at line 1, column 11$/m);
  });

  test('/dev/zero, a FIFO, a folder and a 2 MiB file are refused without reading them whole (they once crashed serve out of memory)', async () => {
    await refused(['--config', '/dev/zero'], /configuration \/dev\/zero: not a regular file/);
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    await refused(['--config', fifo], /fifo\.yaml: not a regular file/);
    await refused(['--config', dir], /not a regular file/);
    await refused(['--config', file('huge.yaml', `# ${'x'.repeat(2 * 1024 * 1024)}\n`)], /huge\.yaml: larger than 1048576 bytes/);
    await refused(['--config', join(dir, 'missing.yaml')], /configuration .*missing\.yaml: no such file/);
  });
});

describe('serve with TLS files that cannot serve', () => {
  const tls = (name: string, cert: string, key: string) => file(name, `tls:\n  cert: ${JSON.stringify(cert)}\n  key: ${JSON.stringify(key)}\n`);

  test('missing, not PEM, swapped, or a key of another certificate: one line, exit 2, nothing created', async () => {
    await refused(['--config', tls('t1.yaml', join(dir, 'none.pem'), KEY)], /tls\.cert .*none\.pem: no such file/);
    await refused(['--config', tls('t2.yaml', CERT, file('hello.pem', 'hello'))], /tls\.key .*hello\.pem: not a PEM private key/);
    await refused(['--config', tls('t3.yaml', KEY, CERT)], /tls\.cert .*key\.pem: not a PEM certificate/);
    const otherKey = execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await refused(['--config', tls('t4.yaml', CERT, file('other-key.pem', otherKey))], /tls\.cert .* and tls\.key .*other-key\.pem: the key is not the certificate's$/m);
    await refused(['--config', tls('t5.yaml', CERT, '/dev/zero')], /tls\.key \/dev\/zero: not a regular file/);
  });
});

describe('serve: the data folder, the host', () => {
  test('a data folder that is a file: exit 2, one line, the file left as it was', async () => {
    const f = file('a-file', 'keep me');
    const r = await cli('serve', '--port', '0', '--data-dir', f);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^phasewise serve: dataDir .*a-file: exists and is not a folder\n$/);
    assert.equal(execFileSync('cat', [f], { encoding: 'utf8' }), 'keep me');
  });

  test('a host that does not resolve, even with --port 0: exit 2, one line, nothing created', async () => {
    const data = join(dir, 'nohost');
    const r = await cli('serve', '--port', '0', '--host', 'no-such-host.invalid', '--data-dir', data);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^phasewise serve: cannot listen on no-such-host\.invalid: no such host \(--host\)\n$/);
    assert.equal(existsSync(data), false);
  });

  test('publicUrl that is not http(s): the field named, exit 2', async () => {
    const data = join(dir, 'pub');
    const r = await cli('serve', '--port', '0', '--config', file('pub.yaml', 'publicUrl: "javascript:alert(1)"\n'), '--data-dir', data);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /publicUrl: expected an https:\/\/ \(or http:\/\/\) URL/);
    assert.deepEqual(readdirSync(dir).filter((x) => x === 'pub'), []);
  });
});

describe('environment variables with odd values', () => {
  const numeric = Object.entries(ENV_VARS).filter(([, v]) => v.kind === 'number').map(([k]) => k);

  test('property: a numeric PHASEWISE_* is taken only as a decimal number; anything else is a ConfigError naming the variable', () => {
    const odd = fc.constantFrom('0x50', '1e4', ' 80', '80 ', 'Infinity', '-0', '0b1', '1_000', '8443');
    fc.assert(fc.property(fc.constantFrom(...numeric), fc.oneof(fc.string({ maxLength: 12 }), odd), (name, value) => {
      const field = ENV_VARS[name]!.field;
      if (value === '') return; // an empty variable is unset (documented), not a value
      try {
        const c = loadConfig(undefined, { [name]: value });
        assert.match(value.trim(), /^-?\d+(\.\d+)?$/, `${name}=${JSON.stringify(value)} was accepted`);
        assert.equal(c[field], Number(value));
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.ok(err.message.includes(name) || err.message.includes(field), err.message);
      }
    }), { numRuns: 300 });
  });

  test('PHASEWISE_DB naming a PostgreSQL URL is the store (the db commands take it so); with another PHASEWISE_STORE it is refused, no password shown', () => {
    const shared = { PHASEWISE_TOKEN: 'a-token-of-16-chars-or-more', PHASEWISE_SECRET_KEY: 'c0'.repeat(32) };
    const url = 'postgres://u:hunter2@db:5432/phasewise';
    const c = loadConfig(undefined, { ...shared, PHASEWISE_DB: url });
    assert.equal(c.store, url);
    assert.equal(c.database, undefined, 'not a SQLite file name');
    assert.equal(loadConfig(undefined, { ...shared, PHASEWISE_DB: url, PHASEWISE_STORE: url }).store, url, 'both the same: fine');
    assert.equal(loadConfig(undefined, { PHASEWISE_DB: 'postgres.sqlite' }).database, 'postgres.sqlite', 'a file name stays a file name');
    assert.throws(() => loadConfig(undefined, { ...shared, PHASEWISE_DB: url, PHASEWISE_STORE: 'postgres://u:pw2@other/phasewise' }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /name two PostgreSQL databases/);
      assert.doesNotMatch(err.message, /hunter2|pw2/);
      return true;
    });
  });

  test('PHASEWISE_PORT=0x50 is not port 80', () => {
    assert.throws(() => loadConfig(undefined, { PHASEWISE_PORT: '0x50' }), /PHASEWISE_PORT: expected a decimal number, got '0x50'/);
    assert.equal(loadConfig(undefined, { PHASEWISE_PORT: '8080' }).port, 8080);
  });
});

describe('the lease busy limit (leaseBusyMaxMs)', () => {
  const shared = { PHASEWISE_TOKEN: 'a-token-of-16-chars-or-more', PHASEWISE_SECRET_KEY: 'c0'.repeat(32), PHASEWISE_STORE: 'postgres://u:hunter2@db:5432/phasewise' };

  test('property: accepted exactly when a whole number from the lease (and 1 s) to an hour; anything else is a ConfigError naming the field', () => {
    fc.assert(fc.property(fc.integer({ min: 1000, max: 300_000 }), fc.oneof(fc.integer({ min: -10, max: 4_000_000 }), fc.double({ min: 0, max: 4e6, noNaN: true })), (leaseMs, busy) => {
      const ok = Number.isInteger(busy) && busy >= 1000 && busy <= 3_600_000 && busy >= leaseMs;
      try {
        const c = loadConfig(undefined, { ...shared, PHASEWISE_LEASE_MS: String(leaseMs) }, { leaseBusyMaxMs: busy });
        assert.ok(ok, `leaseBusyMaxMs ${busy} with leaseMs ${leaseMs} was accepted`);
        assert.equal(c.leaseBusyMaxMs, busy);
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        assert.ok(!ok, `leaseBusyMaxMs ${busy} with leaseMs ${leaseMs} was refused: ${err.message}`);
        assert.match(err.message, /leaseBusyMaxMs/);
        assert.doesNotMatch(err.message, /hunter2/);
      }
    }), { numRuns: 300 });
    assert.equal(loadConfig(undefined, shared).leaseBusyMaxMs, undefined, 'absent: the default (12 leases, at least 2 minutes) applies');
    assert.equal(loadConfig(undefined, { ...shared, PHASEWISE_LEASE_BUSY_MAX_MS: '600000' }).leaseBusyMaxMs, 600_000, 'from the environment');
  });

  test('serve refuses a bad one, from the file or the environment: exit 2, the field named, nothing created', async () => {
    for (const [args, extra, message] of [
      [['--config', file('busy-short.yaml', 'leaseMs: 20000\nleaseBusyMaxMs: 5000\n')], {}, /leaseBusyMaxMs \(5000\) must be at least leaseMs \(20000\)/],
      [['--config', file('busy-long.yaml', 'leaseBusyMaxMs: 7200000\n')], {}, /leaseBusyMaxMs: .*3600000/],
      [[], { PHASEWISE_LEASE_BUSY_MAX_MS: '2m' }, /PHASEWISE_LEASE_BUSY_MAX_MS: expected a decimal number, got '2m'/],
    ] as Array<[string[], Record<string, string>, RegExp]>) {
      const data = join(dir, `busy-${n++}`);
      const r = await cliWithEnv({ ...shared, ...extra }, 30_000, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', data, ...args);
      assert.equal(r.status, 2, `${args.join(' ')} ${JSON.stringify(extra)}: exit ${r.status}: ${r.stderr.slice(0, 500)}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /hunter2|\n\s+at /);
      assert.equal(existsSync(data), false, 'no data folder');
    }
  });
});
