/**
 * `phasewise package keygen | sign` as a publisher runs them: the pair is made outside the server,
 * the signature document verifies with the public key, and the publisher API takes it with the zip.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { verifyPackage } from '../src/protocol/package-signature.js';
import { call, PUBLISHER_TOKEN, startTestServer } from './helpers/api-server.js';
import { handlerZip, rawRequest } from './helpers/agent-client.js';
import { cli } from './helpers/cli.js';

test('keygen makes a 0600 private key; sign writes a document that verifies and that the publisher API accepts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-pkg-'));
  const s = await startTestServer();
  try {
    const gen = await cli('package', 'keygen', '--out', dir, '--key-id', 'contoso-2026');
    assert.equal(gen.status, 0, gen.stderr);
    assert.equal(statSync(join(dir, 'contoso-2026.pem')).mode & 0o777, 0o600);
    assert.equal((await cli('package', 'keygen', '--out', dir, '--key-id', 'contoso-2026')).status, 2, 'never overwrites a key');
    const zip = join(dir, 'mon.zip');
    writeFileSync(zip, await handlerZip('cli'));
    const signed = await cli('package', 'sign', '--key', join(dir, 'contoso-2026.pem'), '--key-id', 'contoso-2026', '--name', 'Contoso.Monitor', '--version', '1.0.0.0', zip);
    assert.equal(signed.status, 0, signed.stderr);
    const doc = JSON.parse(readFileSync(`${zip}.sig.json`, 'utf8'));
    assert.ok(verifyPackage(readFileSync(join(dir, 'contoso-2026.pub'), 'utf8'), doc.signature, doc.name, doc.version, doc.sha256, doc.size));
    assert.ok(!verifyPackage(readFileSync(join(dir, 'contoso-2026.pub'), 'utf8'), doc.signature, doc.name, '1.0.0.1', doc.sha256, doc.size));
    const wrongKey = await cli('package', 'sign', '--key', join(dir, 'contoso-2026.pub'), '--key-id', 'contoso-2026', '--name', 'Contoso.Monitor', '--version', '1.0.0.0', zip);
    assert.equal(wrongKey.status, 2);
    assert.equal((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor', { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
    const up = await rawRequest(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/1.0.0.0/package', {
      body: readFileSync(zip),
      headers: { authorization: `Bearer ${PUBLISHER_TOKEN}`, 'content-type': 'application/octet-stream', 'x-phasewise-package-signature': readFileSync(`${zip}.sig.json`).toString('base64') },
    });
    assert.equal(up.status, 201, up.text);
    assert.equal(up.json.package.signature.keyId, 'contoso-2026');
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
