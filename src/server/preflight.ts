/**
 * What `serve` checks before it creates anything: the data folder can be one (not a file), and the
 * configured TLS certificate and key are readable PEM files that belong together. A bad start leaves
 * nothing behind and says what to fix in one line (ConfigError: exit code 2).
 */
import { statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './config-error.js';
import type { ServeConfig } from './config.js';
import { readUserFile } from './user-file.js';

/** A certificate chain or a key is a few KiB; a file much larger is not one. */
export const MAX_PEM_BYTES = 1024 * 1024;

/** The configured certificate and key: PEM, and the key is the certificate's. */
export function checkTlsFiles(tls: { cert: string; key: string }): { cert: string; key: string } {
  const cert = readUserFile('tls.cert', tls.cert, MAX_PEM_BYTES);
  const key = readUserFile('tls.key', tls.key, MAX_PEM_BYTES);
  if (!/-----BEGIN [A-Z0-9 ]*CERTIFICATE-----/.test(cert)) throw new ConfigError(`tls.cert ${tls.cert}: not a PEM certificate (no BEGIN CERTIFICATE)`);
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(key)) throw new ConfigError(`tls.key ${tls.key}: not a PEM private key (no BEGIN … PRIVATE KEY)`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const why = /key values mismatch/.test((err as Error).message) ? 'the key is not the certificate\'s' : (err as Error).message.split('\n')[0]!;
    throw new ConfigError(`tls.cert ${tls.cert} and tls.key ${tls.key}: ${why}`);
  }
  return { cert, key };
}

/** Everything serve can check without creating anything. */
export function preflight(config: ServeConfig): void {
  for (const [what, dir] of [['dataDir', config.dataDir]] as const) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      continue; // made at start
    }
    if (!st.isDirectory()) throw new ConfigError(`${what} ${dir}: exists and is not a folder`);
  }
  if (config.tls) checkTlsFiles(config.tls);
}
