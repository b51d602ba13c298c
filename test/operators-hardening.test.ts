/**
 * The operators' surfaces attacked from outside, against a real server (small scenario): the security
 * headers of every answer (API, errors, dashboard files, the event stream, /metrics); operators'
 * reasons with control characters or bidirectional overrides refused and nothing changed, while any
 * other text (markup, right-to-left scripts, zero-width joiners) is stored exactly; webhook receivers that
 * flood, hang or ask for credentials in the URL; an event-stream client that never reads; Prometheus
 * label values with quotes, backslashes and line breaks, and a bounded number of series.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { request } from 'node:https';
import type { Server, ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Counter, Histogram, MAX_SERIES } from '../src/api/metrics/prometheus.js';
import { MAX_STREAM_BACKLOG_BYTES, writeOrEnd } from '../src/dashboard/event-stream.js';
import { configSchema } from '../src/server/config.js';
import { call, eventually, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { parseMetrics } from './helpers/metrics.js';

const AGENT = '/phasewise/publishers/Contoso.Monitoring/extensionTypes/Agent';
const HOLD_KEY = 'extension:contoso.monitoring.agent@1.4.1.0';
const SECRET = 'webhook-secret-0123456789abcdef';

function assertApiHeaders(h: Headers, what: string): void {
  assert.equal(h.get('cache-control'), 'no-store', `${what}: cache-control`);
  assert.equal(h.get('x-content-type-options'), 'nosniff', `${what}: nosniff`);
  assert.equal(h.get('x-frame-options'), 'DENY', `${what}: x-frame-options`);
  assert.equal(h.get('referrer-policy'), 'no-referrer', `${what}: referrer-policy`);
  assert.match(h.get('content-security-policy') ?? '', /frame-ancestors 'none'/, `${what}: csp`);
}

describe('operators\' surfaces from outside', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ scenario: 'examples/small.yaml', subscriptions: [] });
    await eventually(async () => (await call(s.url, 'GET', '/phasewise/rollouts/ro-1')).body?.status === 'running', 30_000, 'the rollout');
  });
  after(async () => s?.stop());

  test('every API answer, errors included, is not cached, not sniffed, not framed and sends no Referer', async () => {
    const answers: Array<[string, Promise<{ status: number; headers: Headers }>, number]> = [
      ['fleet', call(s.url, 'GET', '/phasewise/fleet'), 200],
      ['no token', call(s.url, 'GET', '/phasewise/fleet', undefined, null), 401],
      ['wrong token', call(s.url, 'GET', '/phasewise/rollouts', undefined, 'not-a-token'), 401],
      ['unknown path', call(s.url, 'GET', '/phasewise/nothing-here'), 404],
      ['bad body', call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', { reason: 7 }), 400],
      ['metrics', call(s.url, 'GET', '/metrics', undefined, null), 200],
      ['healthz', call(s.url, 'GET', '/healthz', undefined, null), 200],
    ];
    for (const [what, p, status] of answers) {
      const r = await p;
      assert.equal(r.status, status, what);
      assertApiHeaders(r.headers, what);
    }
  });

  test('the dashboard: a strict CSP (no inline script, no framing, no <base>, no form target), nosniff, no Referer', async () => {
    for (const path of ['/', '/dashboard/app.js', '/dashboard/style.css']) {
      const r = await fetch(`${s.url}${path}`);
      assert.equal(r.status, 200, path);
      await r.arrayBuffer();
      const csp = r.headers.get('content-security-policy') ?? '';
      for (const d of ["script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'", "form-action 'none'", "connect-src 'self'"]) {
        assert.ok(csp.includes(d), `${path}: CSP ${csp} lacks ${d}`);
      }
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer', path);
    }
  });

  test('the event stream carries the same headers; a forged or long Last-Event-ID is ignored, not trusted', async () => {
    for (const id of ['-1', '99999999999999999999', 'x'.repeat(8_000), '<script>']) {
      // node:https rather than fetch: fetch opens a fresh idle connection when a body is aborted.
      const text = await new Promise<{ headers: Headers; text: string }>((resolve, reject) => {
        const req = request(`${s.url}/phasewise/stream`, { headers: { authorization: `Bearer ${TEST_TOKEN}`, 'last-event-id': id } }, (res) => {
          assert.equal(res.statusCode, 200);
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => {
            text += d;
            if (!text.includes('\n\n')) return;
            req.destroy();
            const headers = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
            resolve({ headers, text });
          });
        });
        req.on('error', reject).end();
      });
      assertApiHeaders(text.headers, 'stream');
      const hello = JSON.parse(/^data: (.*)$/m.exec(text.text)![1]!) as { lastSeq: number };
      assert.ok(hello.lastSeq <= s.runtime.engine.state.eventSeq && hello.lastSeq > 0, text.text);
    }
  });

  test('reasons with control characters or bidirectional overrides are refused (400) and change nothing', async () => {
    s.runtime.stop();
    try {
      const seq = s.runtime.engine.state.eventSeq;
      // U+0000 has its own refusal, before any schema (json-limits.ts).
      // U+2028/U+2029 are Unicode's own line and paragraph separators: a second line as surely as \n.
      const bad = fc.constantFrom(...'\n\r\t\u0001\u0007\u001b\u007f\u0085\u009b\u2028\u2029\u202a\u202b\u202d\u202e\u2066\u2067\u2068\u2069');
      const text = fc.string({ maxLength: 40 });
      const routes = ['/phasewise/rollouts/ro-1/pause', '/phasewise/rollouts/ro-1/cancel', '/phasewise/fleet/pause', `${AGENT}/versions/1.4.1.0/withdraw`,
        '/phasewise/releases/Contoso.Monitoring/Agent/versions/1.4.1.0/hold'];
      await fc.assert(fc.asyncProperty(text, bad, text, fc.constantFrom(...routes), async (a, c, b, route) => {
        const r = await call(s.url, 'POST', route, { reason: `${a}${c}${b}` });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'InvalidParameter');
        assert.equal(r.body.error.target, 'reason');
        assert.match(r.body.error.message, /one line of text/);
      }), { numRuns: 60 });
      assert.equal(s.runtime.engine.state.eventSeq, seq, 'no event written');
      assert.equal(s.runtime.engine.state.releases.get(HOLD_KEY)?.hold ?? null, null, 'no hold');
      assert.equal(s.runtime.engine.state.rollouts.get('ro-1')!.status, 'running');
    } finally {
      s.runtime.start();
    }
  });

  test('any other text is kept exactly: markup, right-to-left script, zero-width joiner, emoji', async () => {
    const reason = '<script>window.__pwned=1</script>"><img src=x onerror=alert(1)> javascript:alert(1) שלום عربي a\u200db\u200b 👩‍💻';
    const p = await call(s.url, 'POST', '/phasewise/rollouts/ro-1/pause', { reason });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.ok(s.runtime.engine.state.releases.get(HOLD_KEY)?.hold?.reason.includes(reason));
    const ev = await call(s.url, 'GET', '/phasewise/events?after=0&limit=1000');
    assert.ok(ev.body.value.some((e: { type: string; reason?: string }) => e.type === 'rollout.paused' && e.reason?.includes(reason)));
    assert.equal((await call(s.url, 'POST', '/phasewise/rollouts/ro-1/resume')).status, 200);
  });
});

/** A receiver that answers 200 and then sends an endless body, counting what it managed to write. */
function floodReceiver(): { server: Server; written: () => number; closed: () => number } {
  let written = 0;
  let closed = 0;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const server = createServer((req, res: ServerResponse) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const pump = () => {
      // At most 256 MiB: enough to tell a reader that reads all from one that stops at once.
      while (written < 256 * 1024 * 1024 && !res.destroyed) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    res.on('close', () => closed++);
    pump();
  });
  return { server, written: () => written, closed: () => closed };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('webhook receivers that flood, hang or want credentials', () => {
  let s: TestServer;
  const flood = floodReceiver();
  const hanging: Socket[] = [];
  const hang = createTcpServer((socket) => { hanging.push(socket); socket.resume(); });
  const good: string[] = [];
  const goodServer = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => { good.push(body); res.writeHead(204).end(); });
  });

  before(async () => {
    const floodPort = await listen(flood.server);
    const goodPort = await listen(goodServer);
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const hangPort = (hang.address() as AddressInfo).port;
    s = await startTestServer({
      scenario: 'examples/small.yaml', subscriptions: [],
      webhooks: [
        { url: `http://127.0.0.1:${hangPort}/never`, secret: SECRET, events: ['version.withdrawn'] },
        { url: `http://127.0.0.1:${floodPort}/flood`, secret: SECRET, events: ['version.withdrawn'] },
        { url: `http://127.0.0.1:${goodPort}/ok`, secret: SECRET, events: ['version.withdrawn'] },
      ],
      webhookRetry: { maxAttempts: 2, initialBackoffMs: 10 },
    });
  });
  after(async () => {
    await s?.stop();
    for (const socket of hanging) socket.destroy();
    await Promise.all([flood.server, goodServer, hang].map((x) => new Promise((r) => x.close(r))));
  });

  test('a flooding receiver costs nothing (its body is never read); a silent one is given up after the timeout; neither holds back the others', async () => {
    await eventually(async () => (await call(s.url, 'GET', '/phasewise/rollouts/ro-1')).body?.status === 'running', 30_000, 'the rollout');
    const w = await call(s.url, 'POST', `${AGENT}/versions/1.4.1.0/withdraw`, { reason: 'breaks machines' });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    const t0 = Date.now();
    await eventually(async () => good.length === 1, 10_000, 'the good receiver');
    assert.ok(Date.now() - t0 < 4_000, 'the good receiver waited for neither the silent nor the flooding one');
    assert.equal(JSON.parse(good[0]!).type, 'version.withdrawn');
    await eventually(async () => flood.closed() >= 1, 10_000, 'the flood connection closed by the server');
    assert.ok(flood.written() < 16 * 1024 * 1024, `the server let the receiver write ${flood.written()} bytes`);
    const delivered = async () => parseMetrics((await call(s.url, 'GET', '/metrics', undefined, null)).body as string)
      .filter((m) => m.name === 'phasewise_webhook_deliveries_total');
    await eventually(async () => (await delivered()).find((m) => m.labels.result === 'delivered')?.value === 2, 10_000, 'two delivered');
    // The silent receiver: one attempt, a 5-second timeout, one retry, then given up.
    await eventually(async () => (await delivered()).find((m) => m.labels.result === 'failed')?.value === 1, 20_000, 'the silent hook given up');
    assert.ok(hanging.length >= 2, `${hanging.length} connections to the silent receiver`);
    await eventually(async () => hanging.every((x) => x.destroyed || x.readableEnded), 5_000, 'the silent receiver\'s connections closed');
  });

  test('configuration: credentials in a webhook URL and other schemes are refused, and the error never shows the secret', () => {
    const base = { tokens: [], dataDir: '/tmp/x' };
    for (const url of ['http://user:pass@127.0.0.1/h', 'https://token@example.com/h', 'ftp://example.com/h', 'javascript:alert(1)', 'file:///etc/passwd']) {
      const secret = 'never-shown-secret-0123456789';
      const r = configSchema.safeParse({ ...base, webhooks: [{ url, secret }] });
      assert.equal(r.success, false, url);
      const text = JSON.stringify(r.error!.issues);
      assert.ok(!text.includes(secret), text);
      assert.match(text, url.includes('@') ? /user name or password/ : /http:\/\/ or https:\/\//, url);
    }
  });
});

test('configuration: a token\'s name (the caller every log shows) is one bounded line', () => {
  const token = 'a-token-of-16-characters-or-more';
  for (const name of ['alice\n2026-01-01 INFO forged line', 'bob\u001b[2J', 'eve\u202egnp.exe', 'mallory\u2028INFO forged line', 'x'.repeat(257)]) {
    const r = configSchema.safeParse({ tokens: [{ token, name, roles: ['reader'] }] });
    assert.equal(r.success, false, JSON.stringify(name.slice(0, 40)));
  }
  assert.equal(configSchema.safeParse({ tokens: [{ token: 't'.repeat(513), name: 'alice', roles: ['reader'] }] }).success, false);
  assert.equal(configSchema.safeParse({ tokens: [{ token, name: '<b>Ops</b> (שלום)', roles: ['reader'] }] }).success, true);
});

describe('an event-stream client that never reads', () => {
  test('its stream is closed once its backlog passes the bound, instead of holding memory', async () => {
    const server = createTcpServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    client.pause(); // never reads
    const sock = await accepted;
    let closed = false;
    client.on('close', () => (closed = true)).on('error', () => {});
    try {
      const msg = `event: changed\ndata: ${JSON.stringify({ lastSeq: 1, rollouts: ['ro-1'], pad: 'p'.repeat(4_000) })}\n\n`;
      let writes = 0;
      while (writeOrEnd(sock, msg)) {
        writes++;
        assert.ok(sock.writableLength <= MAX_STREAM_BACKLOG_BYTES, `backlog ${sock.writableLength}`);
        // Lets the kernel take what its buffers hold, as between the stream's messages.
        if (writes % 64 === 0) await new Promise((r) => setImmediate(r));
        assert.ok(writes < 1_000_000, 'the stream was never closed');
      }
      assert.ok(sock.destroyed, 'the stream was closed');
      client.resume(); // what the kernel held is read, then the end
      await eventually(async () => closed, 5_000, 'the client sees the end');
    } finally {
      client.destroy();
      sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('a client that reads keeps its stream', async () => {
    const server = createTcpServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    let got = 0;
    client.on('data', (d: Buffer) => (got += d.length));
    const sock = await accepted;
    try {
      const msg = 'event: changed\ndata: {}\n\n';
      for (let i = 0; i < 10_000; i++) {
        assert.ok(writeOrEnd(sock, msg));
        if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      await eventually(async () => got === 10_000 * msg.length, 5_000, 'every message read');
    } finally {
      client.destroy();
      sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('shutdown with connections that never send a request', () => {
  test('the server closes at once: a silent TCP connection, a TLS one that sent nothing, and a served one do not hold it', async () => {
    const s = await startTestServer();
    const port = Number(new URL(s.url).port);
    const sockets: Socket[] = [];
    try {
      assert.equal((await call(s.url, 'GET', '/phasewise/fleet')).status, 200);
      const tcp = connect(port, '127.0.0.1').on('error', () => {});
      sockets.push(tcp);
      await new Promise((r) => tcp.once('connect', r));
      const tls = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }).on('error', () => {});
      sockets.push(tls);
      await new Promise((r) => tls.once('secureConnect', r));
      const t0 = Date.now();
      await s.stop();
      const ms = Date.now() - t0;
      assert.ok(ms < 5_000, `the server took ${ms} ms to close`);
      await eventually(async () => sockets.every((x) => x.destroyed || x.readableEnded), 5_000, 'the silent connections ended');
    } finally {
      for (const x of sockets) x.destroy();
      await s.stop();
    }
  });
});

/** A label value as Prometheus reads it back: \\ → \, \" → ", \n → line feed. */
function unescapeLabel(v: string): string {
  return v.replace(/\\([^])/gu, (_m, c: string) => (c === 'n' ? '\n' : c));
}

describe('Prometheus text: label values and series', () => {
  test('any label value (quotes, backslashes, line breaks, any Unicode) renders on one line and reads back exactly', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ maxLength: 20 }), (v, w) => {
      const c = new Counter('phasewise_test_total', 'A test counter.');
      c.inc({ route: v, method: w }, 3);
      const lines = c.render();
      assert.equal(lines.length, 3);
      assert.ok(!lines[2]!.includes('\n'));
      // A carriage return needs no escape in the format (only \\, \" and line feeds do): [^] reads any character.
      const m = /^phasewise_test_total\{route="((?:[^"\\]|\\[^])*)",method="((?:[^"\\]|\\[^])*)"\} 3$/u.exec(lines[2]!);
      assert.ok(m, JSON.stringify(lines[2]));
      assert.equal(unescapeLabel(m[1]!), v);
      assert.equal(unescapeLabel(m[2]!), w);
    }), { numRuns: 500 });
  });

  test('series stay bounded whatever callers send: new label sets past the bound fold into overflow', () => {
    const h = new Histogram('phasewise_test_seconds', 'A test histogram.', [0.1, 1]);
    for (let i = 0; i < MAX_SERIES * 3; i++) h.observe({ route: `/machines/m-${i}` }, 0.5);
    const series = new Set(parseMetrics(h.render().join('\n')).filter((m) => m.name.endsWith('_count')).map((m) => JSON.stringify(m.labels)));
    assert.equal(series.size, MAX_SERIES + 1);
    assert.equal(h.count({ overflow: 'true' }), MAX_SERIES * 2);
    assert.equal(h.total(), MAX_SERIES * 3);
  });
});
