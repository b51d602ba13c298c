/**
 * Bad input on the machine: packages that do not check out, zips that try to escape, handlers that
 * hang, fail, write garbage or delete themselves, a server that fails or cuts the download, local policy.
 * Each is reported with a clear message and the machine keeps a working version.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convergeOnce } from '../src/agent/converge.js';
import { runStep } from '../src/agent/handler-process.js';
import { setPolicy } from '../src/agent/local-policy.js';
import { signPackage } from '../src/protocol/package-signature.js';
import { calls, extension, goal, HANDLER, handlerScript, handlerZip, manifest, newPublisher } from './helpers/agent-kit.js';
import { PackageServer, packageRef, patchName, runtime, sleep, tempDirs, trust, zipOf } from './helpers/agent-kit.js';

const server = new PackageServer();
const publisher = newPublisher();
before(() => server.start());
after(() => server.stop());

async function withA() {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-a' })]));
  assert.equal(rt.journal.state.extensions[HANDLER]!.state, 'Enabled');
  return { dirs, rt, a };
}

/** Dead, or a zombie nobody reaps (a container's init may not). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ')'));
}

const last = (rt: Awaited<ReturnType<typeof withA>>['rt']) => rt.journal.state.extensions[HANDLER]!.history[0]!;

test('a package with a wrong signature, an unknown key, a wrong digest or size is rejected; nothing of it runs; A keeps running', async () => {
  const { dirs, rt } = await withA();
  const zipB = await handlerZip(dirs.callLog);
  const good = packageRef(server, publisher, HANDLER, '1.1.0', zipB);
  const other = newPublisher('rogue');
  const cases: Array<[string, typeof good, RegExp]> = [
    [
      'wrong signature',
      { ...good, signature: signPackage(other.privatePem, publisher.keyId, HANDLER, '1.1.0', good.sha256, good.size) },
      /signature does not verify with trusted key test-publisher/,
    ],
    ['signed for another version', { ...good, signature: signPackage(publisher.privatePem, publisher.keyId, HANDLER, '9.9.9', good.sha256, good.size) }, /signature does not verify/],
    ['unknown key', { ...good, signature: signPackage(other.privatePem, 'rogue', HANDLER, '1.1.0', good.sha256, good.size) }, /key rogue, which this machine does not trust/],
    ['wrong digest', { ...good, sha256: 'f'.repeat(64) }, /HTTP 404|SHA-256/],
  ];
  let seq = 2;
  for (const [what, ref, message] of cases) {
    await convergeOnce(rt, goal(seq, [extension({ version: '1.1.0', package: ref, operationId: `op-${what}`, settingsSeqNo: seq })]));
    seq++;
    const o = last(rt);
    assert.ok(o.outcome === 'rejected' || o.outcome === 'failed', `${what}: ${o.outcome}`);
    assert.match(o.message, message, what);
  }
  // a digest that names a real blob but not this package's: served, then refused by its digest
  const tampered = Buffer.from(zipB);
  tampered[tampered.length - 30] = tampered[tampered.length - 30]! ^ 0xff;
  const t = server.add(tampered);
  await convergeOnce(rt, goal(9, [extension({ version: '1.1.0', package: { ...good, uris: [t.uri] }, operationId: 'op-tampered', settingsSeqNo: 9 })]));
  assert.equal(last(rt).outcome, 'rejected');
  assert.match(last(rt).message, /has SHA-256 [0-9a-f]+, the goal state says/);
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[1]), ['1.0.0', '1.0.0'], 'nothing of 1.1.0 ran');
  assert.ok(!existsSync(join(dirs.lib, `${HANDLER}-1.1.0`)));
  assert.equal(rt.journal.state.extensions[HANDLER]!.state, 'Enabled');
});

test('a server sending more bytes than the package size is cut off and the package rejected', async () => {
  const { rt, dirs } = await withA();
  const ref = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog));
  server.faults.oversize = true;
  try {
    await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: ref, operationId: 'op-big', settingsSeqNo: 2 })]));
  } finally {
    server.faults.oversize = false;
  }
  assert.equal(last(rt).outcome, 'rejected');
  assert.match(last(rt).message, /more than the package's \d+ bytes/);
});

test('zips with ../x, an absolute path, a symlink entry or an entry under a file are refused before anything runs', async () => {
  const { dirs, rt } = await withA();
  const base = { 'HandlerManifest.json': manifest({}), 'bin/handler.sh': handlerScript(dirs.callLog, {}) };
  const bad: Array<[string, Buffer, RegExp]> = [
    ['dotdot', patchName(await zipOf({ ...base, 'aa/evil.sh': 'x' }), 'aa/evil.sh', '../evil.sh'), /invalid relative path: \.\.\/evil\.sh|"\.\." segment/],
    ['absolute', patchName(await zipOf({ ...base, 'xtmp/evil.sh': 'x' }), 'xtmp/evil.sh', '/tmp/evil.sh'), /absolute path/],
    ['symlink', await zipOf({ ...base, 'bin/link': null }), /symbolic link/],
    // `bin/x` a file, then `bin/x/y` under it: mkdir fails; this used to throw out of the unzip and end the agent.
    ['under-a-file', await zipOf({ ...base, 'bin/x': 'a', 'bin/x/y': 'b' }), /cannot unpack the package: E(EXIST|NOTDIR)/],
  ];
  let seq = 2;
  for (const [what, zip, message] of bad) {
    const ref = packageRef(server, publisher, HANDLER, '1.1.0', zip);
    await convergeOnce(rt, goal(seq, [extension({ version: '1.1.0', package: ref, operationId: `op-${what}`, settingsSeqNo: seq })]));
    seq++;
    assert.equal(last(rt).outcome, 'rejected', what);
    assert.match(last(rt).message, message, what);
    assert.ok(!existsSync(join(dirs.lib, `${HANDLER}-1.1.0`)), what);
  }
  assert.ok(!existsSync(join(dirs.lib, 'evil.sh')));
  assert.equal(calls(dirs.callLog).length, 2);
  assert.equal(rt.journal.state.extensions[HANDLER]!.installedVersion, '1.0.0');
});

test('a manifest command holding a NUL byte is error 1003 naming it; A stays (spawn threw, the pass failed, and the step was reported "killed from outside twice")', async () => {
  const { dirs, rt } = await withA();
  const text = JSON.parse(manifest({})) as Array<{ handlerManifest: Record<string, unknown> }>;
  text[0]!.handlerManifest.installCommand = './bin/handler.sh install\u0000; rm -rf /';
  const zip = await zipOf({ 'HandlerManifest.json': JSON.stringify(text), 'bin/handler.sh': handlerScript(dirs.callLog, {}) });
  const b = packageRef(server, publisher, HANDLER, '1.1.0', zip);
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-nul', settingsSeqNo: 2 })]));
  assert.notEqual(last(rt).outcome, 'succeeded');
  assert.match(last(rt).message, /HandlerManifest\.json: installCommand holds a NUL byte/);
  assert.doesNotMatch(last(rt).message, /killed from outside/);
  assert.equal(rt.journal.state.extensions[HANDLER]!.installedVersion, '1.0.0');
  assert.equal(rt.journal.state.extensions[HANDLER]!.lastError?.code, 1003);
  assert.equal(calls(dirs.callLog).filter((c) => c.includes('install')).length, 1, 'only A\'s install ran');
});

test('runStep: a command spawn refuses (a NUL byte in its environment) ends failed at once saying why, and is not started again', async () => {
  const dirs = tempDirs();
  const rt = runtime(dirs);
  const op: Parameters<typeof runStep>[3] = { operationId: 'op-env', steps: {} };
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', BAD: 'a\u0000b' };
  const spec = { key: 'install@1.0.0', command: 'echo ran', cwd: dirs.root, env, timeoutMs: 10_000, logFile: join(dirs.root, 'cmd.log') };
  const t0 = Date.now();
  const r = await runStep(dirs, rt.journal, HANDLER, op, spec, rt);
  assert.ok(Date.now() - t0 < 2000, 'at once, not after the 500 ms "gone" wait twice');
  assert.equal(r.exitCode, null);
  assert.equal(r.timedOut, false);
  assert.match(r.output, /^the command could not be started: .*null bytes/);
  assert.equal(op.steps['install@1.0.0']!.state, 'done');
  assert.equal((await runStep(dirs, rt.journal, HANDLER, op, spec, rt)).output, r.output, 'done: its result, nothing run');
  assert.ok(!rt.lines.some((l) => /started: echo ran|running it again/.test(l)), rt.lines.join('\n'));
});

test('a hanging handler is killed with its children at the timeout (1011) and A is restored', async () => {
  const { dirs, rt } = await withA();
  rt.timeoutsMs.install = 800;
  const pidFile = join(dirs.root, 'child.pid');
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { install: `sleep 60 & echo $! > '${pidFile}'; wait` }));
  const t0 = Date.now();
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-hang', settingsSeqNo: 2 })]));
  assert.ok(Date.now() - t0 < 8000);
  assert.equal(last(rt).outcome, 'rolledBack');
  assert.match(last(rt).message, /install of 1\.1\.0 timed out after 1 s; its process group was killed/);
  const child = Number(readFileSync(pidFile, 'utf8'));
  await sleep(100);
  assert.ok(gone(child), 'the handler\'s child was killed with the group');
  assert.equal(rt.journal.state.extensions[HANDLER]!.lastError?.code, 1011);
});

test('a malformed and a huge (>1 MiB) status file are error 1012 and roll back; over 128 KiB is trimmed', async () => {
  const { dirs, rt } = await withA();
  const malformed = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { enable: 'echo "{not json" > status/$SEQ.status' }));
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: malformed, operationId: 'op-bad-status', settingsSeqNo: 2 })]));
  assert.equal(last(rt).outcome, 'rolledBack');
  assert.match(last(rt).message, /error 1012: the handler's status file status\/2\.status is invalid/);
  const huge = packageRef(server, publisher, HANDLER, '1.2.0', await handlerZip(dirs.callLog, { enable: 'head -c 1100000 /dev/zero | tr "\\0" x > status/$SEQ.status' }));
  await convergeOnce(rt, goal(3, [extension({ version: '1.2.0', package: huge, operationId: 'op-huge-status', settingsSeqNo: 3 })]));
  assert.equal(last(rt).outcome, 'rolledBack');
  assert.match(last(rt).message, /1012.*over the 1048576-byte limit/);
  const { readHandlerStatus } = await import('../src/agent/handler-files.js');
  const base = join(dirs.lib, `${HANDLER}-1.0.0`);
  const long = 'y'.repeat(200 * 1024);
  writeFileSync(join(base, 'status/77.status'), JSON.stringify([{ status: { status: 'success', code: 0, formattedMessage: { lang: 'en-US', message: long } } }]));
  const read = readHandlerStatus(base, 77);
  assert.equal(read.body.status, 'success');
  assert.ok(read.body.formattedMessage!.message.length <= 1025, 'message cut to 1 KiB');
  assert.equal(readHandlerStatus(base, 78).body.status, 'transitioning', 'no file yet = transitioning');
});

test('a handler exiting non-zero on first install fails with its code and output; nothing is left enabled', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { enable: 'echo "no disk" >&2; exit 12' }));
  await convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]));
  const o = rt.journal.state.extensions[HANDLER]!.history[0]!;
  assert.equal(o.outcome, 'failed');
  assert.match(o.message, /enable of 1\.0\.0 failed with exit code 12: no disk/);
  assert.equal(rt.journal.state.extensions[HANDLER]!.lastError?.code, 1009);
});

test('a handler that deletes its own folder during enable is reported and A is reinstalled from the cache', async () => {
  const { dirs, rt } = await withA();
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog, { enable: 'rm -rf "$AZURE_GUEST_AGENT_EXTENSION_PATH"' }));
  await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-rm', settingsSeqNo: 2 })]));
  assert.equal(last(rt).outcome, 'rolledBack');
  assert.match(last(rt).message, /folder of 1\.1\.0 disappeared/);
  assert.equal(rt.journal.state.extensions[HANDLER]!.installedVersion, '1.0.0');
  assert.ok(existsSync(join(dirs.lib, `${HANDLER}-1.0.0/HandlerManifest.json`)));
});

test('a server answering 503 is retried with backoff; a download cut mid-way resumes with Range', async () => {
  const { dirs, rt } = await withA();
  const zip = await handlerZip(dirs.callLog, { files: { 'payload.bin': randomBytes(150_000).toString('base64') } });
  const b = packageRef(server, publisher, HANDLER, '1.1.0', zip);
  server.faults.fail5xx = 2;
  server.faults.cutAfterBytes = 1000;
  server.faults.cuts = 1;
  server.requests = [];
  const g = goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-flaky', settingsSeqNo: 2 })]);
  for (let pass = 0; pass < 10 && last(rt).operationId !== 'op-flaky'; pass++) {
    const r = await convergeOnce(rt, g);
    if (r.retryAt) await sleep(Math.max(0, r.retryAt - Date.now()) + 5);
  }
  assert.equal(last(rt).operationId, 'op-flaky');
  assert.equal(last(rt).outcome, 'succeeded');
  const ranges = server.requests.map((r) => r.range).filter(Boolean);
  assert.ok(ranges.some((r) => /^bytes=[1-9]\d*-$/.test(r!)), `resumed with Range: ${JSON.stringify(server.requests)}`);
});

test('a server down for longer keeps the operation open (no outcome) and retries on a later pass', async () => {
  const { dirs, rt } = await withA();
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog));
  server.faults.fail5xx = 1000;
  const g = goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-down', settingsSeqNo: 2 })]);
  const r = await convergeOnce(rt, g);
  server.faults.fail5xx = 0;
  assert.ok(r.retryAt !== null);
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.history[0]?.operationId, 'op-a', 'no outcome yet');
  assert.match(rec.lastError!.message, /HTTP 503.*retrying/);
  await sleep(Math.max(0, r.retryAt! - Date.now()) + 10);
  await convergeOnce(rt, g);
  assert.equal(last(rt).outcome, 'succeeded');
});

test('an operation waiting for its download is dropped when the goal state no longer lists the extension, which is removed', async () => {
  const { dirs, rt } = await withA();
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog));
  server.faults.fail5xx = 1000;
  try {
    await convergeOnce(rt, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-down', settingsSeqNo: 2 })]));
    assert.equal(rt.journal.state.extensions[HANDLER]!.op?.operationId, 'op-down');
    await convergeOnce(rt, goal(3, []));
  } finally {
    server.faults.fail5xx = 0;
  }
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]), ['install', 'enable', 'disable', 'uninstall']);
  assert.equal(rt.journal.state.extensions[HANDLER], undefined);
});

test('local policy: a blocklisted extension is blocked (1009), nothing runs; allowed again it runs; the blocklist wins', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  setPolicy(dirs, 'extensions.allowlist', `${HANDLER},Other.Pub`);
  setPolicy(dirs, 'extensions.blocklist', HANDLER);
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const g = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
  await convergeOnce(rt, g);
  const rec = rt.journal.state.extensions[HANDLER]!;
  assert.equal(rec.history[0]?.outcome, 'blocked');
  assert.equal(rec.state, 'Blocked');
  assert.deepEqual(rec.lastError, { code: 1009, message: `${HANDLER} is on this machine's extension blocklist; nothing ran` });
  assert.equal(calls(dirs.callLog).length, 0);
  setPolicy(dirs, 'extensions.blocklist', '');
  await convergeOnce(rt, g);
  assert.equal(rt.journal.state.extensions[HANDLER]!.state, 'Enabled');
  setPolicy(dirs, 'extensions.enabled', 'false');
  await convergeOnce(rt, goal(2, [extension({ version: '1.0.0', package: ref, operationId: 'op-2', settingsSeqNo: 2 })]));
  assert.match(rt.journal.state.extensions[HANDLER]!.history[0]!.message, /extensions\.enabled=false/);
});

test('removal: uninstall runs disable then uninstall then deletes; a handler absent from the goal state likewise', async () => {
  const { dirs, rt, a } = await withA();
  await convergeOnce(rt, goal(2, [extension({ version: '1.0.0', package: a, operationId: 'op-rm', state: 'uninstall' })]));
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]), ['install', 'enable', 'disable', 'uninstall']);
  assert.ok(!existsSync(join(dirs.lib, `${HANDLER}-1.0.0`)));
  assert.ok(!existsSync(join(dirs.lib, '.agent/packages', `${HANDLER}__1.0.0.zip`)));
  await convergeOnce(rt, goal(3, [extension({ version: '1.0.0', package: a, operationId: 'op-back', settingsSeqNo: 3 })]));
  await convergeOnce(rt, goal(4, []));
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]).slice(4), ['install', 'enable', 'disable', 'uninstall']);
  assert.equal(rt.journal.state.extensions[HANDLER], undefined);
});

test('dependency levels: entries run level by level (0, 1, 2), whatever their order in the goal state', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  const ref = async (name: string) => packageRef(server, publisher, name, '1.0.0', await handlerZip(dirs.callLog));
  await convergeOnce(rt, goal(1, [
    extension({ name: 'Contoso.Test.Top', version: '1.0.0', package: await ref('Contoso.Test.Top'), operationId: 'op-top', dependencyLevel: 2 }),
    extension({ version: '1.0.0', package: await ref(HANDLER), operationId: 'op-mid', dependencyLevel: 1 }),
    extension({ name: 'Contoso.Test.Base', version: '1.0.0', package: await ref('Contoso.Test.Base'), operationId: 'op-base', dependencyLevel: 0 }),
  ]));
  const order = calls(dirs.callLog).map((l) => { const [cmd, , , op] = l.split(' '); return `${op} ${cmd}`; });
  assert.deepEqual(order, ['op-base install', 'op-base enable', 'op-mid install', 'op-mid enable', 'op-top install', 'op-top enable']);
});

test('dependency levels: a level-1 extension waits for level 0 and fails with its name when level 0 is not enabled', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const rt = runtime(dirs);
  const base = packageRef(server, publisher, 'Contoso.Test.Base', '1.0.0', await handlerZip(dirs.callLog, { install: 'exit 1' }));
  const dep = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  await convergeOnce(rt, goal(1, [
    extension({ version: '1.0.0', package: dep, operationId: 'op-dep', dependencyLevel: 1 }),
    extension({ name: 'Contoso.Test.Base', version: '1.0.0', package: base, operationId: 'op-base', dependencyLevel: 0 }),
  ]));
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]), ['install']);
  assert.match(rt.journal.state.extensions[HANDLER]!.history[0]!.message, /dependency Contoso\.Test\.Base is not enabled/);
});
