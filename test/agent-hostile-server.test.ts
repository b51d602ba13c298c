/**
 * The agent against a server that is slow on purpose (or very unlucky), and a handler that floods its
 * output: hostile HTTPS servers on loopback, started here. Nothing the agent waits for may take as long
 * as the other side likes, and a handler's gigabytes of output are never loaded whole.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { AppHealthMonitor, probe } from '../src/agent/app-health.js';
import { convergeOnce } from '../src/agent/converge.js';
import { appendRotated } from '../src/agent/handler-process.js';
import { request } from '../src/agent/http-client.js';
import { DEFAULT_POLICY } from '../src/agent/local-policy.js';
import { buildStatusReport } from '../src/agent/status-report.js';
import { LIMITS } from '../src/protocol/agent-wire.js';
import { DownloadError, downloadPackage } from '../src/agent/package-download.js';
import { signPackage } from '../src/protocol/package-signature.js';
import { startTestServer } from './helpers/api-server.js';
import { TestAgent } from './helpers/agent-client.js';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, PackageServer, packageRef, runtime, sleep, tempDirs, TLS_CERT, TLS_KEY, trust } from './helpers/agent-kit.js';

/** A server that sends the headers at once, then one byte every `everyMs` (each under any silence timeout). */
class TricklingServer {
  private server!: https.Server;
  port = 0;
  requests = 0;
  constructor(private readonly body: Buffer, private readonly everyMs: number) {}

  async start(): Promise<void> {
    this.server = https.createServer({ cert: TLS_CERT, key: TLS_KEY }, (req, res) => {
      this.requests++;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const from = m ? Number(m[1]) : 0;
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(this.body.length - from) };
      if (m) headers['content-range'] = `bytes ${from}-${this.body.length - 1}/${this.body.length}`;
      res.writeHead(m ? 206 : 200, headers);
      let at = from;
      const timer = setInterval(() => {
        if (res.destroyed || at >= this.body.length) return void clearInterval(timer);
        res.write(this.body.subarray(at, at + 1));
        at++;
      }, this.everyMs);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Rejects if `p` has not settled within `ms` (the defect: it would wait for as long as the server trickles). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const packages = new PackageServer();
const publisher = newPublisher();
before(() => packages.start());
after(() => packages.stop());

test('a goal state or status answer trickled a byte at a time is cut at the request deadline, not after the whole body', async () => {
  const server = new TricklingServer(Buffer.from(JSON.stringify({ goalStateId: 1, pad: 'x'.repeat(200) })), 200);
  await server.start();
  try {
    const t0 = Date.now();
    const err = await within(request(`https://localhost:${server.port}/v1/agents/a/goalstate`, { ca: [TLS_CERT], maxBytes: 1024 * 1024, timeoutMs: 1_500 }).then(
      () => assert.fail('a trickled answer was accepted'),
      (e: Error) => e,
    ), 10_000, 'the poll');
    assert.match(err.message, /no complete answer from localhost:\d+ within 1500 ms/);
    assert.ok(Date.now() - t0 < 4_000, `cut after ${Date.now() - t0} ms`);
  } finally {
    await server.stop();
  }
});

test('a package trickled below the slowest sane rate ends each attempt in time, keeps what arrived, and resumes elsewhere', async () => {
  const blob = Buffer.alloc(4_000, 7);
  const sha256 = createHash('sha256').update(blob).digest('hex');
  const server = new TricklingServer(blob, 50); // 20 bytes/s, under any silence timeout
  await server.start();
  const dirs = tempDirs();
  const dest = join(dirs.root, 'p.part');
  try {
    const signature = signPackage(publisher.privatePem, publisher.keyId, HANDLER, '1.0.0', sha256, blob.length);
    const ref = { uris: [`https://localhost:${server.port}/v1/packages/${sha256}`], sha256, size: blob.length, signature };
    const opts = { ca: [TLS_CERT], attempts: 2, backoffMs: 10, timeoutMs: 1_000, minBytesPerSecond: 4_000, sleep };
    const t0 = Date.now();
    const err = await within(downloadPackage(ref, dest, opts).then(() => assert.fail('the download finished'), (e: Error) => e), 15_000, 'the download');
    assert.ok(err instanceof DownloadError, String(err));
    assert.match(err.message, /after 2 attempts: the transfer is slower than 4000 bytes\/s \(\d+ of \d+ bytes in 2 s\)/);
    assert.ok(Date.now() - t0 < 8_000, `gave up after ${Date.now() - t0} ms`);
    assert.equal(server.requests, 2);
    // What arrived is kept, and a sane server completes it from there (Range), to the right bytes.
    const kept = statSync(dest).size;
    assert.ok(kept > 0 && kept < blob.length, `kept ${kept} bytes`);
    packages.add(blob);
    await downloadPackage({ ...ref, uris: [`https://localhost:${packages.port}/v1/packages/${sha256}`] }, dest, opts);
    assert.equal(createHash('sha256').update(readFileSync(dest)).digest('hex'), sha256);
    assert.equal(packages.requests.at(-1)?.range, `bytes=${kept}-`);
  } finally {
    await server.stop();
  }
});

test('a package URI that is not https is a download failure naming it, not an exception that aborts every pass', async () => {
  const dirs = tempDirs();
  const opts = { ca: [TLS_CERT], attempts: 2, backoffMs: 10, timeoutMs: 1_000, sleep };
  for (const uri of ['file:///etc/shadow', 'http://127.0.0.1:9/x.zip', 'ftp://mirror/x.zip']) {
    const ref = { uris: [uri], sha256: 'a'.repeat(64), size: 10, signature: signPackage(publisher.privatePem, publisher.keyId, HANDLER, '1.0.0', 'a'.repeat(64), 10) };
    await assert.rejects(downloadPackage(ref, join(dirs.root, 'p.part'), opts), (e: Error) => e instanceof DownloadError && e.message.includes(`only https URIs are fetched, not ${uri}`));
  }
});

test('a package that cannot be written (a full disk, a vanished folder) is a download failure to retry later, not an error that ends the agent', async () => {
  const blob = Buffer.alloc(200_000, 3);
  const sha256 = createHash('sha256').update(blob).digest('hex');
  const { uri } = packages.add(blob);
  const dirs = tempDirs();
  const full = join(dirs.root, 'full.part');
  symlinkSync('/dev/full', full); // every write fails with ENOSPC, as on a full disk
  const ref = { uris: [uri], sha256, size: blob.length, signature: signPackage(publisher.privatePem, publisher.keyId, HANDLER, '1.0.0', sha256, blob.length) };
  const opts = { ca: [TLS_CERT], attempts: 2, backoffMs: 10, timeoutMs: 5_000, sleep };
  const cases: Array<[string, string, RegExp]> = [['full disk', full, /ENOSPC/], ['vanished folder', join(dirs.root, 'gone', 'p.part'), /ENOENT/]];
  for (const [what, dest, code] of cases) {
    const err = await within(downloadPackage(ref, dest, opts).then(() => assert.fail('the download finished'), (e: Error) => e), 15_000, what);
    assert.ok(err instanceof DownloadError, `${what}: ${String(err)}`);
    assert.match(err.message, /cannot write the package to /, what);
    assert.match(err.message, code, what);
  }
  assert.ok(!existsSync(full), 'the partial file (here a link) is removed; what it pointed to is not touched');
  assert.ok(existsSync('/dev/full'));
});

test('a handler that writes 600 MB to stdout: its first lines reach the outcome and the log; the agent never loads the rest', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs, { timeoutsMs: { install: 60_000, enable: 10_000, update: 10_000, disable: 10_000, uninstall: 10_000 } });
  // Over V8's longest string (about 536 million characters): reading it whole throws, and the output was lost.
  const install = "echo 'handler-says: disk layout unexpected'; head -c 600000000 /dev/zero | tr '\\0' x; exit 3";
  const ref = packageRef(packages, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { install }));
  const rss0 = process.memoryUsage().rss;
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-flood' })]));
  const grew = process.memoryUsage().rss - rss0;
  const outcome = rt.journal.state.extensions[HANDLER]!.history[0]!;
  assert.equal(outcome.outcome, 'failed', JSON.stringify(outcome));
  assert.match(outcome.message, /handler-says: disk layout unexpected/);
  assert.ok(outcome.message.length < 8_000, `message of ${outcome.message.length} characters`);
  const log = readFileSync(join(dirs.log, HANDLER, 'CommandExecution.log'), 'utf8');
  assert.match(log, /exit 3\nhandler-says: disk layout unexpected\nx{100}/);
  assert.ok(log.length < 10_000, `CommandExecution.log holds ${log.length} characters`);
  assert.ok(grew < 200 * 1024 * 1024, `the agent's memory grew by ${Math.round(grew / 1048576)} MiB`);
  // The 600 MB output file was emptied with the step (the agent's idle sweep removes it).
  const run = join(dirs.lib, '.agent', 'run');
  const outs = existsSync(run) ? readdirSync(run).filter((f) => f.endsWith('.out')) : [];
  assert.deepEqual(outs.map((f) => statSync(join(run, f)).size), outs.map(() => 0));
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]), ['install']);
});

test('a handler status message longer than the wire allows is cut by the agent: the real server accepts the report, the machine stays Connected', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  // A legal status file (well under 128 KiB) whose message, a substatus message and the outcome are long.
  const long = 'y'.repeat(6_000);
  const enable = `printf '[{"version":1.0,"timestampUTC":"2026-01-01T00:00:00Z","status":{"name":"x","operation":"Enable","status":"success","code":0,`
    + `"formattedMessage":{"lang":"en-US","message":"${long}"},"substatus":[{"name":"StdOut","status":"success","formattedMessage":{"lang":"en-US","message":"${long}"}}]}}]'`
    + ' > status/$SEQ.status; echo $SEQ > mrseq';
  const ref = packageRef(packages, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { enable }));
  const g = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-verbose' })]);
  await convergeOnce(rt, g);
  assert.equal(rt.journal.state.extensions[HANDLER]!.history[0]!.outcome, 'succeeded');
  const report = buildStatusReport({
    dirs, journal: rt.journal, goal: g, processedGoalStateId: 1, goalStateError: `refused: ${long}`, policy: DEFAULT_POLICY, health: null,
    agentVersion: '0.1.0', os: { computerName: 'host-1', osName: 'Linux', osVersion: '6.1' }, nowMs: Date.now(),
  });
  const h = report.aggregateStatus.handlerAggregateStatus[0]!;
  const status = h.runtimeSettingsStatus!.settingsStatus.status;
  assert.equal(status.formattedMessage!.message.length, LIMITS.reportMessageChars);
  assert.match(status.formattedMessage!.message, /^y+…$/);
  assert.equal(status.substatus![0]!.formattedMessage!.message.length, LIMITS.reportMessageChars);
  assert.equal(report.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.formattedMessage.message.length, LIMITS.reportMessageChars);
  // The real server takes it (before: 400 InvalidParameter on the message, retried for ever: Disconnected).
  const s = await startTestServer({ enrollmentTokens: [{ token: 'enroll-token-0123456789abcdef', subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }] });
  try {
    const a = await TestAgent.enroll(s.url, 'enroll-token-0123456789abcdef', { name: 'verbose' });
    try {
      const r = await a.status(report);
      assert.equal(r.status, 204, r.text);
    } finally {
      a.close();
    }
  } finally {
    await s.stop();
  }
});

test('a partial download its operation no longer needs (superseded while the server kept cutting it) is deleted; a live one is kept', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  const a = packageRef(packages, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-a' })]));
  // B: 60 KB that do not compress, every transfer cut after 1,000 bytes: the operation stays open.
  const big = { 'big.bin': randomBytes(45_000).toString('base64') };
  const b = packageRef(packages, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { files: big }));
  packages.faults.cutAfterBytes = 1_000;
  packages.faults.cuts = 1_000;
  try {
    await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-b', settingsSeqNo: 2 })]));
  } finally {
    packages.faults.cuts = 0;
  }
  const partB = join(dirs.lib, '.agent', 'downloads', `${b.sha256}.part`);
  assert.ok(existsSync(partB), 'the open operation keeps its partial download to resume');
  assert.equal(rt.journal.state.extensions[HANDLER]!.op?.operationId, 'op-b');
  // The control plane moves on to C before B's download ever completed.
  const c = packageRef(packages, publisher, HANDLER, '1.2.0', await handlerZip(dirs.callLog));
  await convergeOnce(rt, goal(3, [extension({ version: '1.2.0', package: c, operationId: 'op-c', settingsSeqNo: 3 })]));
  assert.equal(rt.journal.state.extensions[HANDLER]!.installedVersion, '1.2.0');
  assert.equal(existsSync(partB), false, 'the abandoned partial download is gone');
  assert.deepEqual(readdirSync(join(dirs.lib, '.agent', 'downloads')), []);
  assert.ok(rt.lines.some((l) => l.includes(`removed the partial download ${b.sha256}.part`)), rt.lines.join('\n'));
});

test('a handler that keeps writing output does not fill the disk while it runs: its output file is cut to what is kept', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  const marker = join(dirs.root, 'written');
  const install = `echo 'first line'; head -c 300000000 /dev/zero | tr '\\0' x; touch '${marker}'; sleep 1; exit 2`;
  const ref = packageRef(packages, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { install }));
  const pass = convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-chatty' })]));
  const run = join(dirs.lib, '.agent', 'run');
  const t0 = Date.now();
  while (!existsSync(marker) && Date.now() - t0 < 30_000) await sleep(20);
  assert.ok(existsSync(marker), 'the handler wrote its 300 MB');
  await sleep(300); // several of the agent's polls (20 ms here) while the command still runs
  const outs = readdirSync(run).filter((f) => f.endsWith('.out'));
  assert.equal(outs.length, 1, 'the command is still running');
  const size = statSync(join(run, outs[0]!)).size;
  assert.ok(size <= 3200 * 4, `the running command's output file holds ${size} bytes`);
  await pass;
  const outcome = rt.journal.state.extensions[HANDLER]!.history[0]!;
  assert.equal(outcome.outcome, 'failed');
  assert.match(outcome.message, /first line \| x{100}/);
});

test('command logs are rotated: any sequence of entries leaves the log and its .1 within the bound, the newest entries kept in order', () => {
  const dirs = tempDirs();
  let n = 0;
  // Entries of at most 294 bytes ("59:" + 290 + newline), a bound of at least 300: every entry fits.
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 290 }), { minLength: 1, maxLength: 60 }), fc.integer({ min: 300, max: 2_000 }), (sizes, max) => {
    const file = join(dirs.root, `CommandExecution-${n++}.log`);
    const entries = sizes.map((len, i) => `${i}:${'.'.repeat(len)}\n`);
    for (const e of entries) appendRotated(file, e, max);
    const now = readFileSync(file, 'utf8');
    const older = existsSync(`${file}.1`) ? readFileSync(`${file}.1`, 'utf8') : '';
    assert.ok(now.length <= max && older.length <= max, `${now.length} and ${older.length} bytes, bound ${max}`);
    // What the two files hold is the tail of everything written, whole entries, in order.
    const all = entries.join('');
    assert.ok(all.endsWith(older + now), 'the newest entries, in order');
    assert.ok(now.length > 0 && now.endsWith(entries.at(-1)!));
  }), { numRuns: 200 });
});

test('64 extensions whose handlers report 32 substatuses each (long: over the bytes; short: over the keys): the report fits, the real server takes it', async () => {
  const s = await startTestServer({ enrollmentTokens: [{ token: 'enroll-token-0123456789abcdef', subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }] });
  const a = await TestAgent.enroll(s.url, 'enroll-token-0123456789abcdef', { name: 'busy' });
  try {
    for (const [what, sub, said] of [['long messages', 'step '.repeat(40), 'z'.repeat(4_000)], ['short messages', 'ok', 'ok']] as const) {
      const dirs = tempDirs();
      const rt = runtime(dirs);
      const now = new Date().toISOString();
      const ref = packageRef(packages, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
      const exts = [];
      for (let i = 0; i < LIMITS.extensionsPerGoalState; i++) {
        const name = `Contoso.Ext${i}`;
        // What the handler wrote: a legal status file (well under 128 KiB), 32 substatuses.
        const substatus = Array.from({ length: 32 }, (_, k) => ({ name: `step-${k}`, status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: sub } }));
        mkdirSync(join(dirs.lib, `${name}-1.0.0`, 'status'), { recursive: true });
        const doc = [{ version: 1, timestampUTC: now, status: { name, operation: 'Enable', status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: 'ok' }, substatus } }];
        writeFileSync(join(dirs.lib, `${name}-1.0.0`, 'status', '1.status'), JSON.stringify(doc));
        const rec = rt.journal.record(name);
        Object.assign(rec, { state: 'Enabled', installedVersion: '1.0.0', installedSeq: 1 });
        rec.history = [{ operationId: `op-${i}`, outcome: 'succeeded', version: '1.0.0', message: `enabled; the handler said: ${said}`, finishedAt: now }];
        exts.push(extension({ name, version: '1.0.0', package: ref, operationId: `op-${i}`, settingsSeqNo: 1 }));
      }
      const report = buildStatusReport({
        dirs, journal: rt.journal, goal: goal(1, exts), processedGoalStateId: 1, goalStateError: null, policy: DEFAULT_POLICY, health: null,
        agentVersion: '0.1.0', os: { computerName: 'host-1', osName: 'Linux', osVersion: '6.1' }, nowMs: Date.now(),
      });
      const bytes = Buffer.byteLength(JSON.stringify(report));
      assert.ok(bytes <= LIMITS.statusReportBytes, `${what}: ${bytes} bytes`);
      assert.ok(keysOf(report) <= LIMITS.statusReportKeys, `${what}: ${keysOf(report)} keys`);
      assert.equal(report.aggregateStatus.handlerAggregateStatus.length, 64, 'every handler is still reported');
      assert.equal(Object.values(report.agentState).filter((e) => e.lastOperation?.outcome === 'succeeded').length, 64, 'and every outcome');
      const r = await a.status(report);
      assert.equal(r.status, 204, `${what}: ${r.text.slice(0, 300)}`);
    }
  } finally {
    a.close();
    await s.stop();
  }
});

/** Object keys in a JSON value, as the server counts them. */
function keysOf(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + keysOf(x), 0);
  if (v === null || typeof v !== 'object') return 0;
  return Object.entries(v).reduce((n, [, x]) => n + 1 + keysOf(x), 0);
}

test('R21: an application that answers its health probe a byte at a time is Unknown at the probe deadline: the monitor leaves Healthy', async () => {
  let trickle = false;
  const body = JSON.stringify({ ApplicationHealthState: 'Healthy' });
  const app = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (!trickle) return void res.end(body);
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return void clearInterval(timer);
      if (i >= body.length) {
        clearInterval(timer);
        return void res.end();
      }
      res.write(body[i++]);
    }, 200); // the whole answer would take about 7 s, each byte well inside any silence timeout
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const port = (app.address() as AddressInfo).port;
  const monitor = new AppHealthMonitor(() => Date.now(), 100); // a "second" of the settings is 100 ms
  try {
    const settings = { protocol: 'http' as const, port, requestPath: '/health', intervalInSeconds: 5, numberOfProbes: 1, gracePeriod: 5 };
    assert.equal(await probe(settings, 1_000), 'Healthy');
    const name = 'Microsoft.ManagedServices.ApplicationHealthLinux';
    const pkg = packageRef(packages, publisher, name, '2.0.0', Buffer.from('x'));
    const healthSettings = { publicSettings: settings, protectedSettings: null, protectedSettingsCertThumbprint: null };
    monitor.configure([extension({ name, version: '2.0.0', package: pkg, operationId: 'op-h', settings: healthSettings })]);
    const t1 = Date.now();
    while (monitor.state() !== 'Healthy' && Date.now() - t1 < 5_000) await sleep(20);
    assert.equal(monitor.state(), 'Healthy');
    trickle = true;
    const t0 = Date.now();
    assert.equal(await within(probe(settings, 1_000), 5_000, 'the probe'), 'Unknown');
    assert.ok(Date.now() - t0 < 2_500, `answered after ${Date.now() - t0} ms`);
    // The monitor's own probes (each bounded by the 500 ms interval) now end Unknown too: it does not stay Healthy.
    const t2 = Date.now();
    while (monitor.state() === 'Healthy' && Date.now() - t2 < 5_000) await sleep(20);
    assert.equal(monitor.state(), 'Unknown');
  } finally {
    monitor.stop();
    app.closeAllConnections();
    await new Promise((r) => app.close(r));
  }
});
