/**
 * The operators' CLI against servers that misbehave and against bad local input (docs/cli.md): a server
 * that answers garbage, too much, too slowly or with nextLinks in a loop; a rollout that never ends
 * under --wait; profiles that are corrupt, empty, huge, readable by others, symlinks, FIFOs; ids that are
 * path steps; --output, --query, --top and times that are wrong. Each ends with one line on standard
 * error and a documented exit code, in bounded time, and a bad option sends no request at all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { CLI, ROOT } from './helpers/cli.js';
import { CERT, KEY } from './helpers/api-server.js';

interface Run { status: number | null; stdout: string; stderr: string; ms: number }
type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const TOKEN = 'hostile-test-token-0123456789';
const RUNNING = { id: 'ro-1', status: 'running', reason: null, counts: { eligible: 10, open: 10, upgraded: 0 } };

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'phasewise-cli-hostile-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A loopback HTTPS server with the test certificate; every request's method and path is recorded. */
async function hostile(handler: Handler): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = createServer({ cert: readFileSync(CERT), key: readFileSync(KEY) }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

const json = (body: unknown, status = 200): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

/** The path of the last request recorded (and forgets it). */
const lastPath = (seen: string[]) => seen.pop()!.replace(/^\S+ /, '');

let n = 0;
/** A fresh profile folder; with `server`, a 0600 profile for it (the fixture CA). */
function configDir(server?: string): string {
  const dir = join(root, `cfg-${n++}`);
  mkdirSync(dir, { recursive: true });
  if (server) {
    writeFileSync(join(dir, 'profile.json'), JSON.stringify({ server, token: TOKEN, caCert: CERT }));
    chmodSync(join(dir, 'profile.json'), 0o600);
  }
  return dir;
}

/** The CLI with this profile folder; killed after `limitMs` (status null then). NODE_EXTRA_CA_CERTS is cleared: trust comes from the profile. */
function pw(dir: string, args: string[], env: NodeJS.ProcessEnv = {}, limitMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const e: NodeJS.ProcessEnv = { ...process.env, PHASEWISE_CONFIG_DIR: dir, ...env };
    delete e.PHASEWISE_DEBUG;
    delete e.NODE_EXTRA_CA_CERTS;
    const t0 = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** Exit `code`, one line on standard error matching `message`, no stack trace. */
function fails(r: Run, code: number, message: RegExp): void {
  assert.equal(r.status, code, `exit ${r.status} (${r.ms} ms): ${r.stderr.slice(0, 500)}`);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr.slice(0, 1000));
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

describe('login against servers that are not what they seem', () => {
  test('a 200 that is not JSON (another web server) is refused, exit 1, and no profile is written', async () => {
    const s = await hostile((_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>It works!</html>'); });
    try {
      const dir = configDir();
      const r = await pw(dir, ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', CERT]);
      fails(r, 1, /^phasewise: https:\/\/127\.0\.0\.1:\d+ answered 200 with a body that is not JSON \(is it a Phasewise server\?\)/);
      assert.equal(existsSync(join(dir, 'profile.json')), false, 'no profile for a server that is not one');
    } finally {
      await s.close();
    }
  });

  test('a server that sends a byte every 100 ms forever is given up at PHASEWISE_REQUEST_TIMEOUT, exit 1', async () => {
    const s = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(t));
    });
    try {
      const r = await pw(configDir(), ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', CERT], { PHASEWISE_REQUEST_TIMEOUT: '2' }, 20_000);
      fails(r, 1, /gave no whole answer within 2 s/);
      assert.ok(r.ms < 10_000, `${r.ms} ms`);
    } finally {
      await s.close();
    }
  });

  test('PHASEWISE_REQUEST_TIMEOUT out of range is a usage error before any request', async () => {
    const s = await hostile(json({ value: [] }));
    try {
      for (const v of ['0', '-1', '601', 'abc', '1e3', '2.5']) {
        const r = await pw(configDir(), ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', CERT], { PHASEWISE_REQUEST_TIMEOUT: v });
        fails(r, 2, /^phasewise login: PHASEWISE_REQUEST_TIMEOUT: expected whole seconds/);
      }
      assert.deepEqual(s.seen, []);
    } finally {
      await s.close();
    }
  });

  test('a body announced as 5 GB is not read; one streamed without end is cut at 64 MiB; exit 1', async () => {
    const big = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(5 * 1024 ** 3) });
      res.write('[');
    });
    const endless = await hostile((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1 << 20, 0x20);
      const more = () => { while (res.write(chunk)); };
      res.on('drain', more);
      more();
    });
    try {
      fails(await pw(configDir(), ['login', '--server', big.url, '--token', TOKEN, '--ca-cert', CERT], {}, 30_000), 1, /sent an answer larger than 64 MiB; not read/);
      fails(await pw(configDir(), ['login', '--server', endless.url, '--token', TOKEN, '--ca-cert', CERT], {}, 30_000), 1, /sent an answer larger than 64 MiB; not read/);
    } finally {
      await big.close();
      await endless.close();
    }
  });

  test('a CA file that is not a certificate, or another certificate than the server\'s: one line, nothing saved', async () => {
    const s = await hostile(json({ value: [] }));
    try {
      const dir = configDir();
      writeFileSync(join(dir, 'not-a-cert.pem'), 'hello');
      fails(await pw(dir, ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', join(dir, 'not-a-cert.pem')]), 2, /^phasewise login: the CA certificate .* is not a PEM certificate/);
      fails(await pw(dir, ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', '/dev/zero']), 2, /cannot read the CA certificate \/dev\/zero: larger than/);
      const opensslArgs = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-days', '1', '-subj', '/CN=other'];
      const other = execFileSync('openssl', opensslArgs, { stdio: ['ignore', 'pipe', 'ignore'] });
      writeFileSync(join(dir, 'other.pem'), other);
      fails(await pw(dir, ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', join(dir, 'other.pem')]), 1, /certificate is not trusted/);
      fails(await pw(dir, ['login', '--server', s.url, '--token', 'a token with spaces inside it']), 2, /--token: expected printable characters without spaces/);
      assert.equal(existsSync(join(dir, 'profile.json')), false);
      assert.deepEqual(s.seen, []);
    } finally {
      await s.close();
    }
  });
});

describe('lists, --wait and answers that are not what they should be', () => {
  test('nextLink in a loop stops after 1000 pages, exit 1; a page that is not a list, exit 1', async () => {
    let base = '';
    const loop = await hostile(json({ get value() { return []; }, get nextLink() { return `${base}/phasewise/rollouts?page=again`; } }));
    base = loop.url;
    const notList = await hostile(json({ value: 'nope' }));
    try {
      const r = await pw(configDir(loop.url), ['rollout', 'list'], {}, 120_000);
      fails(r, 1, /sent more than 1000 pages \(nextLink in a loop\?\); stopped/);
      assert.equal(loop.seen.length, 1000);
      fails(await pw(configDir(notList.url), ['rollout', 'list']), 1, /answered with something that is not a list/);
    } finally {
      await loop.close();
      await notList.close();
    }
  });

  test('--wait on a rollout that never ends gives up at --timeout with exit 4; the rollout is left running', async () => {
    const s = await hostile((req, res) => json(req.method === 'POST' ? { id: 'ro-1' } : RUNNING)(req, res));
    try {
      const r = await pw(configDir(s.url), ['rollout', 'resume', 'ro-1', '--wait', '--timeout', '2'], {}, 30_000);
      // The progress bar is on standard error too (a line per change without a terminal); the failure is the last line.
      assert.equal(r.status, 4, r.stderr);
      assert.match(r.stderr.trim().split('\n').at(-1)!, /^phasewise: --wait gave up after 2 s; still running \(they go on\): ro-1; see phasewise rollout show ID$/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.ok(r.ms < 15_000, `${r.ms} ms`);
      assert.equal(s.seen.filter((x) => x.startsWith('POST')).length, 1, 'resumed once, nothing cancelled');
      for (const t of ['0', '-1', 'abc', '1e9', '2592001']) {
        fails(await pw(configDir(s.url), ['rollout', 'resume', 'ro-1', '--wait', `--timeout=${t}`]), 2, /--timeout: expected whole seconds from 1 to 2592000/);
      }
      assert.equal(s.seen.filter((x) => x.startsWith('POST')).length, 1, 'a bad --timeout sends nothing');
    } finally {
      await s.close();
    }
  });

  test('--wait when the server answers something that is not a rollout: exit 1, one line', async () => {
    const s = await hostile((req, res) => json(req.method === 'POST' ? { id: 'ro-1' } : { id: 'ro-1', status: 'running' })(req, res));
    try {
      fails(await pw(configDir(s.url), ['rollout', 'resume', 'ro-1', '--wait']), 1, /answer for rollout ro-1 is not a rollout/);
    } finally {
      await s.close();
    }
  });
});

describe('bad options send nothing', () => {
  let s: Awaited<ReturnType<typeof hostile>>;
  let dir: string;
  before(async () => {
    s = await hostile(json({ id: 'ro-1', status: 'paused', value: [] }));
    dir = configDir(s.url);
  });
  after(async () => s.close());

  test('an unknown --output or an invalid --query on a control is refused before the control is sent (exit 2)', async () => {
    s.seen.length = 0; // each case on its own: what an earlier one sent is not this one's
    fails(await pw(dir, ['rollout', 'pause', 'ro-1', '-o', 'xml']), 2, /--output: 'xml' is not one of/);
    fails(await pw(dir, ['rollout', 'pause', 'ro-1', '--query', '[0.id']), 2, /--query: invalid JMESPath/);
    fails(await pw(dir, ['fleet', 'pause', '--query', 'a[']), 2, /--query: invalid JMESPath/);
    fails(await pw(dir, ['version', 'withdraw', '--publisher', 'P', '--type', 'T', '--version', '1.0', '-o', 'html']), 2, /--output/);
    assert.deepEqual(s.seen, [], 'nothing paused, nothing withdrawn');
  });

  test('--wait without --rollback on a withdrawal, --timeout without --wait: usage errors, nothing withdrawn or resumed', async () => {
    s.seen.length = 0; // each case on its own: what an earlier one sent is not this one's
    // A withdrawal is for good: the --wait most likely lost its --rollback, and the version would be withdrawn without one.
    fails(await pw(dir, ['version', 'withdraw', '--publisher', 'P', '--type', 'T', '--version', '1.0', '--wait']), 2, /--wait: only with --rollback.*nothing was withdrawn/);
    fails(await pw(dir, ['version', 'withdraw', '--image', 'a:b:c', '--version', '1.0', '--rollback', '--timeout', '60']), 2, /--timeout: only with --wait/);
    fails(await pw(dir, ['rollout', 'resume', 'ro-1', '--timeout', '60']), 2, /--timeout: only with --wait/);
    assert.deepEqual(s.seen, [], 'nothing withdrawn, nothing resumed');
  });

  test('--top 0, -1, 1e9, abc, 10001 are usage errors', async () => {
    s.seen.length = 0; // each case on its own: what an earlier one sent is not this one's
    for (const top of ['0', '-1', '1e9', 'abc', '10001', '']) {
      fails(await pw(dir, ['rollout', 'list', `--top=${top}`]), 2, /--top: expected a whole number from 1 to 10000/);
    }
    assert.deepEqual(s.seen, []);
  });

  test('machine ids `.` and `..` are refused (a URL would resolve them to another resource); others reach the server encoded', async () => {
    s.seen.length = 0; // each case on its own: what an earlier one sent is not this one's
    for (const id of ['.', '..']) fails(await pw(dir, ['machine', 'show', id]), 2, /id: '\.\.?' is not a name/);
    fails(await pw(dir, ['rollout', 'cancel', '..']), 2, /is not a name/);
    fails(await pw(dir, ['version', 'withdraw', '--publisher', '..', '--type', 'T', '--version', '1.0']), 2, /--publisher: '\.\.' is not a name/);
    fails(await pw(dir, ['machine', 'show', 'a\nb']), 2, /control characters/);
    assert.deepEqual(s.seen, []);
    for (const id of ['%2F', 'a?b', 'a#b', '../x', 'web/0', '...']) {
      const r = await pw(dir, ['machine', 'show', id]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(s.seen.pop(), `GET /phasewise/machines/${encodeURIComponent(id)}`);
    }
  });

  test('activity list: times that are not ISO 8601, or a start after the end, are usage errors', async () => {
    s.seen.length = 0; // each case on its own: what an earlier one sent is not this one's
    const args = ['activity', 'list', '--subscription', 'sub1'];
    for (const t of ['1', 'yesterday', 'Feb 30 2026', '2026-02-30', '2026-13-01', '2026-03-01T25:00:00Z', '2026-03-01T12:00:00+99:99x', '0']) {
      fails(await pw(dir, [...args, `--start-time=${t}`]), 2, /--start-time: '.*' is not an ISO 8601 time/);
    }
    fails(await pw(dir, [...args, '--start-time', '2026-03-02', '--end-time', '2026-03-01']), 2, /--start-time 2026-03-02T00:00:00\.000Z is after --end-time/);
    assert.deepEqual(s.seen, []);
    const ok = await pw(dir, [...args, '--start-time', '2026-03-01T12:00', '--end-time', '2026-03-01T13:00:00+01:00']);
    assert.equal(ok.status, 0, ok.stderr);
    const filter = new URL(lastPath(s.seen), 'https://x').searchParams.get('$filter');
    assert.equal(filter, "eventTimestamp ge '2026-03-01T12:00:00.000Z' and eventTimestamp le '2026-03-01T12:00:00.000Z'");
  });

  test('property: any --start-time is either refused (exit 2, nothing sent) or sent as the same instant Date.parse reads in UTC', async () => {
    const dates = fc.tuple(fc.integer({ min: 1000, max: 9999 }), fc.integer({ min: 0, max: 14 }), fc.integer({ min: 0, max: 33 }), fc.integer({ min: 0, max: 25 }))
      .map(([y, m, d, h]) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:00:00Z`);
    await fc.assert(fc.asyncProperty(fc.oneof(dates, fc.string({ maxLength: 12 }).filter((x) => !x.includes('\0'))), async (t) => {
      const before = s.seen.length;
      const r = await pw(dir, ['activity', 'list', '--subscription', 'sub1', `--start-time=${t}`]);
      if (r.status === 2) {
        assert.equal(s.seen.length, before);
        return;
      }
      assert.equal(r.status, 0, r.stderr);
      const filter = new URL(lastPath(s.seen), 'https://x').searchParams.get('$filter')!;
      const sent = /ge '([^']+)'/.exec(filter)![1]!;
      const [y, mo, d] = t.slice(0, 10).split('-').map(Number) as [number, number, number];
      assert.equal(new Date(sent).getUTCMonth() + 1, mo, `${t} → ${sent}: no rollover into another month`);
      assert.equal(new Date(sent).getUTCDate(), d);
      assert.equal(new Date(sent).getUTCFullYear(), y);
    }), { numRuns: 15 });
  });
});

describe('profiles that are not what login writes', () => {
  let s: Awaited<ReturnType<typeof hostile>>;
  before(async () => {
    s = await hostile(json({ value: [] }));
  });
  after(async () => s.close());

  const good = () => JSON.stringify({ server: s.url, token: TOKEN, caCert: CERT });
  /** A profile folder whose profile.json is made by `make`; the CLI must refuse it with exit 2 and send nothing. */
  async function refused(make: (file: string) => void, message: RegExp): Promise<void> {
    const dir = configDir();
    make(join(dir, 'profile.json'));
    const before = s.seen.length;
    fails(await pw(dir, ['rollout', 'list'], {}, 20_000), 2, message);
    assert.equal(s.seen.length, before, 'no request');
  }
  const file600 = (text: string | Buffer) => (f: string) => { writeFileSync(f, text); chmodSync(f, 0o600); };

  test('corrupt, empty, huge, an array, fields of the wrong kind: exit 2, one line, nothing sent', async () => {
    await refused(file600('{"server": "https://x'), /is not valid JSON; run phasewise login again/);
    await refused(file600(''), /is not valid JSON \(it is empty\)/);
    await refused(file600(Buffer.alloc(10 * 1024 * 1024, 0x20)), /is larger than 65536 bytes: not a profile/);
    await refused(file600('[1,2]'), /is not a profile/);
    await refused(file600(JSON.stringify({ server: 'not a url', token: TOKEN })), /server: 'not a url' is not an https:\/\/ URL/);
    await refused(file600(JSON.stringify({ server: s.url, token: 'short' })), /token: expected 16 to 512 characters/);
    await refused(file600(JSON.stringify({ server: s.url, token: `${TOKEN}\r\nX-Injected: 1` })), /token: expected printable characters without spaces/);
    await refused(file600(JSON.stringify({ server: s.url, token: TOKEN, caCert: 42 })), /caCert: expected a file name/);
  });

  test('readable by others (0644, 0640) is refused with the chmod to run; 0600 and 0400 are fine', async () => {
    await refused((f) => { writeFileSync(f, good()); chmodSync(f, 0o644); }, /can be read by others \(mode 644\); run chmod 600 /);
    await refused((f) => { writeFileSync(f, good()); chmodSync(f, 0o640); }, /mode 640/);
    for (const mode of [0o600, 0o400]) {
      const dir = configDir();
      writeFileSync(join(dir, 'profile.json'), good());
      chmodSync(join(dir, 'profile.json'), mode);
      const r = await pw(dir, ['rollout', 'list']);
      assert.equal(r.status, 0, r.stderr);
    }
  });

  test('a symlink to a good profile is followed; to a folder, /dev/zero or a FIFO it is refused without blocking', async () => {
    const target = join(root, 'real-profile.json');
    writeFileSync(target, good());
    chmodSync(target, 0o600);
    const dir = configDir();
    symlinkSync(target, join(dir, 'profile.json'));
    assert.equal((await pw(dir, ['rollout', 'list'])).status, 0);
    await refused((f) => symlinkSync(root, f), /is not a regular file/);
    await refused((f) => symlinkSync('/dev/zero', f), /is not a regular file/);
    await refused((f) => execFileSync('mkfifo', ['-m', '600', f]), /is not a regular file/);
    await refused((f) => symlinkSync(join(root, 'nowhere'), f), /not logged in/);
    // A relative --ca-cert is kept absolute: the next command may run from another folder.
    const rel = await pw(configDir(), ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', 'test/fixtures/tls/cert.pem']);
    assert.equal(rel.status, 0, rel.stderr);
    assert.equal(JSON.parse(rel.stdout).caCert, CERT);
    // login through a symlink writes a regular 0600 file in its place; the file the link named is left alone.
    const login = await pw(dir, ['login', '--server', s.url, '--token', TOKEN, '--ca-cert', CERT]);
    assert.equal(login.status, 0, login.stderr);
    assert.equal(statSync(join(dir, 'profile.json')).mode & 0o777, 0o600);
    assert.equal(readFileSync(target, 'utf8'), good());
  });
});
