/**
 * bench:dashboard — the dashboard's fleet and rollout pages for a 1,000,000-machine fleet on SQLite,
 * in Debian's Chromium (playwright-core): time from navigation to the page's `load` event and to its
 * data shown (target ≤ 2 s each). A real `phasewise serve` process runs the benchmark fleet (bench/fleet.ts)
 * with its SQLite store at 60× real time; the release is published a minute in, so the pages are measured
 * while its rollout runs. Each page is opened `--runs=N` times (default 5) in a fresh tab; the figures are
 * the median and the worst. `--machines=N` a smaller fleet.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { benchScenarioSpec, TARGET_MACHINES } from './fleet.js';
import { machineLine, median } from './machine.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const machines = Number(arg('machines') ?? TARGET_MACHINES);
const runs = Number(arg('runs') ?? 5);
const TOKEN = 'bench-dashboard-token-0123456789';
const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.js');
const TARGET_MS = 2000;

function getJson(url: string, ca: Buffer): Promise<{ status: number; body: unknown; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${TOKEN}` }, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), ms: performance.now() - t0 }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 60 s`)));
    req.end();
  });
}

/** Starts `phasewise serve` and resolves its URL and certificate once it listens. */
function startServe(dir: string, config: string): Promise<{ child: ChildProcess; url: string; cert: Buffer; startMs: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--max-old-space-size=4096', CLI, 'serve', '--config', config], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start within 10 minutes:\n${err.slice(-2000)}`)), 600_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      err += d;
      const url = /serving the ARM API at (\S+)/.exec(err)?.[1];
      const cert = /certificate: (\S+)/.exec(err)?.[1];
      if (url && cert) {
        clearTimeout(timer);
        child.stderr!.removeAllListeners('data');
        child.stderr!.resume();
        resolve({ child, url, cert: readFileSync(cert), startMs: performance.now() - t0 });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code}):\n${err.slice(-2000)}`));
    });
  });
}

interface PageTimes { loadMs: number; dataMs: number }

/** One visit in a fresh tab: navigation start to `load`, and to the view's data in the page. */
async function visit(browser: Browser, url: string, selector: string): Promise<PageTimes> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1300, height: 900 } });
  try {
    await context.addInitScript(`sessionStorage.setItem('phasewise-token', ${JSON.stringify(TOKEN)})`);
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'load', timeout: 120_000 });
    await page.waitForSelector(selector, { timeout: 120_000 });
    // Both are measured inside the page from its navigation start, so the driver's round trips do not count.
    const dataMs = await page.evaluate<number>('performance.now()');
    const loadMs = await page.evaluate<number>("performance.getEntriesByType('navigation')[0].loadEventEnd");
    return { loadMs, dataMs };
  } finally {
    await context.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'phasewise-bench-dashboard-'));
let server: ChildProcess | null = null;
let browser: Browser | null = null;
try {
  console.log(`bench:dashboard — the fleet and rollout pages in Chromium, ${machines.toLocaleString('en')} machines on SQLite`);
  console.log(`machine: ${machineLine()}`);
  const spec = benchScenarioSpec(machines, 0.02);
  // The release a minute in: at 60× real time its rollout starts a second after the server.
  spec.events = [{ at: 'PT1M', publish: { extension: 'agent', version: '1.5.0.0' } }];
  writeFileSync(join(dir, 'fleet.json'), JSON.stringify(spec));
  writeFileSync(join(dir, 'phasewise.yaml'), [
    'host: 127.0.0.1', 'port: 0', `dataDir: ${join(dir, 'data')}`, `scenario: ${join(dir, 'fleet.json')}`, 'clockFactor: 60', 'logLevel: warn',
    'tokens:', `  - { token: ${TOKEN}, name: bench, roles: [reader, contributor, publisher] }`, '',
  ].join('\n'));
  const s = await startServe(dir, join(dir, 'phasewise.yaml'));
  server = s.child;
  const dbBytes = statSync(join(dir, 'data', 'phasewise.sqlite')).size;
  console.log(`serve: listening ${(s.startMs / 1000).toFixed(1)} s after it started (fleet generated and imported into a new SQLite file of ${(dbBytes / 2 ** 20).toFixed(0)} MiB, then loaded; not counted)`);

  // Wait for the rollout to run its first batches.
  let rolloutId = '';
  for (let i = 0; i < 600; i++) {
    const r = await getJson(`${s.url}/phasewise/rollouts`, s.cert);
    const first = (r.body as { value: Array<{ id: string; status: string; counts: { upgraded: number; eligible: number } }> }).value[0];
    if (first && first.counts.upgraded > 0) {
      rolloutId = first.id;
      console.log(`rollout: ${first.id} ${first.status}, ${first.counts.upgraded.toLocaleString('en')} of ${first.counts.eligible.toLocaleString('en')} upgraded when the measurements start`);
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (!rolloutId) throw new Error('no rollout upgraded a machine within 10 minutes');

  // The views alone, as the page calls them (server time plus transfer).
  for (const path of ['/phasewise/fleet', `/phasewise/dashboard/rollouts/${rolloutId}?unitSkip=0&unitTop=50`]) {
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      const r = await getJson(`${s.url}${path}`, s.cert);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
      bytes = JSON.stringify(r.body).length;
      ms.push(r.ms);
    }
    console.log(`view GET ${path.split('?')[0]}: median ${median(ms).toFixed(0)} ms, worst ${Math.max(...ms).toFixed(0)} ms (${(bytes / 1024).toFixed(0)} KiB)`);
  }

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 60_000,
  });
  console.log(`browser: Chromium ${browser.version()}`);
  let bad = false;
  for (const [name, hash, selector] of [
    ['fleet', '#/fleet', '[data-artifact] table.versions'],
    ['rollout', `#/rollouts/${encodeURIComponent(rolloutId)}`, '#phases'],
  ] as const) {
    await visit(browser, `${s.url}/${hash}`, selector); // a first visit warms the browser's cache of the page's files
    const times: PageTimes[] = [];
    for (let i = 0; i < runs; i++) times.push(await visit(browser, `${s.url}/${hash}`, selector));
    const load = times.map((t) => t.loadMs);
    const data = times.map((t) => t.dataMs);
    if (Math.max(...load) > TARGET_MS || Math.max(...data) > TARGET_MS) bad = true;
    console.log(`${name} page: load event median ${median(load).toFixed(0)} ms (worst ${Math.max(...load).toFixed(0)}); data shown median ${median(data).toFixed(0)} ms`
      + ` (worst ${Math.max(...data).toFixed(0)}) over ${runs} visits; target ≤ ${TARGET_MS} ms each`);
  }
  if (bad) process.exitCode = 1;
} finally {
  await browser?.close();
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (server.exitCode === null) server.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}
