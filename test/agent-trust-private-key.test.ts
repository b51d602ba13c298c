/**
 * `phasewise agent trust add` takes publisher **public** keys (docs/agent.md, "Trusted publisher keys":
 * refused unless it is an Ed25519 public key). Given the private key `package keygen` wrote, it derived
 * the public key and said `trusted`, so a private key copied to a machine by mistake went unnoticed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { cli, cliWithin } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-trust-private-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('agent trust add refuses a private key file with a message that says which file to give, and trusts nothing', { timeout: 90_000 }, async () => {
  const keygen = await cliWithin(60_000, 'package', 'keygen', '--out', join(dir, 'keys'), '--key-id', 'pub-1');
  assert.equal(keygen.status, 0, keygen.stderr);
  const etc = join(dir, 'etc');
  const refused = await cli('agent', 'trust', 'add', '--key-id', 'pub-1', '--file', join(dir, 'keys', 'pub-1.pem'), '--config-dir', etc);
  assert.equal(refused.status, 1, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /holds a private key; give the publisher's public key \(the \.pub that package keygen wrote\)/);
  assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
  assert.ok(!existsSync(join(etc, 'trusted-keys')) || readdirSync(join(etc, 'trusted-keys')).length === 0, 'nothing trusted');

  const trusted = await cli('agent', 'trust', 'add', '--key-id', 'pub-1', '--file', join(dir, 'keys', 'pub-1.pub'), '--config-dir', etc);
  assert.equal(trusted.status, 0, trusted.stderr);
  assert.deepEqual(readdirSync(join(etc, 'trusted-keys')), ['pub-1.pub']);
});
