/**
 * The CLI's profile: which server to talk to, with which token and CA certificate. Kept in
 * `$PHASEWISE_CONFIG_DIR/profile.json`, else `~/.config/phasewise/profile.json`, mode 0600 (it holds
 * a token), written whole (temp file, fsync, rename) so an interrupted login never leaves half a file.
 * Read back bounded and checked: a profile others can read, one that is not a regular file, or one whose
 * fields are not what login writes is refused with one line (exit 2), before any request.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { FileTooLargeError, readTextUpTo } from '../../util/bounded-read.js';
import { UsageError } from '../errors.js';

export interface Profile {
  server: string;
  token: string;
  /** PEM file of the CA (or self-signed certificate) the server's certificate chains to. */
  caCert?: string;
}

/** A profile is three short fields; anything much larger is not one of ours. */
export const MAX_PROFILE_BYTES = 64 * 1024;
export const TOKEN_LENGTH = { min: 16, max: 512 } as const;
/** What a bearer token may hold: printable ASCII without spaces (it goes into a header). */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.PHASEWISE_CONFIG_DIR ? resolve(env.PHASEWISE_CONFIG_DIR) : join(homedir(), '.config', 'phasewise');
  return join(dir, 'profile.json');
}

/** The problem with a token, or null. */
export function tokenProblem(token: string): string | null {
  if (token.length < TOKEN_LENGTH.min || token.length > TOKEN_LENGTH.max) return `expected ${TOKEN_LENGTH.min} to ${TOKEN_LENGTH.max} characters`;
  if (!TOKEN_CHARS.test(token)) return 'expected printable characters without spaces';
  return null;
}

export function readProfile(env: NodeJS.ProcessEnv = process.env): Profile {
  const file = profilePath(env);
  const again = 'run phasewise login again';
  let st;
  try {
    st = statSync(file); // follows a symlink: the file it names is checked
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`phasewise: not logged in (no ${file}); run: phasewise login --server URL --token TOKEN`);
    throw new UsageError(`phasewise: cannot read ${file}: ${(err as Error).message}`);
  }
  // A FIFO or a device would block or never end; a directory is not a profile.
  if (!st.isFile()) throw new UsageError(`phasewise: ${file} is not a regular file; remove it and ${again}`);
  // It holds a token: a profile others can read is refused, as ssh refuses such a key.
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw new UsageError(`phasewise: ${file} can be read by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}, or ${again}`);
  }
  let text: string;
  try {
    text = readTextUpTo(file, MAX_PROFILE_BYTES);
  } catch (err) {
    if (err instanceof FileTooLargeError) throw new UsageError(`phasewise: ${file} is larger than ${MAX_PROFILE_BYTES} bytes: not a profile; ${again}`);
    throw new UsageError(`phasewise: cannot read ${file}: ${(err as Error).message}`);
  }
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch {
    throw new UsageError(`phasewise: ${file} is not valid JSON${text.trim() === '' ? ' (it is empty)' : ''}; ${again}`);
  }
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new UsageError(`phasewise: ${file} is not a profile (expected {server, token}); ${again}`);
  const { server, token, caCert } = p as Record<string, unknown>;
  if (typeof server !== 'string' || typeof token !== 'string') throw new UsageError(`phasewise: ${file} lacks server or token; ${again}`);
  const bad = (field: string, why: string) => new UsageError(`phasewise: ${file}: ${field}: ${why}; ${again}`);
  try {
    checkServerUrl(server);
  } catch {
    throw bad('server', `'${server.slice(0, 100)}' is not an https:// URL`);
  }
  const problem = tokenProblem(token);
  if (problem) throw bad('token', problem);
  if (caCert !== undefined && caCert !== null && (typeof caCert !== 'string' || caCert === '' || caCert.length > 4096)) throw bad('caCert', 'expected a file name');
  return { server, token, ...(typeof caCert === 'string' ? { caCert } : {}) };
}

export function writeProfile(p: Profile, env: NodeJS.ProcessEnv = process.env): string {
  const file = profilePath(env);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, JSON.stringify(p, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600); // an older file of another mode is replaced, but be sure
  return file;
}

/** `--server`: an https:// URL without a path beyond /, a query, a fragment or credentials (refused, never dropped). `serve` speaks HTTPS only, and the token must not travel in clear. */
export function checkServerUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`phasewise login: --server: '${text.slice(0, 200)}' is not a URL; expected https://host:port`);
  }
  if (u.protocol === 'http:') {
    throw new UsageError(`phasewise login: --server: phasewise serve speaks HTTPS only (the token must not travel in clear); use https://${u.host}`);
  }
  if (u.protocol !== 'https:') throw new UsageError(`phasewise login: --server: expected https://host:port, got ${u.protocol}`);
  // Dropped without a word, they were: a server behind a proxy at a path was then asked at another address.
  if (u.username || u.password) {
    throw new UsageError(`phasewise login: --server: a user name or password in the URL is not used (the token is the credential); use https://${u.host}`);
  }
  const rest = `${u.pathname === '/' ? '' : u.pathname}${u.search}${u.hash}`;
  if (rest) throw new UsageError(`phasewise login: --server: '${rest.slice(0, 100)}' would not be used: phasewise serve answers at the root of its address; use https://${u.host}`);
  return `${u.protocol}//${u.host}`;
}
