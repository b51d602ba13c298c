/**
 * The agent's HTTPS client: one keep-alive Agent with the machine key and the issued client certificate
 * (mTLS), trusting the server's certificate. Every response body is bounded before it is parsed.
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: https.Agent;
  /** Trust for a request made without an agent (enrollment). */
  ca?: string[];
  maxBytes: number;
  /** For the whole exchange, answer included: a server that trickles its answer is cut off too. */
  timeoutMs: number;
}

/** A response body over its limit, or a transport failure: both are retried by the caller. */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

/** Roots Node trusts, NODE_EXTRA_CA_CERTS, then the given PEMs: passing `ca` replaces Node's defaults. */
export function trustedCas(extra: string[]): string[] {
  const cas = [...rootCertificates];
  const envFile = process.env.NODE_EXTRA_CA_CERTS;
  if (envFile) {
    try {
      cas.push(readFileSync(envFile, 'utf8'));
    } catch {
      // Node itself warns about an unreadable NODE_EXTRA_CA_CERTS; the explicit --ca-cert still applies.
    }
  }
  return [...cas, ...extra];
}

export function mtlsAgent(keyPem: string, certPem: string, ca: string[]): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets: 4, key: keyPem, cert: certPem, ca });
}

export function request(url: string, opts: RequestOptions): Promise<HttpResponse> {
  return new Promise((resolveOnce, rejectOnce) => {
    const u = new URL(url);
    if (u.protocol !== 'https:') {
      rejectOnce(new HttpError(`only https URLs are allowed, not ${u.protocol}//`, null));
      return;
    }
    let req: ReturnType<typeof https.request> | null = null;
    // A deadline for the whole exchange, not only between two bytes: a byte every few seconds would
    // otherwise hold the poll (or the report) for as long as the server likes.
    const deadline = setTimeout(() => req?.destroy(new HttpError(`no complete answer from ${u.host} within ${opts.timeoutMs} ms`, null)), opts.timeoutMs);
    const resolve = (r: HttpResponse) => {
      clearTimeout(deadline);
      resolveOnce(r);
    };
    const reject = (err: unknown) => {
      clearTimeout(deadline);
      rejectOnce(err);
    };
    const headers: Record<string, string | number> = { accept: 'application/json', ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = Buffer.byteLength(opts.body);
    try {
      req = https.request(u, { method: opts.method ?? 'GET', headers, agent: opts.agent, ...(opts.agent ? {} : { ca: opts.ca }) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > opts.maxBytes) {
            req!.destroy(new HttpError(`the response from ${u.pathname} exceeds ${opts.maxBytes} bytes`, res.statusCode ?? null));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(err instanceof HttpError ? err : new HttpError(`the answer from ${u.host} broke off: ${err.message}`, null)));
      });
    } catch (err) {
      // Thrown before any request exists (a client key and certificate that do not match, a header Node
      // refuses): the deadline then had no request to cut, threw, and ended the agent.
      reject(new HttpError(`cannot send the request to ${u.host}: ${(err as Error).message}`, null));
      return;
    }
    req.on('error', (err) => reject(err instanceof HttpError ? err : new HttpError(`cannot reach ${u.host}: ${describeNetError(err, u.hostname)}`, null)));
    req.end(opts.body);
  });
}

/**
 * A transport failure in words that point at the fix. Only a certificate from an unknown issuer is a
 * matter of trust (--ca-cert); an expired one, one not valid yet (often this machine's clock, after a
 * jump) or one for another name were all said to be "not trusted", and a new --ca-cert could not help.
 */
export function describeNetError(err: Error, host: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  const clock = `this machine's clock says ${new Date().toISOString()}`;
  if (code === 'CERT_HAS_EXPIRED') return `the server's TLS certificate has expired (${code}; ${clock}); renew it on the server, or set this machine's clock right`;
  if (code === 'CERT_NOT_YET_VALID') return `the server's TLS certificate is not valid yet (${code}; ${clock}); set this machine's clock right, or check the certificate's start date`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the server's TLS certificate is not for ${host} (${code}: ${err.message}); use the address the certificate names, or a certificate that names ${host}`;
  }
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code)) {
    return `the server's TLS certificate is not trusted (${code}); pass --ca-cert FILE or set NODE_EXTRA_CA_CERTS`;
  }
  return code ? `${code} (${err.message})` : err.message;
}

/** The message of an ARM-shaped error body `{ error: { code, message } }`, or the text itself. */
export function errorMessageOf(body: Buffer): string {
  const text = body.toString('utf8').slice(0, 2000);
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string }; message?: string };
    if (parsed.error?.message) return parsed.error.code ? `${parsed.error.code}: ${parsed.error.message}` : parsed.error.message;
    if (parsed.message) return parsed.message;
  } catch {
    // not JSON: show the text
  }
  return text.trim().replace(/\s+/g, ' ') || '(empty body)';
}
