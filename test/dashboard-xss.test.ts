/**
 * Stored and reflected XSS against the dashboard in a real Chromium: markup, `javascript:` URLs, long
 * strings and right-to-left text go through the real API into every free-text field the pages show
 * (pause, cancel and withdraw reasons, a release's hold, the caller a token names in the event and
 * activity logs), and crafted addresses (#/rollouts/<markup>, #/activity?value=…, a paging link to
 * another origin) are opened. Nothing may run (window.__pwned stays undefined, no dialog opens), nothing
 * may even try (no Content-Security-Policy violation), no request leaves the server's origin, and the
 * payloads appear on the pages as text.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { call, eventually, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { launchChromium } from './helpers/browser.js';

const AGENT = '/phasewise/publishers/Contoso.Monitoring/extensionTypes/Agent';
const EVIL_TOKEN = 'test-token-evil-name-0123456789abcd';
const EVIL_CALLER = `<img src=x onerror="window.__pwned='caller'">`;
const PAYLOADS = {
  pause: `<script>window.__pwned='pause'</script>`,
  cancel: `"><img src=x onerror="window.__pwned='cancel';alert(1)">`,
  withdraw: `javascript:window.__pwned='withdraw' <svg onload="window.__pwned='svg'"></svg> שלום עולם`,
  hold: `<iframe srcdoc="<script>parent.__pwned='hold'</script>"></iframe>${'W'.repeat(900)}`,
};

describe('dashboard: stored and reflected XSS in Chromium', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  const foreign: string[] = [];

  before(async () => {
    s = await startTestServer({
      scenario: 'examples/small.yaml', subscriptions: [],
      tokens: [
        { token: TEST_TOKEN, name: 'alice@contoso.com', roles: ['reader', 'contributor', 'publisher'] },
        { token: EVIL_TOKEN, name: EVIL_CALLER, roles: ['reader', 'contributor', 'publisher'] },
      ],
    });
    browser = await launchChromium();
    page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1300, height: 900 } })).newPage();
    page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
    page.on('request', (r) => { if (!r.url().startsWith(s.url)) foreign.push(r.url()); });
    await page.addInitScript(() => {
      // The browser's globals (this file is compiled without the DOM's types).
      type Violation = { violatedDirective: string; blockedURI: string };
      const w = globalThis as unknown as { __violations: string[]; document: { addEventListener(t: string, f: (e: Violation) => void): void } };
      w.__violations = [];
      w.document.addEventListener('securitypolicyviolation', (e) => w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  /** Nothing ran, nothing tried to, nothing left the origin. */
  async function assertClean(where: string): Promise<void> {
    const state = await page.evaluate(() => {
      const w = globalThis as unknown as { __pwned?: unknown; __violations: string[] };
      return { pwned: w.__pwned, violations: w.__violations };
    });
    assert.equal(state.pwned, undefined, `${where}: a payload ran`);
    assert.deepEqual(state.violations, [], `${where}: the CSP had to stop something`);
    assert.deepEqual(dialogs, [], `${where}: a dialog opened`);
    assert.deepEqual(foreign, [], `${where}: a request left the origin`);
  }

  /** Opens a view by its address and waits until it is drawn (or its error is). */
  async function show(hash: string, selector: string): Promise<string> {
    type Dom = { location: { hash: string }; document: { getElementById(id: string): { dataset: Record<string, string> } | null } };
    const before = await page.evaluate(() => (globalThis as unknown as Dom).document.getElementById('main')?.dataset.loaded ?? '');
    await page.evaluate((h) => { (globalThis as unknown as Dom).location.hash = h; }, hash);
    await page.waitForFunction((b) => {
      const d = (globalThis as unknown as Dom).document;
      return (d.getElementById('main')?.dataset.loaded ?? '') !== b || d.getElementById('view-error') !== null;
    }, before);
    await page.waitForSelector(selector);
    return (await page.textContent('main')) ?? '';
  }

  test('payloads stored through the API show as text on every page and run nowhere', async () => {
    await eventually(async () => (await call(s.url, 'GET', '/phasewise/rollouts/ro-1')).body?.status === 'running', 30_000, 'the rollout');
    const ok = async (r: Promise<{ status: number; body: unknown }>) => {
      const x = await r;
      assert.equal(x.status, 200, JSON.stringify(x.body));
    };
    await ok(call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', { reason: PAYLOADS.pause }, EVIL_TOKEN));
    // A newer version's rollout, cancelled with a payload; the first version withdrawn with another.
    const pub = await call(s.url, 'PUT', `${AGENT}/versions/1.4.2.0`, { os: ['linux', 'windows'] });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    const second = pub.body.rolloutId as string;
    await ok(call(s.url, 'POST', `/phasewise/rollouts/${second}/cancel`, { reason: PAYLOADS.cancel }, EVIL_TOKEN));
    await ok(call(s.url, 'POST', `${AGENT}/versions/1.4.1.0/withdraw`, { reason: PAYLOADS.withdraw, rollback: true }, EVIL_TOKEN));
    await ok(call(s.url, 'POST', '/phasewise/releases/Contoso.Monitoring/Agent/versions/1.4.2.0/hold', { reason: PAYLOADS.hold }, EVIL_TOKEN));

    await page.goto(`${s.url}/`);
    await page.fill('#token', TEST_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#held');
    let text = (await page.textContent('main')) ?? '';
    assert.ok(text.includes(PAYLOADS.withdraw), 'the fleet page shows the withdrawal reason as text');
    assert.ok(text.includes(PAYLOADS.hold), 'and the hold\'s');
    await assertClean('fleet');
    // The 900-character word of the hold's reason wraps: the page does not grow wider than the window.
    type Sizes = { document: { documentElement: { scrollWidth: number } }; innerWidth: number };
    const wide = await page.evaluate(() => { const g = globalThis as unknown as Sizes; return [g.document.documentElement.scrollWidth, g.innerWidth]; });
    assert.ok(wide[0]! <= wide[1]!, `the page is ${wide[0]} px wide in a ${wide[1]} px window`);

    text = await show('#/rollouts/ro-1', '#rollout-status');
    assert.ok(text.includes(PAYLOADS.withdraw), text.slice(0, 300));
    await assertClean('rollout ro-1');
    text = await show(`#/rollouts/${second}`, '#rollout-status');
    assert.ok(text.includes(PAYLOADS.cancel), text.slice(0, 300));
    await assertClean(`rollout ${second}`);
    await show('#/rollouts', '#rollouts');
    await assertClean('rollouts');

    const machine = [...s.runtime.engine.state.fleet.machines.keys()][0]!;
    await show(`#/machines/${encodeURIComponent(machine)}`, '#history');
    await assertClean('machine');

    text = await show(`#/activity?${new URLSearchParams({ field: 'caller', value: EVIL_CALLER })}`, '#activity');
    assert.ok(text.includes(EVIL_CALLER), 'the activity log shows the caller as text');
    assert.equal(await page.locator('#activity tbody tr').count() > 0, true);
    assert.equal(await page.locator('#activity img, main img, main script, main iframe').count(), 0, 'no element came from a payload');
    await assertClean('activity');
    await show('#/maintenance', 'main .card');
    await assertClean('maintenance');
  });

  test('crafted addresses: markup in ids and filters stays text; a paging link to another origin gets no token', async () => {
    for (const hash of [
      `#/rollouts/${encodeURIComponent(`<img src=x onerror="window.__pwned='id'">`)}`,
      `#/machines/${encodeURIComponent(`"><svg onload="window.__pwned='machine'">`)}`,
      `#/rollouts?${new URLSearchParams({ page: 'https://evil.invalid/steal?x=1' })}`,
      `#/rollouts?${new URLSearchParams({ page: '//evil.invalid/steal' })}`,
      `#/activity?${new URLSearchParams({ page: 'javascript:window.__pwned="page"' })}`,
      `#/activity?${new URLSearchParams({ field: `caller eq 'x' or 1`, value: `'"><script>window.__pwned='value'</script>` })}`,
    ]) {
      await show(hash, 'main .card');
      await assertClean(hash);
    }
    // The filter field is one of those offered, whatever the address says.
    assert.equal(await page.inputValue('#activity-field'), '');
  });
});
