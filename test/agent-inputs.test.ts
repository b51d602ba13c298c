/**
 * Inputs the agent bounds before they reach its state: goal states (size, depth, shape, names that
 * become paths), status files, zip entry names; and the local CLI (policy, trusted keys, status,
 * package build) run as the real `phasewise` process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import yauzl from 'yauzl';
import { GoalStateError, parseGoalState } from '../src/agent/goal-state-schema.js';
import { parseStatusDocument, readHeartbeat } from '../src/agent/handler-files.js';
import { parseStartRequests } from '../src/agent/imds-server.js';
import { unsafeEntryReason } from '../src/agent/safe-unzip.js';
import { goalStatePath } from '../src/agent/layout.js';
import { LIMITS } from '../src/protocol/agent-wire.js';
import { extension, goal, handlerScript, manifest, tempDirs } from './helpers/agent-kit.js';
import { cli, CLI } from './helpers/cli.js';

const ref = { uris: ['https://localhost:1/v1/packages/x'], sha256: 'a'.repeat(64), size: 10, signature: { alg: 'ed25519' as const, keyId: 'k1', sig: 'AA==' } };
const ok = () => goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
const parse = (v: unknown) => parseGoalState(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));

test('a valid goal state parses', () => {
  assert.equal(parse(ok()).extensions[0]?.version, '1.0.0');
});

test('publicSettings reach the handler key for key: a "__proto__" key stays a key (it vanished into the copy\'s prototype)', () => {
  const text = JSON.stringify(ok()).replace('"publicSettings":{"level":1}', '"publicSettings":{"__proto__":{"polluted":1},"level":1}');
  const settings = parse(text).extensions[0]!.settings.publicSettings!;
  assert.equal(JSON.stringify(settings), '{"__proto__":{"polluted":1},"level":1}');
  assert.equal(Object.getPrototypeOf(settings), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const gs = parse(ok());
  assert.deepEqual(gs.extensions[0]!.settings.publicSettings, { level: 1 });
});

test('malformed or too-large goal states are refused with a sentence naming the problem', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{"schemaVersion":', /not JSON/],
    ['too large', 'x'.repeat(LIMITS.goalStateBytes + 1), /over the 1048576-byte limit/],
    ['too deep', { ...ok(), extra: JSON.parse('['.repeat(100) + ']'.repeat(100)) }, /nests deeper than 64/],
    ['wrong schema', { ...ok(), schemaVersion: '2.0' }, /at schemaVersion/],
    ['path in a name', { ...ok(), extensions: [{ ...ok().extensions[0], name: '../../etc' }] }, /at extensions\.0\.name/],
    ['path in a version', { ...ok(), extensions: [{ ...ok().extensions[0], version: '1.0/../../x' }] }, /at extensions\.0\.version/],
    ['bad key id', { ...ok(), extensions: [{ ...ok().extensions[0], package: { ...ref, signature: { ...ref.signature, keyId: '../k' } } }] }, /signature\.keyId/],
    ['a file: package URI', { ...ok(), extensions: [{ ...ok().extensions[0], package: { ...ref, uris: ['file:///etc/shadow'] } }] }, /package\.uris\.0: expected an https:\/\/ URI/],
    ['an http: package URI', { ...ok(), extensions: [{ ...ok().extensions[0], package: { ...ref, uris: [ref.uris[0], 'http://mirror/x.zip'] } }] }, /package\.uris\.1: expected an https/],
    ['huge package', { ...ok(), extensions: [{ ...ok().extensions[0], package: { ...ref, size: LIMITS.packageBytes + 1 } }] }, /package\.size/],
    ['too many extensions', { ...ok(), extensions: Array.from({ length: 65 }, () => ok().extensions[0]) }, /at extensions/],
    ['duplicate handler', { ...ok(), extensions: [ok().extensions[0], ok().extensions[0]] }, /lists Contoso\.Test\.Agent twice/],
  ];
  for (const [what, v, re] of cases) {
    assert.throws(() => parse(v), (e: Error) => e instanceof GoalStateError && re.test(e.message), what);
  }
});

test('status documents: shape required, unknown status is error, messages cut when the file is over 128 KiB', () => {
  assert.throws(() => parseStatusDocument({ status: {} }, false), /\[0\]\.status\.status/);
  assert.equal(parseStatusDocument([{ status: { status: 'weird', code: 3 } }], false).status, 'error');
  const long = 'm'.repeat(50_000);
  const substatus = [null, { status: 'success', formattedMessage: { lang: 'en', message: long } }];
  const cut = parseStatusDocument([{ status: { status: 'success', formattedMessage: { lang: 'en-US', message: long }, substatus } }], true);
  assert.equal(cut.formattedMessage!.message.length, 1025);
  assert.equal(cut.substatus!.length, 1, 'null substatus entries are tolerated');
  assert.equal(cut.substatus![0]!.formattedMessage!.message.length, 10 * 1024 + 1);
});

test('zip entry names: .., absolute, backslash and symlink refused; ordinary files and folders allowed', () => {
  assert.match(unsafeEntryReason('a/../../b', 0)!, /"\.\." segment/);
  assert.match(unsafeEntryReason('/etc/passwd', 0)!, /absolute/);
  assert.match(unsafeEntryReason('C:/x', 0)!, /absolute/);
  assert.match(unsafeEntryReason('a\\b', 0)!, /backslash/);
  assert.match(unsafeEntryReason('bin/link', (0o120777 << 16) >>> 0)!, /symbolic link/);
  assert.equal(unsafeEntryReason('bin/handler.sh', (0o100755 << 16) >>> 0), null);
  assert.equal(unsafeEntryReason('bin/', (0o040755 << 16) >>> 0), null);
});

test('StartRequests bodies are bounded and checked against the events the machine was told about', () => {
  const known = new Set(['e1']);
  assert.deepEqual(parseStartRequests('{"StartRequests":[{"EventId":"e1"}]}', known), ['e1']);
  assert.match(parseStartRequests('nope', known) as string, /not JSON/);
  assert.match(parseStartRequests('{"StartRequests":[]}', known) as string, /needs StartRequests/);
  assert.match(parseStartRequests('{"StartRequests":[{"EventId":"e2"}]}', known) as string, /unknown EventId/);
  assert.match(parseStartRequests(JSON.stringify({ StartRequests: Array(101).fill({ EventId: 'e1' }) }), known) as string, /at most 100/);
});

test('agent config: set/get/list in agent-config.json; bad keys and values exit 2 and change nothing', async () => {
  const d = tempDirs();
  const args = ['--config-dir', d.config, '--lib-dir', d.lib];
  assert.equal((await cli('agent', 'config', 'set', 'extensions.allowlist', 'Microsoft.Azure.Monitor/AzureMonitorLinuxAgent,Contoso.Test.Agent', ...args)).status, 0);
  assert.equal((await cli('agent', 'config', 'set', 'extensions.blocklist', 'Contoso.Test.Agent', ...args)).status, 0);
  const get = await cli('agent', 'config', 'get', 'extensions.allowlist', ...args);
  assert.equal(get.stdout.trim(), 'Microsoft.Azure.Monitor.AzureMonitorLinuxAgent,Contoso.Test.Agent');
  const before = readFileSync(join(d.config, 'agent-config.json'), 'utf8');
  const bad = await cli('agent', 'config', 'set', 'extensions.enabled', 'maybe', ...args);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /takes true or false/);
  const unknown = await cli('agent', 'config', 'set', 'extensions.color', 'x', ...args);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown setting "extensions\.color"/);
  const badName = await cli('agent', 'config', 'set', 'extensions.blocklist', '../etc', ...args);
  assert.equal(badName.status, 2);
  assert.equal(readFileSync(join(d.config, 'agent-config.json'), 'utf8'), before);
  const list = await cli('agent', 'config', 'list', ...args);
  assert.match(list.stdout, /extensions\.enabled = true\nextensions\.allowlist = .*\nextensions\.blocklist = Contoso\.Test\.Agent/);
});

test('agent run and connect: a bad --imds-port or --server is a usage mistake (exit 2) said first, before the enrollment is looked at; nothing is written', async () => {
  const d = tempDirs();
  const dirs = ['--config-dir', d.config, '--lib-dir', d.lib, '--log-dir', d.log];
  for (const port of ['99999', '-1', '1e3', 'x']) {
    const r = await cli('agent', 'run', ...dirs, '--imds-port', port);
    assert.equal(r.status, 2, `--imds-port ${port}: ${r.stderr}`);
    assert.match(r.stderr, /^phasewise agent run: --imds-port must be 0-65535, not "/, port);
  }
  const servers: Array<[string, RegExp]> = [
    ['http://localhost:1', /--server must be an https:\/\/ URL, not http:\/\//],
    ['localhost:8443', /--server must be an https:\/\/ URL/],
    ['nonsense', /is not a URL/],
  ];
  for (const [server, why] of servers) {
    const r = await cli('agent', 'connect', ...dirs.slice(0, 4), '--server', server, '--enrollment-token', 't');
    assert.equal(r.status, 2, `--server ${server}: ${r.stderr}`);
    assert.match(r.stderr, why, server);
  }
  assert.equal(existsSync(join(d.lib, '.agent')), false, 'no state written: no lock, no key');
});

test('a bad value of 100,000 characters is quoted by its start: the sentence saying what is wrong reaches the user (it came after the whole value)', async () => {
  const d = tempDirs();
  const args = ['--config-dir', d.config, '--lib-dir', d.lib];
  const huge = 'a'.repeat(100_000);
  const cases: Array<[string[], RegExp]> = [
    [['config', 'set', 'extensions.allowlist', huge, ...args], /is not an extension name/],
    [['config', 'set', 'extensions.enabled', huge, ...args], /^phasewise agent config set: extensions\.enabled takes true or false, not "a{80}"… \(100000 characters\)$/],
    [['config', 'set', huge, 'x', ...args], /unknown setting "a{80}"… \(100000 characters\); the settings are/],
    [['trust', 'add', '--key-id', huge, '--file', join(d.root, 'k.pub'), ...args], /^phasewise agent trust add: key id "a{80}"… \(100000 characters\) is not valid/],
    [['run', ...args, '--imds-port', huge], /--imds-port must be 0-65535, not "a{80}"… \(100000 characters\)$/],
  ];
  for (const [argv, why] of cases) {
    const r = await cli('agent', ...argv);
    assert.equal(r.status, 2, `${argv.slice(0, 3).join(' ')}: ${r.stderr.slice(-300)}`);
    assert.ok(r.stderr.length < 400, `${argv.slice(0, 3).join(' ')}: ${r.stderr.length} characters on stderr`);
    assert.match(r.stderr.trim(), why);
  }
});

test('an empty --config-dir, --lib-dir or --log-dir (or its variable) is a usage mistake, not the current folder', async () => {
  const d = tempDirs();
  const cwd = join(d.root, 'cwd');
  mkdirSync(cwd);
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['config', 'set', 'extensions.enabled', 'false', '--config-dir', ''], {}, /--config-dir is empty; name a folder/],
    [['status', '--lib-dir', '', '--config-dir', d.config], {}, /--lib-dir is empty/],
    [['run', '--lib-dir', d.lib, '--config-dir', d.config, '--log-dir', ''], {}, /--log-dir is empty/],
    [['trust', 'list', '--lib-dir', d.lib], { PHASEWISE_AGENT_CONFIG_DIR: '' }, /\$PHASEWISE_AGENT_CONFIG_DIR is empty/],
  ];
  for (const [argv, env, why] of cases) {
    const r = spawnSync(process.execPath, [CLI, 'agent', ...argv], { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
  assert.deepEqual(readdirSync(cwd), [], 'nothing written to the current folder');
});

test('agent trust: add validates an Ed25519 public key; list; remove; agent status prints the local state', async () => {
  const d = tempDirs();
  const args = ['--config-dir', d.config, '--lib-dir', d.lib];
  const ed = generateKeyPairSync('ed25519');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  writeFileSync(join(d.root, 'ed.pem'), ed.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(d.root, 'rsa.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(d.root, 'junk.pem'), 'hello');
  const add = await cli('agent', 'trust', 'add', '--key-id', 'contoso-2026', '--file', join(d.root, 'ed.pem'), ...args);
  assert.equal(add.status, 0, add.stderr);
  const rsaAdd = await cli('agent', 'trust', 'add', '--key-id', 'rsa', '--file', join(d.root, 'rsa.pem'), ...args);
  assert.equal(rsaAdd.status, 1);
  assert.match(rsaAdd.stderr, /is a rsa key; publisher keys must be Ed25519/);
  const junk = await cli('agent', 'trust', 'add', '--key-id', 'junk', '--file', join(d.root, 'junk.pem'), ...args);
  assert.match(junk.stderr, /not a PEM public key/);
  const badId = await cli('agent', 'trust', 'add', '--key-id', '../x', '--file', join(d.root, 'ed.pem'), ...args);
  assert.equal(badId.status, 2);
  assert.equal((await cli('agent', 'trust', 'list', ...args)).stdout, 'contoso-2026\n');
  const status = await cli('agent', 'status', ...args);
  assert.match(status.stdout, /not enrolled\nextensions: enabled.*\ntrusted keys: contoso-2026/);
  assert.equal((await cli('agent', 'trust', 'remove', 'contoso-2026', ...args)).status, 0);
  assert.equal((await cli('agent', 'trust', 'list', ...args)).stdout, '');
});

test('agent status shows the goal state with its server epoch and the epochs left behind (docs/agent.md "Goal state order")', async () => {
  const d = tempDirs();
  const args = ['--config-dir', d.config, '--lib-dir', d.lib];
  assert.match((await cli('agent', 'status', ...args)).stdout, /\ngoal state: \(none yet\)\n/);
  mkdirSync(join(d.lib, '.agent'), { recursive: true });
  writeFileSync(goalStatePath(d), JSON.stringify({ goalState: { ...goal(3, []), epoch: 'e-restored' }, etag: '"3"', pastEpochs: ['e-old', 'e-older'] }));
  const text = await cli('agent', 'status', ...args);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /\ngoal state: 3 \(server epoch e-restored; moved on from e-old, e-older\)\n/);
  const json = JSON.parse((await cli('agent', 'status', '--json', ...args)).stdout) as { goalStateId: number; goalStateEpoch: string | null; pastEpochs: string[] };
  assert.deepEqual([json.goalStateId, json.goalStateEpoch, json.pastEpochs], [3, 'e-restored', ['e-old', 'e-older']]);
  writeFileSync(goalStatePath(d), JSON.stringify({ goalState: goal(4, []), etag: '"4"' }));
  assert.match((await cli('agent', 'status', ...args)).stdout, /\ngoal state: 4 \(the server sends no epoch\)\n/);
  assert.equal(JSON.parse((await cli('agent', 'status', '--json', ...args)).stdout).goalStateEpoch, null);
});

test('package build zips a handler folder with its modes; refuses a folder without HandlerManifest.json or with a link', async () => {
  const d = tempDirs();
  const dir = join(d.root, 'handler');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  writeFileSync(join(dir, 'HandlerManifest.json'), manifest({}));
  writeFileSync(join(dir, 'bin/handler.sh'), handlerScript(d.callLog, {}), { mode: 0o755 });
  const out = join(d.root, 'h.zip');
  const r = await cli('package', 'build', '--dir', dir, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const names = await new Promise<string[]>((resolve, reject) =>
    yauzl.open(out, { lazyEntries: false }, (err, zip) => {
      if (err) return reject(err);
      const n: string[] = [];
      zip.on('entry', (e: yauzl.Entry) => n.push(`${e.fileName}:${((e.externalFileAttributes >>> 16) & 0o777).toString(8)}`));
      zip.on('end', () => resolve(n.sort()));
    }),
  );
  assert.deepEqual(names, ['HandlerManifest.json:644', 'bin/handler.sh:755']);
  assert.equal((await cli('package', 'build', '--dir', dir, '--out', out)).status, 1, 'never overwrites');
  const empty = join(d.root, 'empty');
  mkdirSync(empty);
  const r2 = await cli('package', 'build', '--dir', empty, '--out', join(d.root, 'e.zip'));
  assert.match(r2.stderr, /no HandlerManifest\.json at its root/);
  symlinkSync('/etc/passwd', join(dir, 'bin/passwd'));
  const r3 = await cli('package', 'build', '--dir', dir, '--out', join(d.root, 'l.zip'));
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /bin\/passwd is a symbolic link/);
});

test('heartbeat.log: Ready/NotReady from the handler, Unresponsive when older than 600 s, missing is an error', () => {
  const d = tempDirs();
  const hb = join(d.lib, 'heartbeat.log');
  assert.equal(readHeartbeat(d.lib, Date.now()).message, 'Failed to get heart beat file');
  writeFileSync(hb, JSON.stringify([{ heartbeat: { status: 'ready', code: 0, formattedMessage: { lang: 'en-US', message: 'serving' } } }]));
  assert.deepEqual(readHeartbeat(d.lib, Date.now()), { status: 'Ready', code: 0, message: 'serving' });
  const old = (Date.now() - 601_000) / 1000;
  utimesSync(hb, old, old);
  assert.equal(readHeartbeat(d.lib, Date.now()).status, 'Unresponsive');
  writeFileSync(hb, '[{}]');
  assert.match(readHeartbeat(d.lib, Date.now()).message, /heartbeat file is invalid/);
});
