/**
 * `phasewise package keygen | sign`: a publisher's tools, run outside the server (the server never
 * holds a publisher's private key). `keygen` makes an Ed25519 pair (`<keyId>.pem` private, 0600;
 * `<keyId>.pub` for agents' trust stores); `sign` writes the signature document the publisher API
 * takes with the package (`FILE.sig.json`: name, version, sha256, size, signature).
 */
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { LIMITS } from '../protocol/agent-wire.js';
import { KEY_ID_PATTERN, signPackage } from '../protocol/package-signature.js';
import { isVersion } from '../model/version.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { FileTooLargeError, readTextUpTo } from '../util/bounded-read.js';
import { UsageError } from './errors.js';

/** A PEM private key is a few hundred bytes; /dev/zero or a wrong path to a big file is refused after this much. */
export const MAX_KEY_BYTES = 64 * 1024;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function registerPackageCommands(program: Command): void {
  const pkg = program.command('package').description('sign extension handler packages (publisher tools; docs/agent-server.md)');
  pkg.command('keygen')
    .description('make an Ed25519 signing key pair: DIR/<key-id>.pem (private, 0600) and DIR/<key-id>.pub')
    .requiredOption('--out <dir>', 'folder to write the pair into')
    .requiredOption('--key-id <id>', 'the key id agents know the public key by')
    .action((opts: { out: string; keyId: string }) => keygenCommand(opts));
  pkg.command('sign')
    .description('write the signature document of a package zip (Ed25519 over name, version, sha256 and size)')
    .argument('<file>', 'the package (zip)')
    .requiredOption('--key <pem>', 'the Ed25519 private key (PEM)')
    .requiredOption('--key-id <id>', 'the key id agents trust')
    .requiredOption('--name <Publisher.Type>', 'the handler name, exactly as the catalog spells it')
    .requiredOption('--version <v>', 'the four-part version')
    .option('--out <file>', 'where to write the document (default FILE.sig.json)')
    .action((file: string, opts: SignOptions) => signCommand(file, opts));
}

export function keygenCommand(opts: { out: string; keyId: string }): void {
  if (!KEY_ID_PATTERN.test(opts.keyId)) throw new UsageError(`--key-id '${opts.keyId}': letters, digits, '.', '-' and '_', at most 64`);
  if (opts.out.trim() === '') throw new UsageError('--out: empty; name the folder to write the key pair into');
  mkdirSync(opts.out, { recursive: true });
  const priv = join(opts.out, `${opts.keyId}.pem`);
  const pub = join(opts.out, `${opts.keyId}.pub`);
  if (existsSync(priv) || existsSync(pub)) throw new UsageError(`${priv} or ${pub} exists already; keys are never overwritten`);
  const pair = generateKeyPairSync('ed25519');
  writeFileAtomic(priv, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  writeFileAtomic(pub, pair.publicKey.export({ type: 'spki', format: 'pem' }) as string, { mode: 0o644 });
  process.stdout.write(`private key ${priv} (keep it secret)\npublic key  ${pub} (copy it into each agent's trusted-keys folder)\n`);
}

interface SignOptions { key: string; keyId: string; name: string; version: string; out?: string }

export async function signCommand(file: string, opts: SignOptions): Promise<void> {
  if (!KEY_ID_PATTERN.test(opts.keyId)) throw new UsageError(`--key-id '${opts.keyId}': letters, digits, '.', '-' and '_', at most 64`);
  if (!NAME.test(opts.name)) throw new UsageError(`--name '${opts.name}': expected Publisher.Type`);
  if (!isVersion(opts.version) || !/^\d+(\.\d+){3}$/.test(opts.version)) throw new UsageError(`--version '${opts.version}': expected a four-part version such as 1.2.0.0`);
  let keyPem: string;
  try {
    keyPem = readTextUpTo(opts.key, MAX_KEY_BYTES);
    if (createPrivateKey(keyPem).asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 private key');
  } catch (err) {
    if (err instanceof FileTooLargeError) throw new UsageError(`--key ${opts.key}: larger than ${MAX_KEY_BYTES / 1024} KiB; expected an Ed25519 private key (PEM)`);
    throw new UsageError(`--key ${opts.key}: ${(err as Error).message}`);
  }
  let size: number;
  try {
    const stat = statSync(file);
    // /dev/zero or a named pipe says size 0 and never ends: only a regular file has the size it is signed with.
    if (!stat.isFile()) throw new Error('not a regular file; expected the package (zip)');
    size = stat.size;
  } catch (err) {
    throw new UsageError(`${file}: ${(err as Error).message}`);
  }
  if (size > LIMITS.packageBytes) throw new UsageError(`${file} is ${size} bytes; packages are at most ${LIMITS.packageBytes}`);
  const hash = createHash('sha256');
  let read = 0;
  // `end` is inclusive: one byte past the size is asked for, so a file still growing is noticed.
  for await (const chunk of createReadStream(file, { end: size })) {
    read += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  if (read !== size) throw new UsageError(`${file} changed while it was read (${size} bytes, then ${read}); sign it again once it is written`);
  const sha256 = hash.digest('hex');
  const doc = { name: opts.name, version: opts.version, sha256, size, signature: signPackage(keyPem, opts.keyId, opts.name, opts.version, sha256, size) };
  const out = opts.out ?? `${file}.sig.json`;
  writeFileAtomic(out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`${out}: ${opts.name} ${opts.version} sha256 ${sha256} (${size} bytes), key ${opts.keyId}\n`);
}
