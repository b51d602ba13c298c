/**
 * The CLI's calls to a Phasewise server: JSON over HTTPS with the profile's token and CA, bounded in
 * time (the whole exchange, not only a silent socket: a server that sends a byte a minute is given up)
 * and in size. Failures become a ClientError with one line to print and the exit code of docs/cli.md:
 * 1 for the server's refusals, unreachable servers and answers that are not a Phasewise server's,
 * 3 for what is not there.
 */
import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FileTooLargeError, readTextUpTo } from '../../util/bounded-read.js';
import type { Profile } from './profile.js';

export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, waitTimedOut: 4 } as const;
/** The default bound of one exchange; PHASEWISE_REQUEST_TIMEOUT (seconds) changes it. */
export const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMEOUT_S = 600;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const MAX_CA_BYTES = 1024 * 1024;
/** A list that needs more pages than this is a server sending nextLinks in a loop. */
export const MAX_PAGES = 1_000;

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

/** PHASEWISE_REQUEST_TIMEOUT: whole seconds from 1 to 600; anything else is a usage error. */
export function requestTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.PHASEWISE_REQUEST_TIMEOUT;
  if (text === undefined || text === '') return DEFAULT_TIMEOUT_MS;
  if (!/^\d{1,3}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TIMEOUT_S) {
    throw new ClientError(`phasewise: PHASEWISE_REQUEST_TIMEOUT: expected whole seconds from 1 to ${MAX_TIMEOUT_S}, got '${text.slice(0, 40)}'`, EXIT.usage);
  }
  return Number(text) * 1000;
}

function readCa(file: string): string {
  let text: string;
  try {
    text = readTextUpTo(file, MAX_CA_BYTES);
  } catch (err) {
    const why = err instanceof FileTooLargeError ? `larger than ${MAX_CA_BYTES} bytes` : (err as Error).message;
    throw new ClientError(`phasewise: cannot read the CA certificate ${file}: ${why}`, EXIT.usage);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new ClientError(`phasewise: the CA certificate ${file} is not a PEM certificate (no BEGIN CERTIFICATE)`, EXIT.usage);
  return text;
}

export function clientFor(profile: Profile, env: NodeJS.ProcessEnv = process.env): Client {
  const base = new URL(profile.server);
  const timeoutMs = requestTimeoutMs(env);
  const ca = profile.caCert ? readCa(profile.caCert) : undefined;
  const call = (method: string, path: string, body?: unknown): Promise<unknown> => new Promise((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(path, base);
    } catch {
      return reject(new ClientError(`phasewise: the server sent a link that is not a URL ('${path.slice(0, 100)}')`, EXIT.error));
    }
    if (url.host !== base.host || url.protocol !== base.protocol) return reject(new ClientError(`phasewise: the server sent a link to another host (${url.origin.slice(0, 200)})`, EXIT.error));
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${profile.token}`, accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let settled = false;
    let req: ClientRequest | undefined;
    const fail = (err: ClientError) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req?.destroy();
      reject(err);
    };
    // The whole exchange, headers and body, within timeoutMs: a socket timeout alone resets on every byte.
    const deadline = setTimeout(() => fail(new ClientError(`phasewise: ${base.origin} gave no whole answer within ${timeoutMs / 1000} s`, EXIT.error)), timeoutMs);
    const tooLarge = () => fail(new ClientError(`phasewise: ${base.origin} sent an answer larger than ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB; not read`, EXIT.error));
    const onResponse = (res: IncomingMessage) => {
      if (Number(res.headers['content-length'] ?? 0) > MAX_RESPONSE_BYTES) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) tooLarge();
        else chunks.push(c);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        const status = res.statusCode ?? 0;
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        let json = true;
        try { parsed = text === '' ? null : JSON.parse(text); } catch { json = false; }
        if (status >= 200 && status < 300) {
          if (json) return resolve(parsed);
          return reject(new ClientError(`phasewise: ${base.origin} answered ${status} with a body that is not JSON (is it a Phasewise server?): ${oneLine(text, 100)}`, EXIT.error));
        }
        reject(new ClientError(`phasewise: ${status} ${errorText(json ? parsed : null, text)}`, status === 404 ? EXIT.notFound : EXIT.error));
      });
      res.on('error', (err) => fail(new ClientError(`phasewise: ${base.origin} broke off its answer: ${err.message}`, EXIT.error)));
      res.on('aborted', () => fail(new ClientError(`phasewise: ${base.origin} broke off its answer`, EXIT.error)));
    };
    try {
      req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, ...(ca ? { ca } : {}) }, onResponse);
    } catch (err) {
      // Node refuses some values before sending (a token with a control character): nothing was sent.
      return fail(new ClientError(`phasewise: cannot send the request: ${oneLine((err as Error).message, 200)}`, EXIT.usage));
    }
    req.on('error', (err: NodeJS.ErrnoException) => fail(new ClientError(`phasewise: cannot reach ${base.origin}: ${reachText(err)}`, EXIT.error)));
    if (payload !== undefined) req.write(payload);
    req.end();
  });
  return {
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body ?? {}),
    async list(path, max) {
      const out: unknown[] = [];
      let next: string | null = path;
      for (let pages = 0; next && out.length < max; pages++) {
        if (pages === MAX_PAGES) throw new ClientError(`phasewise: ${base.origin} sent more than ${MAX_PAGES} pages (nextLink in a loop?); stopped`, EXIT.error);
        const page = (await call('GET', next)) as { value?: unknown; nextLink?: unknown } | null;
        if (page === null || typeof page !== 'object' || !Array.isArray(page.value)) {
          throw new ClientError(`phasewise: ${base.origin} answered with something that is not a list ({value: [...]})`, EXIT.error);
        }
        if (page.nextLink !== undefined && page.nextLink !== null && typeof page.nextLink !== 'string') {
          throw new ClientError(`phasewise: ${base.origin} sent a nextLink that is not a string`, EXIT.error);
        }
        out.push(...page.value);
        next = page.nextLink ?? null;
      }
      return out.slice(0, max);
    },
  };
}

const oneLine = (text: string, n: number) => text.replace(/\s+/g, ' ').slice(0, n);

/** ARM's `{error: {code, message}}`, Azure Monitor's flat `{code, message}`, or the text. */
function errorText(parsed: unknown, text: string): string {
  const p = parsed as { error?: { code?: unknown; message?: unknown }; code?: unknown; message?: unknown } | null;
  const e = p?.error ?? p;
  if (e && typeof e === 'object' && (e.code || e.message)) return oneLine(`${String(e.code ?? 'Error')}: ${String(e.message ?? '')}`, 500);
  return oneLine(text, 200);
}

function reachText(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused (is phasewise serve running there?)';
  if (err.code === 'ENOTFOUND') return 'no such host';
  if (err.code === 'SELF_SIGNED_CERT_IN_CHAIN' || err.code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || err.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
    return `the server's certificate is not trusted (${err.code}); log in again with --ca-cert FILE`;
  }
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the server's certificate is for another name (${err.code})`;
  return oneLine(err.message, 200);
}
