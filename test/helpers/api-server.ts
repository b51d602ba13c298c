/**
 * A real Phasewise server for API tests: HTTPS with the test certificate (trusted through
 * NODE_EXTRA_CA_CERTS by `npm test`), SQLite in a temporary folder, the simulated fleet on a fast clock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FailureModel } from '../../src/drivers/sim/failure-model.js';
import { configSchema } from '../../src/server/config.js';
import type { ServeConfig } from '../../src/server/config.js';
import { startServer } from '../../src/server/serve.js';
import type { RunningServer } from '../../src/server/serve.js';

export const TEST_TOKEN = 'test-token-contributor-0123456789';
export const READER_TOKEN = 'test-token-reader-only-0123456789';
export const PUBLISHER_TOKEN = 'test-token-publisher-0123456789ab';
export const CERT = new URL('../../../test/fixtures/tls/cert.pem', import.meta.url).pathname;
export const KEY = new URL('../../../test/fixtures/tls/key.pem', import.meta.url).pathname;

export interface TestServer extends RunningServer {
  dir: string;
  stop(): Promise<void>;
}

/** `wallNow`: the server's wall clock (operation retention, agents' heartbeats), for tests that move it. */
type TestServerOptions = Partial<ServeConfig> & { simulatedFailures?: Record<string, Partial<FailureModel>>; wallNow?: () => number };

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-api-'));
  const { simulatedFailures, wallNow, ...rest } = opts;
  const config = configSchema.parse({
    host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', retryAfterSeconds: 0,
    // Fast enough to finish rollouts in seconds, slow enough that a stalled event loop (a slow fsync under a
    // loaded suite) does not jump simulated time past the 90-minute install timeout.
    clockFactor: 2_000,
    subscriptions: ['sub1'],
    tls: { cert: CERT, key: KEY },
    tokens: [
      { token: TEST_TOKEN, name: 'alice@contoso.com', roles: ['reader', 'contributor', 'publisher'] },
      { token: READER_TOKEN, name: 'reader@contoso.com', roles: ['reader'] },
      { token: PUBLISHER_TOKEN, name: 'publisher@contoso.com', roles: ['publisher'] },
    ],
    ...rest,
  });
  const server = await startServer(config, { ...(simulatedFailures ? { simulatedFailures } : {}), ...(wallNow ? { wallNow } : {}) });
  const url = server.url.replace('127.0.0.1', 'localhost');
  return {
    ...server, url, dir,
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw HTTPS call with the test token (or another), JSON in and out. */
export async function call(base: string, method: string, path: string, body?: unknown, token: string | null = TEST_TOKEN, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Polls `check` until it returns a value, for at most `ms` real milliseconds. */
/** The whole event log of a test server, following `nextLink` (bounded at 50 pages). */
export async function allEvents(s: TestServer): Promise<any[]> {
  const r = await call(s.url, 'GET', '/phasewise/events?limit=1000&after=0');
  const all = [...r.body.value];
  for (let next = r.body.nextLink, i = 0; next && i < 50; i++) {
    const more = await call(s.url, 'GET', next.slice(s.url.length));
    all.push(...more.body.value);
    next = more.body.nextLink;
  }
  return all;
}

export async function eventually<T>(check: () => Promise<T | undefined | null | false>, ms = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) { last = err; }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}
