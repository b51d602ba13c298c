/**
 * Files and paths handed to the CLI that are not what they should be (docs/cli.md): `package sign` with
 * /dev/zero as the key or the package (both read forever), empty paths from unset shell variables. Each
 * ends in exit code 2 with one line naming the option, quickly, and writes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { cli } from './helpers/cli.js';
import { MAX_KEY_BYTES } from '../src/cli/package-command.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-cli-hostile-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string | Buffer) => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

/** Exit 2 within `ms`, one line, no stack trace, nothing on stdout; returns the line. */
async function refused(ms: number, ...args: string[]): Promise<string> {
  const started = Date.now();
  const r = await cli(...args);
  const took = Date.now() - started;
  assert.equal(r.status, 2, `exit ${r.status} after ${took} ms: ${r.stderr.slice(0, 400)}`);
  assert.ok(took < ms, `took ${took} ms`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.equal(r.stdout, '');
  return r.stderr.trim();
}

const key = file('k.pem', generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
const sign = (pkg: string, keyFile = key) => ['package', 'sign', pkg, '--key', keyFile, '--key-id', 'k1', '--name', 'Contoso.Agent', '--version', '1.0.0.0', '--out', join(dir, 'out.sig.json')];

describe('package sign on files that never end', { concurrency: 2 }, () => {
  test('--key /dev/zero and a key file past 64 KiB: refused after reading the limit (it read /dev/zero until killed)', async () => {
    assert.equal(await refused(30_000, ...sign(file('p.zip', 'zip'), '/dev/zero')), `phasewise package sign: --key /dev/zero: larger than ${MAX_KEY_BYTES / 1024} KiB; expected an Ed25519 private key (PEM)`);
    const big = file('big.pem', 'x'.repeat(MAX_KEY_BYTES + 1));
    assert.equal(await refused(30_000, ...sign(file('p.zip', 'zip'), big)), `phasewise package sign: --key ${big}: larger than 64 KiB; expected an Ed25519 private key (PEM)`);
    assert.equal(existsSync(join(dir, 'out.sig.json')), false);
  });

  test('the package /dev/zero or a folder: not a regular file (/dev/zero was hashed forever)', async () => {
    assert.equal(await refused(30_000, ...sign('/dev/zero')), 'phasewise package sign: /dev/zero: not a regular file; expected the package (zip)');
    assert.equal(await refused(30_000, ...sign(dir)), `phasewise package sign: ${dir}: not a regular file; expected the package (zip)`);
    assert.equal(existsSync(join(dir, 'out.sig.json')), false);
  });

  test('a regular package is still signed', async () => {
    const r = await cli(...sign(file('ok.zip', 'PK zip bytes')));
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'out.sig.json')));
    rmSync(join(dir, 'out.sig.json'));
  });
});

describe('empty paths (an unset shell variable)', { concurrency: 2 }, () => {
  test('package keygen --out "": exit 2 naming --out (exit 1 with "ENOENT: mkdir")', async () => {
    assert.equal(await refused(30_000, 'package', 'keygen', '--out', '', '--key-id', 'k2'), 'phasewise package keygen: --out: empty; name the folder to write the key pair into');
  });

  test('sim --events "" and --report "": exit 2 (the run went ahead and wrote no log, silently)', async () => {
    const scenario = join(process.cwd(), 'examples', 'small.yaml');
    assert.equal(await refused(30_000, 'sim', scenario, '--quiet', '--events', ''), 'phasewise sim: --events: empty; name a file');
    assert.equal(await refused(30_000, 'sim', scenario, '--quiet', '--report', ' '), 'phasewise sim: --report: empty; name a file');
  });

  test('sim "" and plan "": exit 2 naming the scenario (": (top level): cannot read the file (ENOENT)")', async () => {
    assert.equal(await refused(30_000, 'sim', '', '--quiet'), 'phasewise sim: the scenario: empty; name a file');
    assert.equal(await refused(30_000, 'plan', ''), 'phasewise plan: the scenario: empty; name a file');
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.sig.json')), []);
  });
});

describe('output files that cannot be written (a full disk)', { concurrency: 2, skip: !existsSync('/dev/full') && 'no /dev/full here' }, () => {
  /** Exit 1 (an I/O failure, not usage), one line naming the option and the file, no stack, no summary on stdout. */
  async function failsNaming(option: string): Promise<void> {
    const r = await cli('sim', join(process.cwd(), 'examples', 'small.yaml'), '--quiet', option, '/dev/full');
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^phasewise: ${option} /dev/full: cannot write the file \\(no space left on the device\\)`));
  }

  test('sim --events /dev/full names --events (it said only "ENOSPC: no space left on device, write")', async () => {
    await failsNaming('--events');
  });

  test('sim --report /dev/full names --report', async () => {
    await failsNaming('--report');
  });
});

describe('agent files that never end', { concurrency: 2 }, () => {
  /** Exit 1 (the agent's refusal) within 30 s, one line, no stack trace. */
  async function agentRefused(...args: string[]): Promise<string> {
    const started = Date.now();
    const r = await cli(...args);
    assert.equal(r.status, 1, `exit ${r.status} after ${Date.now() - started} ms: ${r.stderr.slice(0, 400)}`);
    assert.ok(Date.now() - started < 30_000);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    return r.stderr.trim();
  }

  test('agent trust add --file /dev/zero, a named pipe, a file past 16 KiB: refused at once (/dev/zero was read until killed, a pipe blocked)', async () => {
    const etc = join(dir, 'etc-trust');
    const add = (f: string) => agentRefused('agent', 'trust', 'add', '--key-id', 'pub-1', '--file', f, '--config-dir', etc);
    assert.equal(await add('/dev/zero'), 'phasewise: cannot read /dev/zero: /dev/zero is not a regular file (a FIFO, a device or a folder)');
    const fifo = join(dir, 'key.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    assert.equal(await add(fifo), `phasewise: cannot read ${fifo}: ${fifo} is not a regular file (a FIFO, a device or a folder)`);
    assert.equal(await add(file('big.pub', 'x'.repeat(16_385))), `phasewise: ${join(dir, 'big.pub')} is larger than 16384 bytes; not a public key`);
    assert.ok(!existsSync(join(etc, 'trusted-keys')) || readdirSync(join(etc, 'trusted-keys')).length === 0, 'nothing trusted');
  });

  test('agent connect --ca-cert /dev/zero: refused before any request (it was read until memory ran out)', async () => {
    const line = await agentRefused('agent', 'connect', '--server', 'https://127.0.0.1:9', '--enrollment-token', 't', '--ca-cert', '/dev/zero',
      '--lib-dir', join(dir, 'lib-enroll'), '--config-dir', join(dir, 'etc-enroll'));
    assert.equal(line, 'phasewise: cannot read --ca-cert /dev/zero: /dev/zero is not a regular file (a FIFO, a device or a folder)');
    const big = file('big-ca.pem', Buffer.alloc(1024 * 1024 + 1, 0x41));
    const line2 = await agentRefused('agent', 'connect', '--server', 'https://127.0.0.1:9', '--enrollment-token', 't', '--ca-cert', big,
      '--lib-dir', join(dir, 'lib-enroll'), '--config-dir', join(dir, 'etc-enroll'));
    assert.equal(line2, `phasewise: cannot read --ca-cert ${big}: larger than 1024 KiB; expected a PEM certificate`);
  });
});
