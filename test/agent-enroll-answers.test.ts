/**
 * `agent connect` against a server whose enrollment answer is wrong (src/agent/enrollment.ts), on a
 * loopback HTTPS stand-in: intervals of 0, negative, text or past an hour were kept and made the agent
 * poll without pause; a certificate that is not one, or one for another key, was kept as an enrollment
 * that failed every request after. Each is now refused naming the field, and nothing is kept.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import forge from 'node-forge';
import { connect, EnrollError } from '../src/agent/enrollment.js';
import { tempDirs, TLS_CERT, TLS_KEY } from './helpers/agent-kit.js';
import { caFile } from './helpers/agent-process.js';

/** A self-signed certificate for a key that is not the machine's. */
function strangersCertificate(): string {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string);
  c.serialNumber = '02';
  c.validity.notBefore = new Date(Date.now() - 86_400_000);
  c.validity.notAfter = new Date(Date.now() + 86_400_000);
  c.setSubject([{ name: 'commonName', value: 'stranger' }]);
  c.setIssuer([{ name: 'commonName', value: 'stranger' }]);
  c.sign(forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string), forge.md.sha256.create());
  return forge.pki.certificateToPem(c);
}

let answer: Record<string, unknown> = {};
const server = https.createServer({ cert: TLS_CERT, key: TLS_KEY }, (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer));
  });
});
let url = '';
before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

const stranger = strangersCertificate();
const base = {
  agentId: 'agent-1', resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/m1',
  clientCertificatePem: stranger, caCertificatePem: TLS_CERT, pollIntervalSeconds: 15, statusIntervalSeconds: 60,
};

async function refused(over: Record<string, unknown>): Promise<string> {
  answer = { ...base, ...over };
  const d = tempDirs();
  const err = await connect(d, { server: url, token: 't', caCertFile: caFile, name: 'm1' }, new Date()).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof EnrollError, `accepted: ${JSON.stringify(over).slice(0, 100)}`);
  assert.ok(!existsSync(join(d.lib, '.agent', 'enrollment.json')), 'no enrollment kept');
  assert.deepEqual(readdirSync(d.lib).filter((f) => /\.(crt|prv)$/.test(f)), [], 'no key pair kept');
  return err.message;
}

test('poll and status intervals of 0, negative, text, fractional or past an hour are refused naming the field (the agent polled without pause)', async () => {
  const cases = [['pollIntervalSeconds', 0], ['pollIntervalSeconds', -5], ['pollIntervalSeconds', 'soon'], ['statusIntervalSeconds', 0.5], ['statusIntervalSeconds', 3_000_000]] as const;
  for (const [field, value] of cases) {
    const message = await refused({ [field]: value });
    assert.equal(message, `the enrollment answer has ${field} ${JSON.stringify(value)}; expected a whole number of seconds from 1 to 3600`);
  }
});

test('a client certificate that is not a certificate, or is for another key, is refused; nothing is kept', async () => {
  assert.match(await refused({ clientCertificatePem: 'not a certificate' }), /^the enrollment answer holds a certificate that cannot be read \(.*\); nothing was kept$/);
  assert.match(await refused({ caCertificatePem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), /certificate that cannot be read/);
  assert.equal(await refused({}), 'the enrollment answer\'s client certificate is not for this machine\'s key; nothing was kept');
});
