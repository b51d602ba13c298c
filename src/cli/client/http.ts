/**
 * The CLI's calls to a Phasewise server: JSON over HTTPS with the profile's token and CA, bounded in
 * time and size. Failures become a ClientError with one line to print and the exit code of docs/cli.md:
 * 1 for the server's refusals and unreachable servers, 3 for what is not there.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Profile } from './profile.js';

export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3 } as const;
const TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export class ClientError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export interface Client {
  get(path: string): Promise<unknown>;
  post(path: string, body?: unknown): Promise<unknown>;
  /** Every page of an ARM-style list ({ value, nextLink }), up to `max` items. */
  list(path: string, max: number): Promise<unknown[]>;
}

export function clientFor(profile: Profile): Client {
  const base = new URL(profile.server);
  let ca: string | undefined;
  if (profile.caCert) {
    try {
      ca = readFileSync(profile.caCert, 'utf8');
    } catch (err) {
      throw new ClientError(`phasewise: cannot read the CA certificate ${profile.caCert}: ${(err as Error).message}`, EXIT.usage);
    }
  }
  const call = (method: string, path: string, body?: unknown): Promise<unknown> => new Promise((resolve, reject) => {
    const url = new URL(path, base);
    if (url.host !== base.host) return reject(new ClientError(`phasewise: the server sent a link to another host (${url.host})`, EXIT.error));
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${profile.token}`, accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, ...(ca ? { ca } : {}), timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) req.destroy(new Error('the answer is larger than 64 MiB'));
        else chunks.push(c);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try { parsed = text === '' ? null : JSON.parse(text); } catch { /* not JSON: shown as text */ }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve(parsed);
        reject(new ClientError(`phasewise: ${status} ${errorText(parsed, text)}`, status === 404 ? EXIT.notFound : EXIT.error));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(new ClientError(`phasewise: cannot reach ${base.origin}: ${reachText(err)}`, EXIT.error)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body ?? {}),
    async list(path, max) {
      const out: unknown[] = [];
      let next: string | null = path;
      while (next && out.length < max) {
        const page = (await call('GET', next)) as { value?: unknown[]; nextLink?: string };
        out.push(...(page.value ?? []));
        next = page.nextLink ?? null;
      }
      return out.slice(0, max);
    },
  };
}

/** ARM's `{error: {code, message}}`, Azure Monitor's flat `{code, message}`, or the text. */
function errorText(parsed: unknown, text: string): string {
  const p = parsed as { error?: { code?: string; message?: string }; code?: string; message?: string } | null;
  const e = p?.error ?? p;
  if (e && typeof e === 'object' && (e.code || e.message)) return `${e.code ?? 'Error'}: ${e.message ?? ''}`.slice(0, 500);
  return text.replace(/\s+/g, ' ').slice(0, 200);
}

function reachText(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused (is phasewise serve running there?)';
  if (err.code === 'ENOTFOUND') return 'no such host';
  if (err.code === 'SELF_SIGNED_CERT_IN_CHAIN' || err.code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || err.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
    return `the server's certificate is not trusted (${err.code}); log in again with --ca-cert FILE`;
  }
  return err.message;
}
