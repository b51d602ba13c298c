/**
 * The CLI's profile: which server to talk to, with which token and CA certificate. Kept in
 * `$PHASEWISE_CONFIG_DIR/profile.json`, else `~/.config/phasewise/profile.json`, mode 0600 (it holds
 * a token), written whole (temp file, fsync, rename) so an interrupted login never leaves half a file.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { UsageError } from '../errors.js';

export interface Profile {
  server: string;
  token: string;
  /** PEM file of the CA (or self-signed certificate) the server's certificate chains to. */
  caCert?: string;
}

export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.PHASEWISE_CONFIG_DIR ? resolve(env.PHASEWISE_CONFIG_DIR) : join(homedir(), '.config', 'phasewise');
  return join(dir, 'profile.json');
}

export function readProfile(env: NodeJS.ProcessEnv = process.env): Profile {
  const file = profilePath(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`phasewise: not logged in (no ${file}); run: phasewise login --server URL --token TOKEN`);
  }
  let p: Partial<Profile>;
  try {
    p = JSON.parse(text) as Partial<Profile>;
  } catch {
    throw new UsageError(`phasewise: ${file} is not valid JSON; run phasewise login again`);
  }
  if (typeof p.server !== 'string' || typeof p.token !== 'string') throw new UsageError(`phasewise: ${file} lacks server or token; run phasewise login again`);
  return { server: p.server, token: p.token, ...(typeof p.caCert === 'string' ? { caCert: p.caCert } : {}) };
}

export function writeProfile(p: Profile, env: NodeJS.ProcessEnv = process.env): string {
  const file = profilePath(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, JSON.stringify(p, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600); // an older file of another mode is replaced, but be sure
  return file;
}

/** `--server`: an https:// (or http://) URL without a path beyond /. */
export function checkServerUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`phasewise login: --server: '${text.slice(0, 200)}' is not a URL; expected https://host:port`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new UsageError(`phasewise login: --server: expected https://host:port, got ${u.protocol}`);
  return `${u.protocol}//${u.host}`;
}
