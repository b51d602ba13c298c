/**
 * Publisher keys the machine trusts: `<config>/trusted-keys/<keyId>.pub`, Ed25519 public keys in PEM.
 * Only these verify packages; the control plane cannot add one.
 */
import { createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KEY_ID_PATTERN } from '../protocol/package-signature.js';
import { readRegularFile, writeFileAtomic } from './atomic-file.js';
import { trustedKeysDir } from './layout.js';
import type { AgentDirs } from './layout.js';
import { shown } from './shown.js';

export class TrustError extends Error {}

const MAX_KEY_FILE = 16 * 1024;

function checkKeyId(keyId: string): void {
  if (!KEY_ID_PATTERN.test(keyId)) throw new TrustError(`key id ${shown(keyId)} is not valid (letters, digits, '.', '-', '_'; at most 64)`);
}

/** The Ed25519 public key in `pem`, or a TrustError saying what it is instead. */
export function parseEd25519PublicKey(pem: string, what: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new TrustError(`${what} is not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new TrustError(`${what} is a ${key.asymmetricKeyType ?? 'unknown'} key; publisher keys must be Ed25519`);
  return key;
}

export function addTrustedKey(dirs: AgentDirs, keyId: string, file: string): void {
  checkKeyId(keyId);
  let read: { text: string; size: number };
  try {
    // A regular file only, opened without blocking: /dev/zero and a named pipe would never end.
    read = readRegularFile(file, MAX_KEY_FILE + 1);
  } catch (err) {
    throw new TrustError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (read.size > MAX_KEY_FILE) throw new TrustError(`${file} is larger than ${MAX_KEY_FILE} bytes; not a public key`);
  const pem = read.text;
  // createPublicKey would derive the public key from a private one: refuse it, so a publisher's private
  // key copied to a machine by mistake is noticed rather than silently accepted.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new TrustError(`${file} holds a private key; give the publisher's public key (the .pub that package keygen wrote), and keep the private key off machines`);
  }
  const key = parseEd25519PublicKey(pem, file);
  writeFileAtomic(join(trustedKeysDir(dirs), `${keyId}.pub`), key.export({ type: 'spki', format: 'pem' }).toString(), 0o644);
}

export function removeTrustedKey(dirs: AgentDirs, keyId: string): void {
  checkKeyId(keyId);
  const path = join(trustedKeysDir(dirs), `${keyId}.pub`);
  if (!existsSync(path)) throw new TrustError(`no trusted key ${keyId}`);
  rmSync(path);
}

export function listTrustedKeys(dirs: AgentDirs): string[] {
  const dir = trustedKeysDir(dirs);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pub') && KEY_ID_PATTERN.test(f.slice(0, -4)))
    .map((f) => f.slice(0, -4))
    .sort();
}

/** The trusted key `keyId`, or null when the machine does not trust it (unknown, or not Ed25519). */
export function loadTrustedKey(dirs: AgentDirs, keyId: string): KeyObject | null {
  if (!KEY_ID_PATTERN.test(keyId)) return null;
  const path = join(trustedKeysDir(dirs), `${keyId}.pub`);
  try {
    if (statSync(path).size > MAX_KEY_FILE) return null;
    return parseEd25519PublicKey(readFileSync(path, 'utf8'), path);
  } catch {
    return null;
  }
}
