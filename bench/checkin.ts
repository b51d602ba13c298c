/**
 * bench:checkin — agent check-ins against one real `phasewise serve` (a child process, SQLite with
 * synchronous=FULL, HTTPS with the agents' mTLS certificates, keep-alive), the server pinned to core 0
 * and this load generator to core 1 (taskset; without it both float).
 *
 * AGENTS agents enroll through POST /v1/enroll (they share one machine key and self-signed certificate
 * to save the load core minutes of RSA key generation; each still gets its own client certificate and
 * its own TLS connection). Then, after a warm-up, for SECONDS each:
 * 1. status: every agent PUTs a ~2 KB StatusReport as soon as its last one was answered (closed loop):
 *    durable reports per second (each answered 204 only after its group commit), p50/p99 latency;
 * 2. goal state: every agent GETs its goal state with If-None-Match: the 304s per second.
 * The load generator speaks HTTP/1.1 directly on the TLS sockets (a tiny client, no pipelining), so
 * its own cost per request stays small beside the server's. After the run the database is read back:
 * for each agent the last report acknowledged must be the one stored (durability check).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import forge from 'node-forge';
import type { EnrollResponse, StatusReport } from '../src/protocol/agent-wire.js';
import { machineLine } from './machine.js';
import { sampleReport } from './status-sample.js';

const AGENTS = Number(process.env.BENCH_CHECKIN_AGENTS ?? 256);
const SECONDS = Number(process.env.BENCH_CHECKIN_SECONDS ?? 10);
const WARM_S = Number(process.env.BENCH_CHECKIN_WARM_SECONDS ?? 2);
const TOKEN = 'bench-operator-token-0123456789abcdef';
const ENROLL = 'bench-enroll-token-0123456789abcdef';
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const hasTaskset = (() => { try { execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' }); return true; } catch { return false; } })();


async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'phasewise-checkin-'));
  let server: ChildProcess | null = null;
  try {
    const config = {
      host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', subscriptions: ['bench'],
      tokens: [{ token: TOKEN, name: 'bench', roles: ['reader', 'contributor', 'publisher'] }],
      enrollmentTokens: [{ token: ENROLL, subscriptionId: 'bench', resourceGroup: 'agents', location: 'westus' }],
      agentStatusIntervalSeconds: 3600, maxBodyBytes: 1024 * 1024,
    };
    writeFileSync(join(dir, 'serve.json'), JSON.stringify(config));
    const pinned = hasTaskset && os.cpus().length > 1;
    const cmd = pinned ? 'taskset' : process.execPath;
    // BENCH_CHECKIN_PROF=DIR: a CPU profile of the server (written when it stops).
    const prof = process.env.BENCH_CHECKIN_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CHECKIN_PROF] : [];
    const node = [process.execPath, ...prof, CLI, 'serve', '--config', join(dir, 'serve.json')];
    const args = pinned ? ['-c', '0', ...node] : node.slice(1);
    server = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    serverPid = server.pid ?? 0; // taskset execs node in place: the same pid
    const url = await new Promise<string>((resolve, reject) => {
      let err = '';
      server!.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = /serving the ARM API at (\S+)/.exec(err);
        if (m) resolve(m[1]!);
      });
      server!.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
    });
    const ca = readFileSync(join(dir, 'tls', 'cert.pem'), 'utf8');
    const { port } = new URL(url);
    console.log(`bench:checkin · ${machineLine()}`);
    const where = pinned ? 'pinned to core 0 (taskset -c 0); load: core 1' : 'not pinned (no taskset); load: not pinned';
    console.log(`server: phasewise serve, pid ${server.pid}, ${where} · ${AGENTS} agents, one mTLS keep-alive connection each`);

    // Enrollment (one shared machine key, see above).
    const identity = machineIdentity();
    const enrolled: EnrollResponse[] = [];
    const t0 = performance.now();
    const enrollAgent = new https.Agent({ keepAlive: true, ca, maxSockets: 8 });
    for (let i = 0; i < AGENTS; i += 8) {
      const batch = Array.from({ length: Math.min(8, AGENTS - i) }, (_, k) => enroll(port, ca, enrollAgent, identity.certPem, `bench-${i + k}`));
      enrolled.push(...(await Promise.all(batch)));
    }
    enrollAgent.destroy();
    console.log(`enrolled ${AGENTS} agents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const conns = await Promise.all(enrolled.map((e) => Conn.open(port, ca, identity.keyPem, e.clientCertificatePem)));
    // The body is built once; only its goalStateId changes (the client's cost must stay small).
    const [pre, post] = JSON.stringify(sampleReport(424242424)).split('424242424') as [string, string];
    const reportText = (seq: number) => `${pre}${seq}${post}`;
    console.log(`status report body: ${Buffer.byteLength(reportText(1))} bytes`);

    // 1. Durable status reports.
    const acked = new Array<number>(AGENTS).fill(0);
    const status = await closedLoop(conns, (_c, i, seq) => {
      const body = reportText(seq);
      return { req: put(`/v1/agents/${enrolled[i]!.agentId}/status`, body), expect: 204, done: () => { acked[i] = seq; } };
    });
    print('status reports (durable, 204 after commit)', status);

    // 2. Unchanged goal-state polls.
    const etags = await Promise.all(conns.map(async (c, i) => (await c.send(`GET /v1/agents/${enrolled[i]!.agentId}/goalstate HTTP/1.1\r\nHost: localhost\r\n\r\n`)).etag!));
    const polls = await closedLoop(conns, (_c, i) => ({ req: `GET /v1/agents/${enrolled[i]!.agentId}/goalstate HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: ${etags[i]}\r\n\r\n`, expect: 304 }));
    print('goal-state polls answered 304', polls);

    for (const c of conns) c.close();
    // The floor: the same transport on the same core with a server that does nothing.
    let baseline: { status: Result; polls: Result } | null = null;
    if (process.env.BENCH_CHECKIN_BASELINE !== '0') {
      const script = fileURLToPath(new URL('./checkin-baseline-server.js', import.meta.url));
      const bare = spawn(pinned ? 'taskset' : process.execPath, pinned ? ['-c', '0', process.execPath, script, dir] : [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      const bport = await new Promise<string>((resolve) => bare.stdout!.setEncoding('utf8').once('data', (d: string) => resolve(/port (\d+)/.exec(d)![1]!)));
      const prev = serverPid;
      serverPid = bare.pid ?? 0;
      const bconns = await Promise.all(enrolled.map((e) => Conn.open(bport, ca, identity.keyPem, e.clientCertificatePem)));
      const body = reportText(1);
      const bs = await closedLoop(bconns, () => ({ req: put('/x', body), expect: 204 }));
      const bp = await closedLoop(bconns, () => ({ req: 'GET /x HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: "1"\r\n\r\n', expect: 304 }));
      for (const c of bconns) c.close();
      bare.kill('SIGTERM');
      serverPid = prev;
      baseline = { status: bs, polls: bp };
      print('baseline: bare node:https, same TLS, PUT answered 204 without parsing', bs);
      print('baseline: bare node:https, same TLS, GET answered 304', bp);
      console.log(`phasewise / baseline: status ${(status.rate / bs.rate * 100).toFixed(0)}%, 304 polls ${(polls.rate / bp.rate * 100).toFixed(0)}%`);
      // What a core to itself would give, compared: the rates per server CPU-second.
      const perCpu = (r: Result) => r.rate / r.serverCpu;
      console.log(`per server CPU-second, phasewise / baseline: status ${(perCpu(status) / perCpu(bs) * 100).toFixed(0)}%, 304 polls ${(perCpu(polls) / perCpu(bp) * 100).toFixed(0)}%`);
    }
    void baseline;
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('exit', r));
    server = null;
    // Durability: what was acknowledged is what is stored.
    const db = new Database(join(dir, 'phasewise.sqlite'), { readonly: true });
    const rows = db.prepare('SELECT agent_id, report FROM agent_status').all() as Array<{ agent_id: string; report: string }>;
    const stored = new Map(rows.map((r) => [r.agent_id, (JSON.parse(r.report) as StatusReport).goalStateId]));
    db.close();
    const lost = enrolled.filter((e, i) => (stored.get(e.agentId) ?? -1) < acked[i]!).length;
    console.log(`durability: ${AGENTS - lost}/${AGENTS} agents' last acknowledged report is in the database after serve stopped`);
    const ok = status.rate >= 8000 && status.p99 <= 100 && polls.rate >= 25000;
    console.log(`targets: status ≥ 8,000/s with p99 ≤ 100 ms: ${status.rate >= 8000 && status.p99 <= 100 ? 'met' : 'missed'}; 304 polls ≥ 25,000/s: ${polls.rate >= 25000 ? 'met' : 'missed'}`);
    if (lost > 0) process.exitCode = 1;
    void ok;
  } finally {
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Result { requests: number; errors: number; rate: number; p50: number; p99: number; max: number; firstError: string | null; serverCpu: number; clientCpu: number }

/** Every connection sends its next request when the last is answered; measured after WARM_S for SECONDS. */
/** CPU seconds (user + system) a process has used, from /proc (Linux); null elsewhere. */
function cpuSeconds(pid: number): number | null {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

let serverPid = 0;

async function closedLoop(conns: Conn[], make: (c: Conn, i: number, seq: number) => { req: string; expect: number; done?: () => void }): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const start = performance.now();
  const measureFrom = start + WARM_S * 1000;
  const end = measureFrom + SECONDS * 1000;
  let seq = 1_000_000 * Math.floor(start / 1000) % 1e9;
  let cpu0 = null as { server: number | null; client: number } | null;
  const mark = setTimeout(() => { cpu0 = { server: cpuSeconds(serverPid), client: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 }; }, WARM_S * 1000);
  await Promise.all(conns.map(async (c, i) => {
    while (performance.now() < end) {
      const m = make(c, i, ++seq);
      const t = performance.now();
      const res = await c.send(m.req);
      const now = performance.now();
      if (res.status !== m.expect) {
        errors++;
        firstError ??= `${res.status} ${res.body.slice(0, 200)}`;
        continue;
      }
      m.done?.();
      if (t >= measureFrom && now <= end) lat.push(now - t);
    }
  }));
  clearTimeout(mark);
  const elapsed = (performance.now() - measureFrom) / 1000;
  const serverCpu = cpu0 && cpu0.server !== null ? ((cpuSeconds(serverPid) ?? 0) - cpu0.server) / elapsed : NaN;
  const clientCpu = cpu0 ? ((process.cpuUsage().user + process.cpuUsage().system) / 1e6 - cpu0.client) / elapsed : NaN;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { requests: lat.length, errors, rate: lat.length / SECONDS, p50: q(0.5), p99: q(0.99), max: lat[lat.length - 1] ?? NaN, firstError, serverCpu, clientCpu };
}

function print(what: string, r: Result): void {
  const lat = `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms`;
  const perCpu = Math.round(r.rate / r.serverCpu).toLocaleString('en-US');
  const cpu = `server ${(r.serverCpu * 100).toFixed(0)}% of a core (${perCpu} per server CPU-second), load generator ${(r.clientCpu * 100).toFixed(0)}%`;
  const errors = r.errors ? `, ${r.errors} errors (first: ${r.firstError})` : '';
  console.log(`${what}: ${Math.round(r.rate).toLocaleString('en-US')}/s (${r.requests} in ${SECONDS} s), ${lat}; CPU: ${cpu}${errors}`);
}

function put(path: string, body: string): string {
  return `PUT ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** One agent's TLS connection with a minimal HTTP/1.1 client: one request at a time. */
class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((r: { status: number; etag: string | null; body: string }) => void) | null = null;
  private constructor(private readonly sock: tls.TLSSocket) {
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.parse();
    });
  }

  static open(port: string, ca: string, key: string, cert: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port: Number(port), servername: 'localhost', ca, key, cert }, () => resolve(new Conn(sock)));
      sock.once('error', reject);
      sock.setNoDelay(true);
    });
  }

  send(req: string): Promise<{ status: number; etag: string | null; body: string }> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.sock.write(req);
    });
  }

  close(): void { this.sock.destroy(); }

  private parse(): void {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.subarray(0, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    const len = /\r\ncontent-length: *(\d+)/i.exec(head);
    const bodyLen = status === 204 || status === 304 ? 0 : len ? Number(len[1]) : 0;
    if (this.buf.length < end + 4 + bodyLen) return;
    const body = this.buf.subarray(end + 4, end + 4 + bodyLen).toString('utf8');
    const etag = /\r\netag: *(\S+)/i.exec(head)?.[1] ?? null;
    this.buf = this.buf.subarray(end + 4 + bodyLen);
    const w = this.waiting;
    this.waiting = null;
    w?.({ status, etag, body });
  }
}

function enroll(port: string, ca: string, agent: https.Agent, certificatePem: string, name: string): Promise<EnrollResponse> {
  const body = JSON.stringify({ name, certificatePem, agentVersion: 'bench', osName: 'Linux', osVersion: '6', computerName: name });
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${ENROLL}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = https.request({ host: '127.0.0.1', port, servername: 'localhost', path: '/v1/enroll', method: 'POST', agent, ca, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => {
        if (res.statusCode === 201) resolve(JSON.parse(text) as EnrollResponse);
        else reject(new Error(`enroll ${res.statusCode}: ${text}`));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function machineIdentity(): { keyPem: string; certPem: string } {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: 'bench' }]);
  cert.setIssuer([{ name: 'commonName', value: 'bench' }]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

// Pin the load generator to core 1 by re-running this script under taskset.
if (hasTaskset && process.env.BENCH_CHECKIN_PINNED !== '1' && os.cpus().length > 1) {
  const child = spawn('taskset', ['-c', '1', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url)], { stdio: 'inherit', env: { ...process.env, BENCH_CHECKIN_PINNED: '1' } });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}
