/**
 * The machine's own key pair: RSA-2048 and a self-signed certificate, written as `<lib>/<THUMB>.crt`
 * and `.prv` (PEM, 0600) the way handlers expect to find them to decrypt protected settings. The key
 * never leaves the machine; the server issues a client certificate for the same public key.
 */
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { writeFileAtomic } from './atomic-file.js';

export interface MachineIdentity {
  thumbprint: string;
  certificatePem: string;
  privateKeyPem: string;
}

/** Uppercase hex SHA-1 of the DER certificate (WALinuxAgent's thumbprint). */
export function thumbprintOf(certificatePem: string): string {
  const der = new X509Certificate(certificatePem).raw;
  return createHash('sha1').update(der).digest('hex').toUpperCase();
}

export function generateIdentity(commonName: string, now: Date): MachineIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = `01${createHash('sha1').update(publicKeyPem).digest('hex').slice(0, 30)}`;
  cert.validity.notBefore = new Date(now.getTime() - 3600_000);
  cert.validity.notAfter = new Date(now.getTime() + 10 * 365 * 86_400_000);
  const subject = [{ name: 'commonName', value: commonName.slice(0, 64) || 'phasewise-agent' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, dataEncipherment: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKeyPem), forge.md.sha256.create());
  const certificatePem = forge.pki.certificateToPem(cert);
  return { thumbprint: thumbprintOf(certificatePem), certificatePem, privateKeyPem };
}

export function writeIdentity(lib: string, id: MachineIdentity): void {
  writeFileAtomic(join(lib, `${id.thumbprint}.prv`), id.privateKeyPem, 0o600);
  writeFileAtomic(join(lib, `${id.thumbprint}.crt`), id.certificatePem, 0o600);
}

export function readIdentity(lib: string, thumbprint: string): MachineIdentity {
  const crt = join(lib, `${thumbprint}.crt`);
  const prv = join(lib, `${thumbprint}.prv`);
  if (!existsSync(crt) || !existsSync(prv)) throw new Error(`the machine certificate ${thumbprint} is missing from ${lib}; enroll again with --force`);
  return { thumbprint, certificatePem: readFileSync(crt, 'utf8'), privateKeyPem: readFileSync(prv, 'utf8') };
}
