/**
 * Size, SHA-256, then the publisher's Ed25519 signature with a key the machine trusts: all before a
 * single byte of the package is unpacked. Any failure is a PackageRejected with a sentence saying which.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import type { PackageReference } from '../protocol/agent-wire.js';
import { verifyPackage } from '../protocol/package-signature.js';
import { loadTrustedKey } from './trust-store.js';
import type { AgentDirs } from './layout.js';

export class PackageRejected extends Error {}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function verifyPackageFile(dirs: AgentDirs, path: string, name: string, version: string, ref: PackageReference): Promise<void> {
  const size = statSync(path).size;
  if (size !== ref.size) throw new PackageRejected(`package ${name} ${version} is ${size} bytes, the goal state says ${ref.size}`);
  const digest = await sha256File(path);
  if (digest !== ref.sha256.toLowerCase()) throw new PackageRejected(`package ${name} ${version} has SHA-256 ${digest}, the goal state says ${ref.sha256.toLowerCase()}`);
  const key = loadTrustedKey(dirs, ref.signature.keyId);
  if (!key) throw new PackageRejected(`package ${name} ${version} is signed with key ${ref.signature.keyId}, which this machine does not trust`);
  if (!verifyPackage(key, ref.signature, name, version, digest, size)) {
    throw new PackageRejected(`package ${name} ${version}: the signature does not verify with trusted key ${ref.signature.keyId}`);
  }
}
