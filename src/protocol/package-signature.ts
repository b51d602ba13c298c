/**
 * Package signatures (agent-protocol §8): Ed25519 over the UTF-8 statement
 * `"<Publisher.Type>\n<version>\n<sha256 hex>\n<size>"`. A publisher signs outside the server with its own
 * private key (`phasewise package sign`); agents verify with keys configured on the machine only.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { PackageSignature } from './agent-wire.js';

export function signedStatement(name: string, version: string, sha256: string, size: number): Buffer {
  return Buffer.from(`${name}\n${version}\n${sha256.toLowerCase()}\n${size}`, 'utf8');
}

export function signPackage(privateKeyPem: string, keyId: string, name: string, version: string, sha256: string, size: number): PackageSignature {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`the signing key must be an Ed25519 private key, not ${key.asymmetricKeyType ?? 'unknown'}`);
  const sig = sign(null, signedStatement(name, version, sha256, size), key);
  return { alg: 'ed25519', keyId, sig: sig.toString('base64') };
}

/** True only for a well-formed Ed25519 signature by `publicKey` over exactly this statement. */
export function verifyPackage(publicKey: KeyObject | string, signature: PackageSignature, name: string, version: string, sha256: string, size: number): boolean {
  if (signature.alg !== 'ed25519') return false;
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  if (key.asymmetricKeyType !== 'ed25519') return false;
  const sig = Buffer.from(signature.sig, 'base64');
  if (sig.length !== 64) return false;
  return verify(null, signedStatement(name, version, sha256, size), key, sig);
}

/** Key ids name files (`<keyId>.pub`): letters, digits, dot, dash, underscore. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
