/**
 * bench:api — the ARM API under load: an extension GET (with its instance view) and an extension PUT
 * over HTTPS with keep-alive, against a server of a few hundred VMs with one extension each.
 *
 * For each request, on one set of keep-alive connections after a 2 s warm-up: the maximum rate with a
 * fixed number of connections, each sending its next request when the last one is answered (closed
 * loop, ~10 s); then an open-loop load at 80% of that rate for ~15 s (after a 1 s lead-in), requests
 * sent on a fixed schedule whether or not earlier ones were answered, and latency measured from when
 * each request was due (so a stalled server cannot hide its queue). Targets: p99 ≤ 100 ms for the GET
 * and ≤ 250 ms for the PUT at 80% of the measured maximum. Each phase also prints how busy the server's
 * and the client's event loops were, their longest stall, and the machine's CPU use (/proc/stat), which
 * say whether a miss was the server's, the client's or the machine's doing.
 *
 * The server runs in this process on its main thread (clock factor 1, logging off, SQLite with its
 * default synchronous=FULL); the load comes from a worker thread of the same process, so client and
 * server share the machine's cores. The fleet is created through the API on a fast clock, so the
 * installs finish in seconds; the server is then restarted on the same database in real time.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import type { RunningServer } from '../src/server/serve.js';
import { machineLine } from './machine.js';

const VMS = Number(process.env.BENCH_API_VMS ?? 300);
const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 16);
const FRACTION = Number(process.env.BENCH_API_FRACTION ?? 0.8);
const CLOSED_S = Number(process.env.BENCH_API_CLOSED_S ?? 10);
const OPEN_S = Number(process.env.BENCH_API_OPEN_S ?? 15);
const TOKEN = 'bench-token-0123456789abcdef0123';
const API = 'api-version=2026-03-01';
const RGP = '/subscriptions/sub1/resourceGroups/rg1';
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const CERT = fileURLToPath(new URL('../../test/fixtures/tls/cert.pem', import.meta.url));
const KEY = fileURLToPath(new URL('../../test/fixtures/tls/key.pem', import.meta.url));

type Kind = 'GET' | 'PUT';
interface Phase { clientBusy: number; serverBusy: number; clientStallMs: number; serverStallMs: number; cpu: CpuShare | null; requests: number; errors: number; seconds: number; rate: number; p50: number; p99: number; max: number; firstError: string | null }
interface WorkerIn { url: string; kind: Kind; connections: number; vms: number; warmS: number; closedS: number; openS: number; fraction: number }
type WorkerMessage = { mark: 'start' | 'end' } | { result: Omit<Phase, 'serverBusy' | 'serverStallMs' | 'cpu'> };

/** How the machine's CPUs were used during a phase: by this process (server and client), by everything else, and stolen by the hypervisor. */
interface CpuShare { self: number; others: number; steal: number }

/** Linux /proc/stat totals in clock ticks (USER_HZ, 100 per second): busy, steal, all. */
function machineTicks(): { busy: number; steal: number; all: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    return { busy: user + nice + system + irq + softirq, steal, all: user + nice + system + idle + iowait + irq + softirq + steal };
  } catch {
    return null;
  }
}

function cpuMeter(): () => CpuShare | null {
  const t0 = machineTicks();
  const p0 = process.cpuUsage();
  return () => {
    const t1 = machineTicks();
    if (!t0 || !t1 || t1.all === t0.all) return null;
    const p = process.cpuUsage(p0);
    const all = t1.all - t0.all;
    const self = Math.min(1, (p.user + p.system) / 1e4 / all);
    return { self, others: Math.max(0, (t1.busy - t0.busy) / all - self), steal: (t1.steal - t0.steal) / all };
  };
}

const extensionPath = (i: number) => `${RGP}/providers/Microsoft.Compute/virtualMachines/vm${i}/extensions/ama`;

// ---- the load generator (worker thread) ----------------------------------------------------------

/**
 * One request kind, from one set of keep-alive connections: a warm-up, the closed loop, then the open
 * loop at `fraction` of the closed loop's rate (its first second a lead-in that is not measured).
 */
async function session(w: WorkerIn): Promise<void> {
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  const url = new URL(w.url);
  const agent = new https.Agent({ keepAlive: true, maxSockets: w.connections, ca: readFileSync(CERT) });
  const enabled = new Array<boolean>(w.vms).fill(false);
  let next = 0;
  let measureFrom = Number.POSITIVE_INFINITY;
  let latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  let lastDone = 0;

  const one = (dueAt: number): Promise<void> => {
    const i = next++ % w.vms;
    let body: string | undefined;
    if (w.kind === 'PUT') {
      enabled[i] = !enabled[i];
      body = JSON.stringify({ location: 'westus', properties: { ...AMA, typeHandlerVersion: '1.30', enableAutomaticUpgrade: enabled[i] } });
    }
    const path = w.kind === 'GET' ? `${extensionPath(i)}?$expand=instanceView&${API}` : `${extensionPath(i)}?${API}`;
    const measured = dueAt >= measureFrom;
    return new Promise((resolve) => {
      const done = (failure: string | null) => {
        if (measured) {
          lastDone = performance.now();
          if (failure === null) latencies.push(lastDone - dueAt);
          else {
            errors++;
            firstError ??= failure;
          }
        }
        resolve();
      };
      const req = https.request({
        host: url.hostname, port: url.port, path, method: w.kind, agent,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(res.statusCode === 200 ? null : `${w.kind} ${path} → ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`));
        res.on('error', (e) => done(String(e)));
      });
      req.on('error', (e) => done(String(e)));
      req.end(body);
    });
  };

  const closed = async (seconds: number) => {
    const end = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: w.connections }, async () => {
      while (performance.now() < end) await one(performance.now());
    }));
  };
  /** Requests on a fixed schedule, whether or not earlier ones were answered; latency counts from when each was due. */
  const open = async (rate: number, seconds: number) => {
    const interval = 1000 / rate;
    const inFlight = new Set<Promise<void>>();
    let due = performance.now();
    const end = due + seconds * 1000;
    while (due < end) {
      const now = performance.now();
      while (due <= now && due < end) {
        const p = one(due);
        inFlight.add(p);
        void p.then(() => inFlight.delete(p));
        due += interval;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inFlight);
  };
  const measure = async (run: () => Promise<void>, from: number) => {
    latencies = [];
    errors = 0;
    firstError = null;
    measureFrom = from;
    post({ mark: 'start' });
    const elu = performance.eventLoopUtilization();
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    await run();
    delay.disable();
    const clientBusy = performance.eventLoopUtilization(elu).utilization;
    post({ mark: 'end' });
    measureFrom = Number.POSITIVE_INFINITY;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
    const seconds = (lastDone - from) / 1000;
    const result = { clientBusy, clientStallMs: delay.max / 1e6, requests: latencies.length + errors, errors, seconds, rate: latencies.length / seconds, p50: pct(0.5), p99: pct(0.99), max: latencies[latencies.length - 1] ?? Number.NaN, firstError };
    post({ result });
    return result;
  };

  await closed(w.warmS); // TLS sessions, JIT on both sides, SQLite's page cache
  const max = await measure(() => closed(w.closedS), performance.now());
  const rate = w.fraction * max.rate;
  const leadIn = Math.min(1, w.openS / 10);
  await measure(() => open(rate, leadIn + w.openS), performance.now() + leadIn * 1000);
  agent.destroy();
}

// ---- the server and the procedure (main thread) ----------------------------------------------------

/** Runs one kind's session in a worker thread; `serverBusy` is the share of each phase the server's event loop was busy. */
function runSession(w: WorkerIn): Promise<Phase[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: w });
    const phases: Phase[] = [];
    let elu = performance.eventLoopUtilization();
    const delay = monitorEventLoopDelay({ resolution: 5 });
    let serverBusy = 0;
    let cpu: () => CpuShare | null = () => null;
    let share: CpuShare | null = null;
    worker.on('message', (m: WorkerMessage) => {
      if ('mark' in m) {
        if (m.mark === 'start') {
          elu = performance.eventLoopUtilization();
          delay.reset();
          delay.enable();
          cpu = cpuMeter();
        } else {
          serverBusy = performance.eventLoopUtilization(elu).utilization;
          delay.disable();
          share = cpu();
        }
      } else {
        phases.push({ ...m.result, serverBusy, serverStallMs: delay.max / 1e6, cpu: share });
      }
    });
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve(phases) : reject(new Error(`load worker exited with ${code}`))));
  });
}

function serverConfig(dataDir: string, clockFactor: number) {
  return configSchema.parse({
    host: '127.0.0.1', port: 0, dataDir, logLevel: 'silent', retryAfterSeconds: 0, clockFactor, subscriptions: ['sub1'],
    tls: { cert: CERT, key: KEY }, tokens: [{ token: TOKEN, name: 'bench@contoso.com', roles: ['reader', 'contributor', 'publisher'] }],
  });
}

async function api(s: RunningServer, method: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${s.url.replace('127.0.0.1', 'localhost')}${path}`, {
    method, headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 300)}`);
}

/** The fleet, through the API, on a fast clock: VMS VMs with the extension installed. */
async function seed(dataDir: string): Promise<number> {
  const t0 = performance.now();
  const s = await startServer(serverConfig(dataDir, 20_000));
  try {
    await api(s, 'PUT', `/subscriptions/sub1/resourcegroups/rg1?${API}`, { location: 'westus' });
    await api(s, 'PUT', `/phasewise/publishers/${AMA.publisher}/extensionTypes/${AMA.type}`, { supportsAutomaticUpgrade: true });
    await api(s, 'PUT', `/phasewise/publishers/${AMA.publisher}/extensionTypes/${AMA.type}/versions/1.30.0.0`, { os: ['linux'] });
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let i = next++; i < VMS; i = next++) {
        await api(s, 'PUT', `${RGP}/providers/Microsoft.Compute/virtualMachines/vm${i}?${API}`, { location: 'westus' });
        await api(s, 'PUT', `${extensionPath(i)}?${API}`, { location: 'westus', properties: { ...AMA, typeHandlerVersion: '1.30', settings: { workspace: `w${i % 7}` } } });
      }
    }));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const all = [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]);
      if (all.length === VMS && all.every((x) => x.status === 'Succeeded')) break;
      if (Date.now() > deadline) throw new Error('the seeded extensions were not installed within 2 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await s.close();
  }
  return (performance.now() - t0) / 1000;
}

const ms = (x: number) => (x < 10 ? x.toFixed(1) : x.toFixed(0));
const pc = (x: number) => `${Math.round(100 * x)}%`;
const cpuText = (c: CpuShare | null) => (c ? ` · machine CPU: this process ${pc(c.self)}, other processes ${pc(c.others)}, stolen ${pc(c.steal)}` : '');
const n = (x: number) => Math.round(x).toLocaleString('en');

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-bench-api-'));
  try {
    console.log('bench:api — extension GET and PUT over HTTPS with keep-alive');
    console.log(`machine: ${machineLine()}`);
    const seedS = await seed(dir);
    const s = await startServer(serverConfig(dir, 1));
    try {
      const url = s.url.replace('127.0.0.1', 'localhost');
      const sync = process.env.PHASEWISE_SQLITE_SYNC === 'NORMAL' ? 'NORMAL' : 'FULL';
      console.log(`server: ${VMS} VMs with one extension each (created through the API in ${seedS.toFixed(1)} s, not counted), SQLite synchronous=${sync}, clock factor 1, logging off`);
      console.log(`client: a worker thread of the same process (client and server share the cores); closed loop ${CONNECTIONS} connections × ${CLOSED_S} s, then open loop at ${pc(FRACTION)} of that × ${OPEN_S} s`);
      const targets: Record<Kind, number> = { GET: 100, PUT: 250 };
      const what: Record<Kind, string> = {
        GET: `GET …/virtualMachines/{vm}/extensions/ama?$expand=instanceView (round robin over ${VMS} VMs)`,
        PUT: 'PUT …/virtualMachines/{vm}/extensions/ama toggling enableAutomaticUpgrade (an engine change, an event and a SQLite commit each)',
      };
      const summary: string[] = [];
      for (const kind of ['GET', 'PUT'] as const) {
        console.log(what[kind]);
        const [max, at] = (await runSession({ url, kind, connections: CONNECTIONS, vms: VMS, warmS: 2, closedS: CLOSED_S, openS: OPEN_S, fraction: FRACTION })) as [Phase, Phase];
        console.log(`  maximum (closed loop, ${CONNECTIONS} connections): ${n(max.rate)} req/s · p50 ${ms(max.p50)} ms · p99 ${ms(max.p99)} ms · ${n(max.requests)} requests · errors ${max.errors} · busy: server ${pc(max.serverBusy)}, client ${pc(max.clientBusy)} · longest stall: server ${ms(max.serverStallMs)} ms, client ${ms(max.clientStallMs)} ms${cpuText(max.cpu)}${max.firstError ? ` (first: ${max.firstError})` : ''}`);
        const rate = FRACTION * max.rate;
        const ok = at.p99 <= targets[kind] && at.errors === 0;
        console.log(`  at ${pc(FRACTION)} (open loop, ${n(rate)} req/s offered): ${n(at.rate)} req/s · p50 ${ms(at.p50)} ms · p99 ${ms(at.p99)} ms · max ${ms(at.max)} ms · ${n(at.requests)} requests · errors ${at.errors} · busy: server ${pc(at.serverBusy)}, client ${pc(at.clientBusy)} · longest stall: server ${ms(at.serverStallMs)} ms, client ${ms(at.clientStallMs)} ms${cpuText(at.cpu)}${at.firstError ? ` (first: ${at.firstError})` : ''} — target p99 ≤ ${targets[kind]} ms: ${ok ? 'met' : 'MISSED'}`);
        summary.push(`${kind} ${ok ? 'met' : 'missed'}`);
      }
      console.log(`targets: ${summary.join(', ')}`);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!isMainThread) await session(workerData as WorkerIn);
else await main();
