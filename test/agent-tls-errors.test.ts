/**
 * The agent's words for a server certificate it refuses (src/agent/http-client.ts), against real TLS
 * servers on loopback: only an unknown issuer is a matter of trust (--ca-cert). An expired certificate,
 * one not valid yet (this machine's clock, after a jump) and one for another name were all called
 * "not trusted … pass --ca-cert", advice that could not help.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import forge from 'node-forge';
import { HttpError, request } from '../src/agent/http-client.js';

const DAY = 86_400_000;

/** A self-signed certificate for `names` (DNS names; an IP address as an IP entry), valid from `from` to `to`. */
function certificate(names: string[], from: Date, to: Date): { cert: string; key: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  c.serialNumber = '01';
  c.validity.notBefore = from;
  c.validity.notAfter = to;
  const attrs = [{ name: 'commonName', value: names[0]! }];
  c.setSubject(attrs);
  c.setIssuer(attrs);
  c.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'subjectAltName', altNames: names.map((n) => (/^\d+\.\d+\.\d+\.\d+$/.test(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
  ]);
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  c.sign(forge.pki.privateKeyFromPem(key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(c), key };
}

/** The message `request` fails with against a server presenting `served`, trusting `trusted`. */
async function refusal(served: { cert: string; key: string }, trusted: string): Promise<string> {
  const server = https.createServer({ cert: served.cert, key: served.key }, (_req, res) => res.end('{}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    await request(`https://127.0.0.1:${port}/v1/goal-state`, { ca: [trusted], maxBytes: 1024, timeoutMs: 10_000 });
    assert.fail('the request was accepted');
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return err.message;
  } finally {
    server.close();
  }
  return '';
}

test('an expired server certificate is said to have expired, with this machine\'s clock; not "not trusted … --ca-cert"', async () => {
  const now = Date.now();
  const expired = certificate(['127.0.0.1'], new Date(now - 400 * DAY), new Date(now - 30 * DAY));
  const message = await refusal(expired, expired.cert);
  assert.match(message, /^cannot reach 127\.0\.0\.1:\d+: the server's TLS certificate has expired \(CERT_HAS_EXPIRED; this machine's clock says \d{4}-/);
  assert.doesNotMatch(message, /not trusted|--ca-cert/);
});

test('a certificate not valid yet points at the clock (a machine whose clock jumped back)', async () => {
  const now = Date.now();
  const future = certificate(['127.0.0.1'], new Date(now + 30 * DAY), new Date(now + 400 * DAY));
  const message = await refusal(future, future.cert);
  assert.match(message, /the server's TLS certificate is not valid yet \(CERT_NOT_YET_VALID; this machine's clock says .*\); set this machine's clock right/);
  assert.doesNotMatch(message, /--ca-cert/);
});

test('a certificate for another name says so, naming the address used', async () => {
  const now = Date.now();
  const other = certificate(['control.example.com'], new Date(now - DAY), new Date(now + 30 * DAY));
  const message = await refusal(other, other.cert);
  assert.match(message, /the server's TLS certificate is not for 127\.0\.0\.1 \(ERR_TLS_CERT_ALTNAME_INVALID: .*\); use the address the certificate names/);
  assert.doesNotMatch(message, /--ca-cert/);
});

test('a certificate from an issuer not trusted is still a matter of --ca-cert', async () => {
  const now = Date.now();
  const served = certificate(['127.0.0.1'], new Date(now - DAY), new Date(now + 30 * DAY));
  const another = certificate(['127.0.0.1'], new Date(now - DAY), new Date(now + 30 * DAY));
  const message = await refusal(served, another.cert);
  assert.match(message, /the server's TLS certificate is not trusted \([A-Z_]+\); pass --ca-cert FILE or set NODE_EXTRA_CA_CERTS/);
});
