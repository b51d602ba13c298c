/**
 * bench:dashboard — the dashboard's fleet and rollout pages for a 1,000,000-machine fleet on SQLite,
 * in Debian's Chromium (playwright-core): time from navigation to the page's `load` event and to its
 * data shown (target ≤ 2 s each). A real `phasewise serve` process runs the benchmark fleet (bench/fleet.ts)
 * with its SQLite store at 60× real time; the release is published a minute in, so the pages are measured
 * while its rollout runs. Each page is opened `--runs=N` times (default 5) in a fresh tab; the figures are
 * the median and the worst; the target is on the median. The same pages for examples/small.yaml (21
 * machines) in the same run are the reference: the ratio tells the fleet's cost from the machine's load.
 * `--machines=N` a smaller fleet.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { parse as parseYaml } from 'yaml';
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
    // Signed in already; the instant the view's data is in the page is noted by the page itself (a mutation
    // observer), so the driver's round trips do not count.
    await context.addInitScript(`sessionStorage.setItem('phasewise-token', ${JSON.stringify(TOKEN)});
      new MutationObserver((_, o) => {
        if (document.querySelector(${JSON.stringify(selector)})) { window.__shownAt = performance.now(); o.disconnect(); }
      }).observe(document, { childList: true, subtree: true });`);
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'load', timeout: 120_000 });
    await page.waitForSelector(selector, { timeout: 120_000 });
    // Both from the page's navigation start.
    const dataMs = await page.evaluate<number>('window.__shownAt');
    const loadMs = await page.evaluate<number>("performance.getEntriesByType('navigation')[0].loadEventEnd");
    return { loadMs, dataMs };
  } finally {
    await context.close();
  }
}

async function stopServe(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

interface Figures { fleetLoad: number[]; fleetData: number[]; rolloutLoad: number[]; rolloutData: number[] }

/** Serves `scenario` (a JSON document) at 60× real time, waits for its rollout's first upgrades, measures both pages. */
async function measure(label: string, scenario: Record<string, unknown>, browser: () => Promise<Browser>): Promise<Figures> {
  const sub = join(dir, label.replace(/\W+/g, '-'));
  mkdirSync(sub);
  writeFileSync(join(sub, 'fleet.json'), JSON.stringify(scenario));
  writeFileSync(join(sub, 'phasewise.yaml'), [
    'host: 127.0.0.1', 'port: 0', `dataDir: ${join(sub, 'data')}`, `scenario: ${join(sub, 'fleet.json')}`, 'clockFactor: 60', 'logLevel: warn',
    'tokens:', `  - { token: ${TOKEN}, name: bench, roles: [reader, contributor, publisher] }`, '',
  ].join('\n'));
  const s = await startServe(sub, join(sub, 'phasewise.yaml'));
  server = s.child;
  try {
    const dbBytes = statSync(join(sub, 'data', 'phasewise.sqlite')).size;
    console.log(`${label}: serve listening ${(s.startMs / 1000).toFixed(1)} s after it started (fleet generated and imported into a new SQLite file of ${(dbBytes / 2 ** 20).toFixed(0)} MiB; not counted)`);
    // Wait for the rollout to run its first batches.
    let rolloutId = '';
    for (let i = 0; i < 600 && !rolloutId; i++) {
      const r = await getJson(`${s.url}/phasewise/rollouts`, s.cert);
      const first = (r.body as { value: Array<{ id: string; status: string; counts: { upgraded: number; eligible: number } }> }).value[0];
      if (first && first.counts.upgraded > 0) {
        rolloutId = first.id;
        console.log(`${label}: rollout ${first.id} ${first.status}, ${first.counts.upgraded.toLocaleString('en')} of ${first.counts.eligible.toLocaleString('en')} upgraded when the measurements start`);
      } else await new Promise((r) => setTimeout(r, 1000));
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
      console.log(`${label}: view GET ${path.split('?')[0]}: median ${median(ms).toFixed(0)} ms, worst ${Math.max(...ms).toFixed(0)} ms (${(bytes / 1024).toFixed(0)} KiB)`);
    }
    const b = await browser();
    const out: Figures = { fleetLoad: [], fleetData: [], rolloutLoad: [], rolloutData: [] };
    for (const [name, hash, selector] of [
      ['fleet', '#/fleet', '[data-artifact] table.versions'],
      ['rollout', `#/rollouts/${encodeURIComponent(rolloutId)}`, '#phases'],
    ] as const) {
      await visit(b, `${s.url}/${hash}`, selector); // not counted: the first visit of a page also pays for Chromium's first TLS session and compilation
      const times: PageTimes[] = [];
      for (let i = 0; i < runs; i++) times.push(await visit(b, `${s.url}/${hash}`, selector));
      const load = times.map((t) => t.loadMs);
      const data = times.map((t) => t.dataMs);
      if (name === 'fleet') Object.assign(out, { fleetLoad: load, fleetData: data });
      else Object.assign(out, { rolloutLoad: load, rolloutData: data });
      console.log(`${label}: ${name} page: load event median ${median(load).toFixed(0)} ms (worst ${Math.max(...load).toFixed(0)}); data shown median ${median(data).toFixed(0)} ms`
        + ` (worst ${Math.max(...data).toFixed(0)}) over ${runs} visits in fresh tabs`);
    }
    return out;
  } finally {
    await stopServe(s.child);
    server = null;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'phasewise-bench-dashboard-'));
let server: ChildProcess | null = null;
let chromiumBrowser: Browser | null = null;
const launch = async () => (chromiumBrowser ??= await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  timeout: 60_000,
}));
try {
  console.log(`bench:dashboard — the fleet and rollout pages in Chromium, ${machines.toLocaleString('en')} machines on SQLite`);
  console.log(`machine: ${machineLine()}`);
  console.log(`load average at the start: ${loadavg().map((x) => x.toFixed(1)).join(', ')} (the machine is shared)`);
  const spec = benchScenarioSpec(machines, 0.02);
  // The release a minute in: at 60× real time its rollout starts a second after the server.
  spec.events = [{ at: 'PT1M', publish: { extension: 'agent', version: '1.5.0.0' } }];
  const big = await measure('1M', spec, launch);
  console.log(`browser: Chromium ${(await launch()).version()}`);
  // Reference in the same run: the same pages for examples/small.yaml (21 machines), to tell the fleet's cost from the machine's.
  const small = parseYaml(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'small.yaml'), 'utf8')) as Record<string, unknown>;
  small.events = [{ at: 'PT1M', publish: { extension: 'agent', version: '1.4.1.0' } }];
  const ref = await measure('21 machines', small, launch);
  let bad = false;
  for (const [name, a, b] of [
    ['fleet page, load event', big.fleetLoad, ref.fleetLoad], ['fleet page, data shown', big.fleetData, ref.fleetData],
    ['rollout page, load event', big.rolloutLoad, ref.rolloutLoad], ['rollout page, data shown', big.rolloutData, ref.rolloutData],
  ] as const) {
    if (median(a) > TARGET_MS) bad = true;
    console.log(`${name}: ${median(a).toFixed(0)} ms at 1M (target ≤ ${TARGET_MS}), ${median(b).toFixed(0)} ms at 21 machines in the same run: ratio ${(median(a) / median(b)).toFixed(2)}`);
  }
  console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(', ')}`);
  if (bad) process.exitCode = 1;
} finally {
  await (chromiumBrowser as Browser | null)?.close();
  if (server) await stopServe(server as ChildProcess);
  rmSync(dir, { recursive: true, force: true });
}
