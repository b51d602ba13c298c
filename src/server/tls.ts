/**
 * The server's certificate: the configured one, or on a first start a self-signed one generated into
 * the data folder (kept for later starts) so clients can trust it with NODE_EXTRA_CA_CERTS.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-file.js';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { checkTlsFiles } from './preflight.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  certPath: string;
  generated: boolean;
}

export async function loadOrCreateTls(configured: { cert: string; key: string } | undefined, dataDir: string, host: string): Promise<TlsMaterial> {
  if (configured) return { ...checkTlsFiles(configured), certPath: configured.cert, generated: false };
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (usable(certPath, 'CERTIFICATE') && usable(keyPath, 'PRIVATE KEY')) return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, generated: false };
  mkdirSync(dir, { recursive: true });
  const names = new Set(['localhost', host]);
  const altNames = [...names].filter((h) => h !== '0.0.0.0' && h !== '::').map((h) => (isIP(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h }));
  altNames.push({ type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' });
  const pems = await generate([{ name: 'commonName', value: 'phasewise' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 825 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  // Key first: a crash between the two leaves no certificate, so the next start generates both again.
  writeFileAtomic(keyPath, pems.private, { mode: 0o600 });
  writeFileAtomic(certPath, pems.cert);
  return { cert: pems.cert, key: pems.private, certPath, generated: true };
}

/** A PEM file that is there and whole (older versions could leave an empty one after a crash). */
function usable(file: string, label: string): boolean {
  return existsSync(file) && readFileSync(file, 'utf8').includes(`-----END ${label}-----`);
}
