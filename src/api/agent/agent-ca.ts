/**
 * The agent CA: the server-held authority that signs each enrolled machine's client certificate. Its
 * key and certificate live in DATA_DIR/agent-ca/ (written atomically; the key 0600) and are made on
 * the first start. The machine's own key never leaves the machine: the CA certifies the public key of
 * the self-signed certificate the machine sent at enrollment.
 */
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';
import { writeFileAtomic } from '../../util/atomic-file.js';

const YEAR_MS = 365 * 86_400_000;
/** The largest machine key accepted (RSA-2048 is what `phasewise agent connect` makes). */
const MAX_MODULUS_BITS = 8192;

export interface IssuedCertificate {
  pem: string;
  /** Node's `fingerprint256` form (`AB:CD:…`), as `TLSSocket.getPeerCertificate()` shows it. */
  fingerprint: string;
}

export class AgentCertificateError extends Error {}

export interface AgentCaPems {
  keyPem: string;
  certPem: string;
}

export class AgentCa {
  private constructor(
    private readonly key: forge.pki.rsa.PrivateKey,
    private readonly cert: forge.pki.Certificate,
    readonly certPem: string,
  ) {}

  static loadOrCreate(dataDir: string, now: number): AgentCa {
    const dir = join(dataDir, 'agent-ca');
    const keyPath = join(dir, 'ca.key.pem');
    const certPath = join(dir, 'ca.cert.pem');
    if (existsSync(keyPath) && existsSync(certPath)) return AgentCa.fromPems({ keyPem: readFileSync(keyPath, 'utf8'), certPem: readFileSync(certPath, 'utf8') });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pems = AgentCa.generate(now);
    // Key first: a certificate without its key on disk would be unusable after a crash.
    writeFileAtomic(keyPath, pems.keyPem, { mode: 0o600 });
    writeFileAtomic(certPath, pems.certPem);
    return AgentCa.fromPems(pems);
  }

  /** A CA from its key and certificate (replicas keep them in the database, the key sealed). */
  static fromPems(pems: AgentCaPems): AgentCa {
    return new AgentCa(forge.pki.privateKeyFromPem(pems.keyPem) as forge.pki.rsa.PrivateKey, forge.pki.certificateFromPem(pems.certPem), pems.certPem);
  }

  /** A new CA: an RSA key and a self-signed certificate valid ten years. */
  static generate(now: number): AgentCaPems {
    // Node's native generator: forge's pure-JS RSA takes seconds.
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyPem = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
    const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(now - 3_600_000);
    cert.validity.notAfter = new Date(now + 10 * YEAR_MS);
    const name = [{ name: 'commonName', value: 'Phasewise agent CA' }, { name: 'organizationName', value: 'Phasewise' }];
    cert.setSubject(name);
    cert.setIssuer(name);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(key, forge.md.sha256.create());
    return { keyPem, certPem: forge.pki.certificateToPem(cert) };
  }

  /**
   * A client certificate (clientAuth, CN = agent id) for the public key of the machine's self-signed
   * certificate, which must carry an RSA key of at least 2048 bits and a valid self-signature.
   */
  issue(machineCertPem: string, agentId: string, now: number, validityMs = YEAR_MS): IssuedCertificate {
    const machine = parseMachineCertificate(machineCertPem);
    const cert = forge.pki.createCertificate();
    cert.publicKey = machine.publicKey;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(now - 3_600_000);
    cert.validity.notAfter = new Date(now + validityMs);
    cert.setSubject([{ name: 'commonName', value: agentId }, { name: 'organizationName', value: 'Phasewise agents' }]);
    cert.setIssuer(this.cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    const pem = forge.pki.certificateToPem(cert);
    return { pem, fingerprint: new X509Certificate(pem).fingerprint256 };
  }
}

/** The machine's certificate, checked: PEM, RSA ≥ 2048 bits, self-signed with a signature that verifies. */
export function parseMachineCertificate(pem: string): forge.pki.Certificate {
  let cert: forge.pki.Certificate;
  try {
    cert = forge.pki.certificateFromPem(pem);
  } catch (err) {
    throw new AgentCertificateError(`certificatePem is not a PEM X.509 certificate with an RSA key: ${(err as Error).message}`);
  }
  const key = cert.publicKey as forge.pki.rsa.PublicKey;
  if (!key || typeof key.n?.bitLength !== 'function') throw new AgentCertificateError('certificatePem: the certificate must carry an RSA public key');
  if (key.n.bitLength() < 2048) throw new AgentCertificateError(`certificatePem: the RSA key has ${key.n.bitLength()} bits; at least 2048 are required`);
  // Bounded before anything computes with the key: the self-signature check (and later each encryption of
  // protected settings) raises to the public exponent in pure JavaScript, and a 60,000-bit exponent held
  // the event loop, so the engine, for about five seconds per request.
  if (key.n.bitLength() > MAX_MODULUS_BITS) throw new AgentCertificateError(`certificatePem: the RSA key has ${key.n.bitLength()} bits; at most ${MAX_MODULUS_BITS} are accepted`);
  if (key.e.bitLength() > 32 || !key.e.testBit(0) || key.e.bitLength() < 2) {
    throw new AgentCertificateError('certificatePem: the RSA public exponent must be an odd number from 3 to 2^32 (65537 as usual)');
  }
  let selfSigned = false;
  try { selfSigned = cert.verify(cert); } catch { selfSigned = false; }
  if (!selfSigned) throw new AgentCertificateError('certificatePem: the certificate must be self-signed by the machine\'s own key (proof that the machine holds it)');
  return cert;
}

/** WALinuxAgent's thumbprint: SHA-1 of the DER certificate, upper-case hex. */
export function thumbprintOf(pem: string): string {
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(forge.pki.certificateFromPem(pem))).getBytes(), 'binary');
  return createHash('sha1').update(der).digest('hex').toUpperCase();
}

/** A positive 128-bit serial in hex (the top bit cleared so DER keeps it positive). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}
