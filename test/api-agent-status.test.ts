/**
 * Status reports and packages on the agent channel: bad input (too large, malformed, too deep, too
 * many keys) is a 4xx ARM error that changes nothing; an accepted report is durable before its 204
 * and survives a restart of serve; packages upload with their signature document (a tampered one is
 * refused) and download with Range requests.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parseAgentJson } from '../src/api/agent/status-schema.js';
import { LIMITS } from '../src/protocol/agent-wire.js';
import { signPackage } from '../src/protocol/package-signature.js';
import { configSchema } from '../src/server/config.js';
import { startServer } from '../src/server/serve.js';
import { call, CERT, KEY, PUBLISHER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { handlerZip, publisherKeyPem, rawRequest, statusReport, TestAgent, uploadPackage } from './helpers/agent-client.js';

const SUB = 'sub1';
const AV = 'api-version=2024-07-01';
const ENROLL = 'enroll-token-0123456789abcdef';
const ARC = `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines`;
const PKG = '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions';
const tokens = [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'westus' }];

const statusRow = (s: TestServer, agentId: string) =>
  s.store.database.prepare('SELECT received_at, report FROM agent_status WHERE agent_id = ?').get(agentId) as { received_at: number; report: string } | undefined;

describe('status reports', () => {
  let s: TestServer;
  let a: TestAgent;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: tokens });
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'st-1' });
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  test('an accepted report is committed before its 204, and is the heartbeat', async () => {
    const r = await a.status(statusReport({ goalStateId: 3 }));
    assert.equal(r.status, 204, r.text);
    const row = statusRow(s, a.agentId)!;
    assert.equal(JSON.parse(row.report).goalStateId, 3);
    assert.ok(Math.abs(row.received_at - Date.now()) < 60_000, 'the wall clock, not the accelerated engine clock');
  });

  test('over the limit, malformed, too deep, too many keys, wrong shape: a 4xx ARM error naming the problem, and nothing changed', async () => {
    const before = statusRow(s, a.agentId)!.report;
    const big = statusReport();
    big.guestOSInfo.computerName = 'x'.repeat(LIMITS.statusReportBytes);
    const cases: Array<[string, string | object, number, string]> = [
      ['too large', big, 413, 'RequestEntityTooLarge'],
      ['malformed', '{"version": "1.1", ', 400, 'InvalidRequestContent'],
      ['too deep', `{"a":${'['.repeat(LIMITS.jsonDepth + 1)}${']'.repeat(LIMITS.jsonDepth + 1)}}`, 400, 'JsonTooDeep'],
      ['too many keys', `[${Array.from({ length: 5 }, () => `{${Array.from({ length: 900 }, (_, i) => `"k${i}":1`).join(',')}}`).join(',')}]`, 400, 'JsonTooManyKeys'],
      ['too many members in one object', `{${Array.from({ length: 1001 }, (_, i) => `"k${i}":1`).join(',')}}`, 400, 'InvalidRequestContent'],
      ['wrong shape', { ...statusReport(), version: '9.9' }, 400, 'InvalidParameter'],
      ['wrong field type', { ...statusReport(), agentState: { 'A.B': { state: 'Flying' } } }, 400, 'InvalidParameter'],
    ];
    for (const [what, body, status, code] of cases) {
      const r = await a.call('PUT', `/v1/agents/${a.agentId}/status`, body);
      assert.equal(r.status, status, `${what}: ${r.text.slice(0, 300)}`);
      assert.equal(r.json.error.code, code, what);
      assert.equal(statusRow(s, a.agentId)!.report, before, `${what}: nothing changed`);
    }
    const shape = await a.call('PUT', `/v1/agents/${a.agentId}/status`, { ...statusReport(), version: '9.9' });
    assert.equal(shape.json.error.target, 'version');
  });

  test('concurrent reports are group-committed: each answered after the commit, fewer commits than reports', async () => {
    const agents = await Promise.all(Array.from({ length: 8 }, (_, i) => TestAgent.enroll(s.url, ENROLL, { name: `gc-${i}` })));
    try {
      // Warm connections first: TLS handshakes would spread the reports over more than the commit window.
      await Promise.all(agents.flatMap((x) => [1, 2, 3].map((n) => x.status(statusReport({ goalStateId: n })))));
      const stats = s.agents.status.stats;
      const commits0 = stats.commits;
      const reports0 = stats.reports;
      const replies = await Promise.all(agents.flatMap((x) => [1, 2, 3].map((n) => x.status(statusReport({ goalStateId: n })))));
      assert.ok(replies.every((r) => r.status === 204));
      assert.equal(stats.reports - reports0, 24);
      assert.ok(stats.commits - commits0 < 24, `grouped: ${stats.commits - commits0} commits for 24 reports`);
      for (const x of agents) assert.ok(statusRow(s, x.agentId));
    } finally {
      for (const x of agents) x.close();
    }
  });
});

describe('JSON bounds on the raw text', () => {
  const codeOf = (text: string): string | null => {
    try {
      parseAgentJson(text);
      return null;
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const keys = (n: number) => `{${Array.from({ length: n }, (_, i) => `"k${i}":{}`).join(',')}}`;

  test('depth and keys are counted outside strings only, in the same pass as the ARM limits; escapes do not end a string', () => {
    assert.equal(codeOf(`{"a":"${'['.repeat(200)}\\":::"}`), null);
    assert.equal(codeOf(`{"a\\"":${nested(LIMITS.jsonDepth - 1)}}`), null);
    assert.equal(codeOf(`{"a":${nested(LIMITS.jsonDepth)}}`), 'JsonTooDeep');
    assert.equal(codeOf('['.repeat(100_000)), 'JsonTooDeep');
    // 4,096 keys in all are fine (in objects of at most 1,000 members: maxMembers); one more is not.
    const many = (n: number) => `[${Array.from({ length: Math.ceil(n / 1000) }, (_, i) => keys(Math.min(1000, n - i * 1000)).replace(/"k/g, `"k${i}_`)).join(',')}]`;
    assert.equal(codeOf(many(4096)), null);
    assert.equal(codeOf(many(4097)), 'JsonTooManyKeys');
    // The ARM limits still hold on this channel: duplicate keys, __proto__, huge numbers.
    assert.equal(codeOf('{"a":1,"a":2}'), 'InvalidRequestContent');
    assert.equal(codeOf('{"__proto__":{}}'), 'InvalidRequestContent');
    assert.equal(codeOf('{"a":1e999}'), 'InvalidRequestContent');
    assert.equal(codeOf(`{"a":${'9'.repeat(400)}}`), 'InvalidRequestContent');
    assert.deepEqual(parseAgentJson('{"a\\u0041":[1,-2.5e3,"x\\"y"]}'), { 'a\u0041': [1, -2500, 'x\"y'] });
  });
});

describe('duplicate keys after one pass', () => {
  type Tree = { obj: Array<[string, Tree]> } | { arr: Tree[] } | { leaf: string };
  // Keys as written in the text: '"\\u0061"' is the key 'a' too.
  const KEYS = ['"a"', '"b"', '"\\u0061"', '"k\\"q"', '"é"'];
  const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true },
      fc.constantFrom('1', '-2.5e3', '"s"', 'null', 'true').map((leaf) => ({ leaf })),
      fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('tree')), { maxLength: 4 }).map((obj) => ({ obj })),
      fc.array(tie('tree'), { maxLength: 3 }).map((arr) => ({ arr }))),
  }));
  const text = (t: Tree): string => 'leaf' in t ? t.leaf : 'arr' in t ? `[${t.arr.map(text).join(',')}]` : `{${t.obj.map(([k, v]) => `${k}:${text(v)}`).join(',')}}`;
  const hasDuplicate = (t: Tree): boolean => 'leaf' in t ? false : 'arr' in t ? t.arr.some(hasDuplicate)
    : new Set(t.obj.map(([k]) => JSON.parse(k) as string)).size < t.obj.length || t.obj.some(([, v]) => hasDuplicate(v));

  test('a key named twice in one object (escaped or not) is refused, naming it; otherwise the body parses as JSON.parse reads it', () => {
    fc.assert(fc.property(tree, (t) => {
      const body = text(t);
      if (hasDuplicate(t)) {
        assert.throws(() => parseAgentJson(body), (err: any) => err.code === 'InvalidRequestContent' && /twice in one object/.test(err.message), body);
      } else {
        assert.deepEqual(parseAgentJson(body), JSON.parse(body), body);
      }
    }), { numRuns: 500, seed: 7 });
  });
});

describe('status durability across a restart of serve', () => {
  test('a report answered 204 is there after serve restarts on the same data folder; the ARM document shows it', async () => {
    const s = await startTestServer({ enrollmentTokens: tokens });
    const a = await TestAgent.enroll(s.url, ENROLL, { name: 'dur-1' });
    const r = statusReport({ goalStateId: 7 });
    r.agentConfiguration = { extensionsEnabled: false, extensionsAllowList: ['Contoso.Monitor'], extensionsBlockList: [] };
    assert.equal((await a.status(r)).status, 204);
    // A long poll waiting when the server closes is answered, not left hanging (nor holding the close up).
    const etag = (await a.goalState()).headers.etag as string;
    const polling = a.goalState(etag, 60);
    await new Promise((res) => setTimeout(res, 200));
    const t0 = Date.now();
    await s.close(); // keep the folder
    assert.equal((await polling).status, 304);
    assert.ok(Date.now() - t0 < 10_000, 'released at close');
    a.close();
    const config = configSchema.parse({
      host: '127.0.0.1', port: 0, dataDir: s.dir, logLevel: 'silent', subscriptions: [SUB], tls: { cert: CERT, key: KEY },
      tokens: [{ token: TEST_TOKEN, name: 'alice', roles: ['reader', 'contributor', 'publisher'] }], enrollmentTokens: tokens,
    });
    const again = await startServer(config);
    try {
      const url = again.url.replace('127.0.0.1', 'localhost');
      const doc = await call(url, 'GET', `${ARC}/dur-1?${AV}`);
      assert.equal(doc.status, 200);
      assert.equal(doc.body.properties.status, 'Connected');
      assert.deepEqual(doc.body.properties.agentConfiguration, { extensionsEnabled: 'false', extensionsAllowList: [{ publisher: 'Contoso', type: 'Monitor' }], extensionsBlockList: [] });
      // The same credential works against the restarted server (the CA and the agent record persisted).
      const b = new TestAgent(url, a.id, a.enrolled);
      try {
        assert.equal((await b.goalState()).status, 200);
      } finally {
        b.close();
      }
    } finally {
      await again.close();
      await s.stop();
    }
  });
});

describe('packages', () => {
  let s: TestServer;
  let a: TestAgent;
  let zip: Buffer;
  before(async () => {
    s = await startTestServer({ enrollmentTokens: tokens });
    assert.equal((await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor', { supportsAutomaticUpgrade: true }, PUBLISHER_TOKEN)).status, 201);
    zip = await handlerZip('pkg');
    a = await TestAgent.enroll(s.url, ENROLL, { name: 'pkg-1' });
  });
  after(async () => {
    a?.close();
    await s?.stop();
  });

  const upload = (version: string, body: Buffer, doc: object | null, type = 'application/zip') => rawRequest(s.url, 'PUT', `${PKG}/${version}/package`, {
    body, headers: { authorization: `Bearer ${PUBLISHER_TOKEN}`, 'content-type': type, ...(doc ? { 'x-phasewise-package-signature': Buffer.from(JSON.stringify(doc)).toString('base64') } : {}) },
  });
  const docFor = (version: string, bytes: Buffer) => {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { name: 'Contoso.Monitor', version, sha256, size: bytes.length, signature: signPackage(publisherKeyPem, 'test-2026', 'Contoso.Monitor', version, sha256, bytes.length) };
  };

  test('upload before the version is published: stored content-addressed; the same bytes again are 200, other bytes 409; publish after works', async () => {
    const first = await uploadPackage(s, 'Contoso', 'Monitor', '2.0.0.0', zip);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const sha = createHash('sha256').update(zip).digest('hex');
    assert.equal(first.body.package.sha256, sha);
    assert.ok(existsSync(join(s.dir, 'packages', sha)));
    assert.equal((await uploadPackage(s, 'Contoso', 'Monitor', '2.0.0.0', zip)).status, 200);
    const other = await handlerZip('other');
    const conflict = await uploadPackage(s, 'Contoso', 'Monitor', '2.0.0.0', other);
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'PackageAlreadyUploaded');
    const pub = await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/2.0.0.0', { os: ['linux'], digest: `sha256:${sha}` }, PUBLISHER_TOKEN);
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    const shown = await call(s.url, 'GET', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/2.0.0.0');
    assert.equal(shown.body.package.sha256, sha);
    // Package first, then a version published with another digest: 409, the version is not published.
    assert.equal((await uploadPackage(s, 'Contoso', 'Monitor', '3.0.0.0', zip)).status, 201);
    const wrong = await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/3.0.0.0', { os: ['linux'], digest: `sha256:${'c'.repeat(64)}` }, PUBLISHER_TOKEN);
    assert.equal(wrong.status, 409);
    assert.equal(wrong.body.error.code, 'DigestMismatch');
    assert.equal((await call(s.url, 'GET', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/3.0.0.0')).status, 404);
    const rec = await call(s.url, 'GET', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/2.0.0.0/package');
    assert.equal(rec.body.package.sha256, sha);
  });

  test('a tampered or missing signature document is refused and nothing is stored', async () => {
    const bytes = await handlerZip('tampered');
    const doc = docFor('2.1.0.0', bytes);
    const cases: Array<[string, Buffer, object | null, number, string]> = [
      ['no document', bytes, null, 400, 'MissingPackageSignature'],
      ['bytes changed after signing', Buffer.concat([bytes, Buffer.from('x')]), doc, 400, 'PackageSignatureMismatch'],
      ['digest changed in the document', bytes, { ...doc, sha256: 'a'.repeat(64) }, 400, 'PackageSignatureMismatch'],
      ['size changed in the document', bytes, { ...doc, size: bytes.length + 1 }, 400, 'PackageSignatureMismatch'],
      ['another name', bytes, { ...doc, name: 'Contoso.Other' }, 400, 'PackageSignatureMismatch'],
      ['another version', bytes, { ...doc, version: '2.2.0.0' }, 400, 'PackageSignatureMismatch'],
      ['not a signature', bytes, { ...doc, signature: { alg: 'rsa', keyId: 'k', sig: 'x' } }, 400, 'InvalidPackageSignature'],
    ];
    for (const [what, body, d, status, code] of cases) {
      const r = await upload('2.1.0.0', body, d);
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(r.json.error.code, code, what);
    }
    assert.equal((await upload('2.1.0.0', bytes, doc, 'text/plain')).status, 415);
    assert.equal((await call(s.url, 'GET', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/2.1.0.0/package')).status, 404, 'nothing stored');
    const pub = await call(s.url, 'PUT', '/phasewise/publishers/Contoso/extensionTypes/Monitor/versions/2.1.0.0', { os: ['linux'], digest: `sha256:${'b'.repeat(64)}` }, PUBLISHER_TOKEN);
    assert.equal(pub.status, 201);
    const mismatch = await upload('2.1.0.0', bytes, doc);
    assert.equal(mismatch.status, 409, 'the digest the version was published with wins');
    assert.equal(mismatch.json.error.code, 'DigestMismatch');
  });

  test('agents download with Range requests (206, 416), ETag and HEAD; without a certificate 401', async () => {
    const sha = createHash('sha256').update(zip).digest('hex');
    const path = `/v1/packages/${sha}`;
    const whole = await a.call('GET', path);
    assert.equal(whole.status, 200);
    assert.equal(Number(whole.headers['content-length']), zip.length);
    assert.equal(whole.headers.etag, `"${sha}"`);
    const part = await a.call('GET', path, undefined, { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 10-19/${zip.length}`);
    assert.equal(Number(part.headers['content-length']), 10);
    const tail = await a.call('GET', path, undefined, { range: 'bytes=-5' });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers['content-range'], `bytes ${zip.length - 5}-${zip.length - 1}/${zip.length}`);
    const beyond = await a.call('GET', path, undefined, { range: `bytes=${zip.length}-` });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers['content-range'], `bytes */${zip.length}`);
    const head = await a.call('HEAD', path);
    assert.equal(head.status, 200);
    assert.equal(head.text, '');
    assert.equal(Number(head.headers['content-length']), zip.length);
    assert.equal((await a.call('GET', path, undefined, { 'if-none-match': `"${sha}"` })).status, 304);
    assert.equal((await a.call('GET', `/v1/packages/${'0'.repeat(64)}`)).status, 404);
    assert.equal((await rawRequest(s.url, 'GET', path)).status, 401);
  });
});
