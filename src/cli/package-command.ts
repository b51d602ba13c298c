/**
 * `phasewise package keygen | sign`: a publisher's tools, run outside the server (the server never
 * holds a publisher's private key). `keygen` makes an Ed25519 pair (`<keyId>.pem` private, 0600;
 * `<keyId>.pub` for agents' trust stores); `sign` writes the signature document the publisher API
 * takes with the package (`FILE.sig.json`: name, version, sha256, size, signature).
 */
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { LIMITS } from '../protocol/agent-wire.js';
import { KEY_ID_PATTERN, signPackage } from '../protocol/package-signature.js';
import { isVersion } from '../model/version.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { UsageError } from './errors.js';

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
    keyPem = readFileSync(opts.key, 'utf8');
    if (createPrivateKey(keyPem).asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 private key');
  } catch (err) {
    throw new UsageError(`--key ${opts.key}: ${(err as Error).message}`);
  }
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new UsageError(`${file}: ${(err as Error).message}`);
  }
  if (size > LIMITS.packageBytes) throw new UsageError(`${file} is ${size} bytes; packages are at most ${LIMITS.packageBytes}`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const sha256 = hash.digest('hex');
  const doc = { name: opts.name, version: opts.version, sha256, size, signature: signPackage(keyPem, opts.keyId, opts.name, opts.version, sha256, size) };
  const out = opts.out ?? `${file}.sig.json`;
  writeFileAtomic(out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stdout.write(`${out}: ${opts.name} ${opts.version} sha256 ${sha256} (${size} bytes), key ${opts.keyId}\n`);
}
