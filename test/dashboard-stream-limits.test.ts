/**
 * The dashboard's live stream behind a broken or hostile proxy, in a real Chromium. The page is served
 * through a proxy of the test's that forwards everything to a real server but answers the stream itself:
 * (1) with data that never ends a message (no blank line): the page buffered it without bound; it must drop
 * the stream past its documented limit (64 KiB) and reconnect; (2) with 401: the page retried every 3 s
 * forever while showing the old view; it must sign the user out, as any other 401 does.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CERT, KEY, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { launchChromium } from './helpers/browser.js';

type Mode = 'pass' | 'endless' | 'refuse';

describe('dashboard: a stream that never ends a message, and a 401 on the stream', () => {
  let s: TestServer;
  let proxy: Server;
  let proxyUrl: string;
  let browser: Browser;
  let page: Page;
  let mode: Mode = 'pass';
  /** Per stream the proxy answered endlessly: the bytes it wrote before the page closed it (null while open). */
  const endless: { sent: number; closedAt: number | null }[] = [];
  let refused = 0;

  before(async () => {
    s = await startTestServer({ scenario: 'examples/small.yaml', clockFactor: 1 });
    proxy = createServer({ cert: readFileSync(CERT), key: readFileSync(KEY) }, (req, res) => {
      if (req.url?.startsWith('/phasewise/stream') && mode === 'endless') {
        const rec = { sent: 0, closedAt: null as number | null };
        endless.push(rec);
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
        const chunk = `data: ${'x'.repeat(8 * 1024)}\n`;
        // Bounded: at most 8 MiB per stream, far past the page's limit.
        const timer = setInterval(() => {
          if (rec.sent > 8 * 1024 * 1024) return clearInterval(timer);
          res.write(chunk);
          rec.sent += chunk.length;
        }, 5);
        res.on('close', () => { clearInterval(timer); rec.closedAt = rec.sent; });
        return;
      }
      if (req.url?.startsWith('/phasewise/stream') && mode === 'refuse') {
        refused++;
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'AuthenticationFailed', message: 'The token is not known.' } }));
        return;
      }
      const target = new URL(s.url);
      const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host }, rejectUnauthorized: false }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `https://localhost:${(proxy.address() as AddressInfo).port}`;
    browser = await launchChromium();
    page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  });
  after(async () => {
    await browser?.close();
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await s?.stop();
  });

  async function signIn(): Promise<void> {
    await page.goto(`${proxyUrl}/`);
    await page.fill('#token', TEST_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#nav:not([hidden])');
  }

  /** Waits (bounded, generous) for a condition of the test's own state. */
  async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a stream message that never ends is dropped past 64 KiB and the page reconnects', async () => {
    mode = 'endless';
    await signIn();
    await until('the page to drop an endless stream', () => endless.some((e) => e.closedAt !== null));
    const first = endless.find((e) => e.closedAt !== null)!;
    // Dropped soon past the limit (the browser reads in chunks; the proxy writes 8 KiB at a time), not at 8 MiB.
    assert.ok(first.closedAt! < 2 * 1024 * 1024, `the page read ${first.closedAt} bytes of one message before dropping it`);
    await until('the page to reconnect', () => endless.length >= 2);
    mode = 'pass';
    // Back on a real stream: the live badge turns green again, the page still signed in.
    await page.waitForSelector('#live:not(.off):not([hidden])', { timeout: 30_000 });
    assert.equal(await page.isVisible('#signin'), false);
  });

  test('a 401 on the stream signs the user out with a message, and the page stops asking', async () => {
    mode = 'refuse';
    // The server drops the page's stream (a restart with other tokens): the reconnection is refused.
    s.app.server.closeAllConnections();
    proxy.closeAllConnections();
    await page.waitForSelector('#signin-error:not([hidden])', { timeout: 30_000 });
    assert.match(await page.textContent('#signin-error') ?? '', /token was refused/);
    assert.equal(await page.isVisible('#nav'), false);
    assert.equal(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }).sessionStorage.getItem('phasewise-token')), null);
    const n = refused;
    // It retried every 3 s: after 8 s, no more attempt than the one that signed out.
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal(refused, n, 'the page kept asking for the stream after it was refused');
  });
  test('a token pasted with a character no header may carry (a zero-width space) is refused with what a token is, not the browser\'s words', async () => {
    mode = 'pass';
    await page.goto(`${proxyUrl}/`);
    await page.evaluate(() => (globalThis as unknown as { sessionStorage: { clear(): void } }).sessionStorage.clear());
    await page.reload();
    await page.fill('#token', `${TEST_TOKEN}\u200b`);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signin-error:not([hidden])');
    assert.equal(await page.textContent('#signin-error'), 'A token is 16 to 512 printable ASCII characters without spaces: check what was pasted.');
    await page.fill('#token', TEST_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#nav:not([hidden])');
  });
});
