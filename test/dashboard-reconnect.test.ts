/**
 * The dashboard when its live stream goes away (the network drops, the server closes a stream that fell
 * behind, the server restarts): what changed meanwhile was never announced on the stream, so the page
 * reloads its view once the stream is back. It did not: the page showed the old state until the next
 * change, which on a quiet fleet may never come. Real Chromium, real server: the server drops every
 * connection (the stream's too) and the page's new streams are refused until the change is made.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { call, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { launchChromium } from './helpers/browser.js';

describe('dashboard: the live stream lost and back', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  before(async () => {
    // A quiet fleet: the release is an hour of real time away, so no engine event refreshes the page by chance.
    s = await startTestServer({ scenario: 'examples/small.yaml', clockFactor: 1 });
    browser = await launchChromium();
    page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  test('a fleet-wide stop given while the page was offline shows once the stream is back, without a reload', async () => {
    await page.goto(`${s.url}/`);
    await page.fill('#token', TEST_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#live:not(.off):not([hidden])');
    assert.equal(await page.$('#fleet-stop'), null, 'no stop yet');
    const stream = '**/phasewise/stream';
    await page.route(stream, (r) => r.abort('connectionreset'));
    s.app.server.closeAllConnections();
    await page.waitForSelector('#live.off');
    // Another operator stops the fleet meanwhile: the page's stream cannot hear of it.
    assert.equal((await call(s.url, 'POST', '/phasewise/fleet/pause', { reason: 'incident 42' })).status, 200);
    await page.unroute(stream);
    await page.waitForSelector('#live:not(.off)');
    await page.waitForSelector('#fleet-stop', { timeout: 30_000 });
    assert.match(await page.textContent('#fleet-stop') ?? '', /incident 42$/);
  });

  test('a fleet-wide stop and its end given by another operator (no engine event on a quiet fleet) show on an open page, without a reload', async () => {
    // The stream announced the engine's events only: a write that made none was never shown.
    assert.equal((await call(s.url, 'POST', '/phasewise/fleet/resume', {})).status, 200);
    await page.waitForSelector('#fleet-stop', { state: 'detached', timeout: 30_000 });
    assert.equal((await call(s.url, 'POST', '/phasewise/fleet/pause', { reason: 'incident 43' })).status, 200);
    await page.waitForSelector('#fleet-stop', { timeout: 30_000 });
    assert.match(await page.textContent('#fleet-stop') ?? '', /incident 43$/);
  });
});
