/**
 * The dashboard's text fields under live updates, in a real Chromium against a real server. A live update
 * redraws the view (every second while a rollout runs): the fleet page's machine search lost what was typed
 * and its results mid-word, the activity filter its draft. And the search's answers come back in any order:
 * a slow answer to an earlier keystroke replaced the results of the last one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { call, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { launchChromium } from './helpers/browser.js';

describe('dashboard: typing through live updates', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  before(async () => {
    // A quiet fleet: only the test's own writes redraw the page.
    s = await startTestServer({ scenario: 'examples/small.yaml', clockFactor: 1 });
    browser = await launchChromium();
    page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    await page.goto(`${s.url}/`);
    await page.fill('#token', TEST_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#live:not(.off):not([hidden])');
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  const shown = () => page.$$eval('#machine-results tbody tr td:first-child', (tds) => tds.map((td) => td.textContent ?? ''));
  /** Waits until the page has drawn its view again (a live update), bounded. */
  async function redrawn(write: () => Promise<unknown>): Promise<void> {
    const before = await page.getAttribute('#main', 'data-loaded');
    await write();
    await page.waitForFunction((b) => (globalThis as unknown as { document: { getElementById(id: string): { dataset: { loaded?: string } } } })
      .document.getElementById('main').dataset.loaded !== b, before, { timeout: 30_000 });
  }

  test('the machine search shows the last keystroke\'s answer, whichever answer comes last', async () => {
    const slow = (u: URL) => u.pathname === '/phasewise/machines' && u.searchParams.get('prefix') === 'w';
    await page.route(slow, async (r) => {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await r.continue();
    });
    const slowAnswer = page.waitForResponse((res) => slow(new URL(res.url())), { timeout: 30_000 });
    await page.type('#machine-search', 'web/1', { delay: 20 });
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } })
      .document.querySelectorAll('#machine-results tbody tr').length > 0, undefined, { timeout: 30_000 });
    await slowAnswer;
    await page.unroute(slow);
    await page.waitForTimeout(500); // the page reads the slow answer's body
    const rows = await shown();
    assert.ok(rows.length > 0);
    assert.deepEqual(rows.filter((id) => !id.startsWith('web/1')), [], `only machines named web/1…: ${rows.join(', ')}`);
  });

  test('a live update keeps the search typed, its results and the focus; the activity filter keeps its draft', async () => {
    await page.fill('#machine-search', 'web/2');
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } })
      .document.querySelector('#machine-results tbody td')?.textContent === 'web/2', undefined, { timeout: 30_000 });
    await redrawn(() => call(s.url, 'POST', '/phasewise/fleet/pause', { reason: 'incident 7' }));
    await page.waitForSelector('#fleet-stop');
    assert.equal(await page.inputValue('#machine-search'), 'web/2');
    assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { id: string } | null } }).document.activeElement?.id), 'machine-search');
    await page.waitForFunction(() => (globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null } })
      .document.querySelector('#machine-results tbody td')?.textContent === 'web/2', undefined, { timeout: 30_000 });

    await page.goto(`${s.url}/#/activity`);
    await page.waitForSelector('#activity-value');
    await page.click('#activity-value');
    await page.keyboard.type('bob@contoso');
    await redrawn(() => call(s.url, 'POST', '/phasewise/fleet/resume', {}));
    assert.equal(await page.inputValue('#activity-value'), 'bob@contoso', 'the draft is kept until Apply');
  });
});
