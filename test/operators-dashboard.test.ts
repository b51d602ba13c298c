/**
 * The dashboard in a real Chromium against a real server running examples/background-faults.yaml (a
 * good release whose canary set is held by a background health episode): sign in, open the running
 * rollout, see its phases and a gate decision with its observed value and limit, pause it from the
 * page and see the engine hold it (no batch while the episode ends and long after), resume it, then
 * withdraw the version with rollback from the fleet page and watch, without reloading, the machines
 * return. Screenshots go to test-output/dashboard/.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { EngineEvent } from '../src/model/events.js';
import { call, eventually, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { launchChromium, SCREENSHOTS } from './helpers/browser.js';

const HOLD_KEY = 'extension:contoso.telemetry.collector@4.2.1.0';

async function events(s: TestServer, after = 0): Promise<EngineEvent[]> {
  const out: EngineEvent[] = [];
  for (;;) {
    const r = await call(s.url, 'GET', `/phasewise/events?after=${after}&limit=1000`);
    out.push(...(r.body.value as EngineEvent[]));
    if (!r.body.nextLink) return out;
    after = r.body.lastSeq;
  }
}

describe('dashboard in Chromium', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  /** Waits for the notice a control leaves (the next refresh of the page takes it away). */
  const flashed = (text: string) => page.waitForFunction((t) => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } })
    .document.getElementById('flash')?.textContent === t, text);
  before(async () => {
    // Slower than the other API tests: a browser shares the cores, and a 5-minute health wait must stay longer than a stall.
    s = await startTestServer({ scenario: 'examples/background-faults.yaml', subscriptions: [], clockFactor: 600 });
    browser = await launchChromium();
    page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1300, height: 900 } })).newPage();
  });
  after(async () => {
    await browser?.close();
    await s?.stop();
  });

  test('sign in: a wrong token is refused, the right one shows the fleet', async () => {
    await page.goto(`${s.url}/`);
    await page.fill('#token', 'not-a-token-of-this-server');
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#signin-error:not([hidden])');
    assert.match(await page.textContent('#signin-error') ?? '', /does not know this token/);
    await page.fill('#token', TEST_TOKEN);
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('[data-artifact="extension:contoso.telemetry.collector"]');
    assert.match(await page.textContent('main') ?? '', /140 machines/);
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet.png'), fullPage: true });
  });

  test('a running rollout: phases on a timeline and a gate decision with its observed value and limit', async () => {
    await eventually(async () => (await events(s)).some((e) => e.type === 'gate.breached' || e.type === 'gate.held'), 60_000, 'a gate decision');
    await page.click('#nav a[href="#/rollouts"]');
    await page.waitForSelector('#rollouts a[href="#/rollouts/ro-1"]');
    await page.click('#rollouts a[href="#/rollouts/ro-1"]');
    await page.waitForSelector('#phases');
    assert.equal(await page.getAttribute('#rollout-status [data-status]', 'data-status'), 'running');
    assert.equal(await page.locator('#timeline rect[data-phase]').count(), 2);
    // The timeline and the table agree (a set stopped by R24 lets its phase complete without it).
    const table = await page.locator('#phases tbody tr td:nth-child(3)').allTextContents();
    assert.equal(await page.getAttribute('#timeline rect[data-phase="0"]', 'data-status'), table[0]);
    assert.equal(await page.getAttribute('#timeline rect[data-phase="1"]', 'data-status'), table[1]);
    assert.ok(['running', 'completed'].includes(table[0]!), table.join(', '));
    const gate = page.locator('#gates tbody tr').first();
    const cells = await gate.locator('td').allTextContents();
    assert.match(cells[2]!, /^maxUnhealthy(Upgraded)?InstancePercent$/);
    assert.match(cells[3]!, /^\d+(\.\d+)?$/, 'observed');
    assert.equal(cells[4], '20', 'limit');
    assert.match(cells[5]!, /orders/);
    // The chart counts the rollout's successes per time bucket, cumulated: a batch of 10 at least.
    const upgraded = Number(/^(\d+) upgraded/.exec(await page.locator('#chart text').first().textContent() ?? '')?.[1]);
    assert.ok(upgraded >= 5, `chart says ${upgraded} upgraded`);
    await page.screenshot({ path: join(SCREENSHOTS, 'rollout-gate.png'), fullPage: true });
  });

  test('pause from the page: the engine holds the release, no batch starts; resume starts them again', async () => {
    await page.click('#pause');
    await page.fill('#confirm-reason', 'checking the orders set');
    await page.click('#confirm-yes');
    await page.waitForSelector('#rollout-held');
    assert.match(await page.textContent('#rollout-held') ?? '', /release held: paused by alice@contoso\.com: checking the orders set/);
    const hold = s.runtime.engine.state.releases.get(HOLD_KEY)?.hold;
    assert.equal(hold?.kind, 'operator');
    const pausedAt = (await events(s)).find((e) => e.type === 'rollout.paused')!.seq;
    // The episode ends at PT4H10M; without the pause the set's next batch would start at the next hourly look.
    const end = Date.parse('2026-06-01T06:00:00Z');
    await eventually(async () => s.runtime.clock.now() > end, 30_000, 'simulated 06:00');
    assert.deepEqual((await events(s, pausedAt)).filter((e) => e.type === 'batch.started'), []);
    await page.screenshot({ path: join(SCREENSHOTS, 'rollout-paused.png'), fullPage: true });
    // The resume asks for a reason too (optional), and the engine logs it (the button used to send none).
    await page.click('#resume');
    assert.equal(await page.inputValue('#confirm-reason'), '', 'the pause\'s reason is not offered again');
    await page.fill('#confirm-reason', 'orders set checked');
    await page.click('#confirm-yes');
    await eventually(async () => (await events(s, pausedAt)).some((e) => e.type === 'batch.started'), 30_000, 'a batch after resume');
    await page.waitForSelector('#rollout-held', { state: 'detached' });
    const resumed = (await events(s, pausedAt)).find((e) => e.type === 'rollout.resumed') as { reason: string } | undefined;
    assert.match(resumed?.reason ?? '', /^resumed by alice@contoso\.com: orders set checked/);
  });

  test('the fleet-wide stop from the fleet page, and its end with a reason', async () => {
    await page.click('#nav a[href="#/fleet"]');
    await page.click('#fleet-pause');
    await page.fill('#confirm-reason', 'change freeze');
    await page.click('#confirm-yes');
    await page.waitForSelector('#fleet-stop');
    assert.match(await page.textContent('#fleet-stop') ?? '', /by alice@contoso\.com: change freeze$/);
    const stoppedAt = (await events(s)).at(-1)!.seq;
    await page.click('#fleet-resume');
    await page.fill('#confirm-reason', 'freeze over');
    await page.click('#confirm-yes');
    await flashed('The fleet-wide stop by alice@contoso.com has ended.');
    await page.waitForSelector('#fleet-stop', { state: 'detached' });
    const resumed = (await events(s, stoppedAt)).filter((e) => e.type === 'rollout.resumed') as Array<{ reason: string }>;
    assert.ok(resumed.some((e) => /^resumed by alice@contoso\.com: freeze over/.test(e.reason)), JSON.stringify(resumed));
    // Again, with no stop in effect: the page says nothing was ended (it said "Done").
    await page.click('#fleet-resume');
    await page.click('#confirm-yes');
    await flashed('No fleet-wide stop was in effect: nothing was ended.');
  });

  test('withdraw with rollback from the fleet page; the machines return while the page watches', async () => {
    await eventually(async () => (await call(s.url, 'GET', '/phasewise/rollouts/ro-1')).body.phases[0].status === 'completed', 60_000, 'the canary phase');
    await page.click('#nav a[href="#/fleet"]');
    await page.waitForSelector('[data-withdraw="4.2.1.0"]');
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet-before-withdraw.png'), fullPage: true });
    await page.click('[data-withdraw="4.2.1.0"]');
    await page.check('#confirm-rollback');
    await page.fill('#confirm-reason', 'bad build');
    await page.click('#confirm-yes');
    await page.waitForSelector('#held');
    assert.match(await page.textContent('#held') ?? '', /Contoso\.Telemetry\.Collector 4\.2\.1\.0\s*withdrawn/);
    // No reload from here: the live stream refreshes the page as the rollback rollout runs.
    const rows = page.locator('[data-artifact="extension:contoso.telemetry.collector"] table.versions tbody tr');
    await page.waitForFunction(() => {
      const d = (globalThis as unknown as { document: { querySelectorAll(q: string): ArrayLike<{ textContent: string | null }> } }).document;
      const trs = Array.from(d.querySelectorAll('[data-artifact="extension:contoso.telemetry.collector"] table.versions tbody tr'));
      return trs.length === 1 && (trs[0]!.textContent ?? '').startsWith('4.2.0.0140');
    }, undefined, { timeout: 60_000 }).catch(async (err: Error) => {
      const versions = new Map<string, number>();
      for (const i of s.runtime.engine.state.fleet.instances.get('extension:contoso.telemetry.collector')!.values()) versions.set(i.installedVersion, (versions.get(i.installedVersion) ?? 0) + 1);
      const rs = [...s.runtime.engine.state.rollouts.values()].map((r) => `${r.id} ${r.toVersion} ${r.status} ${r.reason}`);
      assert.fail(`${err.message}\npage: ${(await rows.allTextContents()).join(' | ')}\nengine: ${JSON.stringify([...versions])}\n${rs.join('\n')}`);
    });
    assert.equal(await rows.count(), 1);
    const fleet = s.runtime.engine.state.fleet.instances.get('extension:contoso.telemetry.collector')!;
    assert.ok([...fleet.values()].every((i) => i.installedVersion === '4.2.0.0'));
    await page.screenshot({ path: join(SCREENSHOTS, 'fleet-after-rollback.png'), fullPage: true });
    await page.click('#nav a[href="#/rollouts"]');
    await page.waitForSelector('#rollouts a[href="#/rollouts/ro-2"]');
    await page.click('#rollouts a[href="#/rollouts/ro-2"]');
    await page.waitForSelector('#phases');
    assert.equal(await page.getAttribute('#rollout-status [data-status]', 'data-status'), 'completed');
    await page.screenshot({ path: join(SCREENSHOTS, 'rollback-rollout.png'), fullPage: true });
  });

  test('a machine, the activity log with a filter, maintenance configurations', async () => {
    await page.goto(`${s.url}/#/machines/${encodeURIComponent('orders/0')}`);
    await page.waitForSelector('#history');
    assert.match(await page.textContent('#extensions') ?? '', /Contoso\.Telemetry\.Collector\s*4\.2\.0\.0/);
    assert.ok(await page.locator('#history tbody tr').count() >= 2);
    await page.screenshot({ path: join(SCREENSHOTS, 'machine.png'), fullPage: true });
    await page.goto(`${s.url}/#/activity`);
    await page.waitForSelector('#activity');
    await page.selectOption('#activity-field', 'caller');
    await page.fill('#activity-value', 'alice@contoso.com');
    await page.click('#activity-apply');
    await page.waitForFunction(() => (globalThis as unknown as { location: { hash: string } }).location.hash.includes('field=caller'));
    await page.waitForSelector('#activity tbody tr');
    const ops = await page.locator('#activity tbody tr td:nth-child(2)').allTextContents();
    assert.ok(ops.includes('Withdraw Version'), ops.join(', '));
    assert.deepEqual(new Set(await page.locator('#activity tbody tr td:nth-child(4)').allTextContents()), new Set(['alice@contoso.com']));
    await page.screenshot({ path: join(SCREENSHOTS, 'activity.png'), fullPage: true });
    await page.goto(`${s.url}/#/maintenance`);
    await page.waitForSelector('main h1');
    assert.match(await page.textContent('main') ?? '', /Maintenance configurations/);
  });
});
