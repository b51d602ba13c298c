/**
 * Real machines end to end: one `phasewise serve` process and twenty `phasewise agent run` processes on
 * loopback, each with its own folders, running shell-script handler packages this test builds and signs
 * with the real `phasewise package` CLI. Releases go through the engine's automatic rollout:
 * - a good release reaches every machine while agents and `serve` are SIGKILLed and restarted;
 * - a release whose install fails is rolled back on the machine (R22, R31 not reached) and stops (R23);
 * - a release whose application probe turns unhealthy is rolled back by the engine's health gate (R21, R25);
 * - a package tampered with on the server is refused by every agent, and nothing of it runs;
 * - a machine's credential cannot read another machine's goal state.
 * Every handler call is appended to the machine's call log: no (command, version, operation) runs twice.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { zipOf } from './helpers/agent-kit.js';
import { CLI, cliWithin, ROOT } from './helpers/cli.js';
import type { CliResult } from './helpers/cli.js';

const MACHINES = 20;
const CA = join(ROOT, 'test/fixtures/tls/cert.pem');
const KEY = join(ROOT, 'test/fixtures/tls/key.pem');
const TOKEN = 'e2e-operator-token-0123456789abcdef';
const ENROLL = 'e2e-enrollment-token-0123456789';
const SUB = 'e2e';
const AV = 'api-version=2024-07-01';
const ARC = `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines`;
const AGENT_TYPE = '/phasewise/publishers/Contoso.Test/extensionTypes/Agent';
const HEALTH_TYPE = '/phasewise/publishers/Microsoft.ManagedServices/extensionTypes/ApplicationHealthLinux';
const HANDLER = 'Contoso.Test.Agent';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The real CLI, allowed two minutes: enrolling makes an RSA key, slow on a loaded machine. */
const cli = (...args: string[]): Promise<CliResult> => cliWithin(120_000, ...args);

type Behaviour = 'good' | 'failinstall' | 'unhealthy' | 'hang';

/**
 * The handler: every call appended to $PW_CALLS; `enable` writes a success status. Behaviours:
 * failinstall (install exits 1), unhealthy (enable marks the machine's app unhealthy until disabled),
 * hang (enable never returns: a child sleeps, and the agent must kill the whole process group).
 */
function handlerScript(behaviour: Behaviour): string {
  const status = `printf '[{"version":1.0,"timestampUTC":"2026-01-01T00:00:00Z","status":{"name":"agent","operation":"Enable",` +
    `"status":"success","code":0,"formattedMessage":{"lang":"en-US","message":"enabled"}}}]' > status/$SEQ.status.tmp` +
    ' && mv status/$SEQ.status.tmp status/$SEQ.status; echo $SEQ > mrseq';
  return [
    '#!/bin/sh',
    'cmd="$1"; V="$AZURE_GUEST_AGENT_EXTENSION_VERSION"; SEQ="$ConfigSequenceNumber"',
    'echo "$cmd $V $SEQ $PHASEWISE_OPERATION_ID" >> "$PW_CALLS"',
    'case "$cmd" in',
    `  install) ${behaviour === 'failinstall' ? 'echo "install failed on purpose" >&2; exit 1' : 'true'} ;;`,
    `  enable) ${behaviour === 'unhealthy' ? 'touch "$PW_UNHEALTHY"; ' : ''}${behaviour === 'hang' ? 'sleep 3600; ' : ''}${status} ;;`,
    `  disable|uninstall) ${behaviour === 'unhealthy' ? 'rm -f "$PW_UNHEALTHY"' : 'true'} ;;`,
    '  *) true ;;',
    'esac',
    '',
  ].join('\n');
}

function manifest(name: string): string {
  const cmd = (c: string) => `./bin/handler.sh ${c}`;
  return JSON.stringify([{ name, version: '1.0', handlerManifest: {
    installCommand: cmd('install'), enableCommand: cmd('enable'), updateCommand: cmd('update'), disableCommand: cmd('disable'),
    uninstallCommand: cmd('uninstall'), rebootAfterInstall: false, reportHeartbeat: false, updateMode: 'UpdateWithInstall',
  } }]);
}

interface Machine { i: number; root: string; lib: string; config: string; log: string; calls: string; unhealthy: string; agent: ChildProcess | null; out: string }

class Rig {
  readonly root = mkdtempSync(join(tmpdir(), 'pw-e2e-'));
  readonly dataDir = join(this.root, 'serve');
  readonly keys = join(this.root, 'keys');
  readonly machines: Machine[] = [];
  port = 0;
  healthPort = 0;
  serve: ChildProcess | null = null;
  serveOut = '';
  private healthServer: http.Server | null = null;

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  async setUp(): Promise<void> {
    this.port = await freePort();
    await this.startHealthServer();
    mkdirSync(this.keys);
    const kg = await cli('package', 'keygen', '--out', this.keys, '--key-id', 'contoso-2026');
    assert.equal(kg.status, 0, kg.stderr);
    writeFileSync(join(this.root, 'scenario.yaml'), [
      'name: e2e', 'start: 2026-12-01T00:00:00Z', 'seed: 7',
      'profiles: { standard: { phaseBake: PT20M, retryArc: PT6H } }',
      'regions: [ { name: eastus, pair: westus }, { name: westus, pair: eastus } ]',
      'catalog:',
      '  - { publisher: Contoso.Test, type: Agent, supportsAutomaticUpgrade: true, versions: [ { version: 1.0.0.0 } ] }',
      '  - { publisher: Microsoft.ManagedServices, type: ApplicationHealthLinux, supportsAutomaticUpgrade: false, versions: [ { version: 2.0.0.0 } ] }',
      'extensions: {}',
      'fleet: {}',
      '',
    ].join('\n'));
    writeFileSync(join(this.root, 'serve.yaml'), JSON.stringify({
      host: '127.0.0.1', port: this.port, dataDir: this.dataDir, scenario: join(this.root, 'scenario.yaml'), clockFactor: 100,
      tls: { cert: CA, key: KEY }, subscriptions: [SUB], logLevel: 'warn', retryAfterSeconds: 0,
      tokens: [{ token: TOKEN, name: 'operator', roles: ['reader', 'contributor', 'publisher'] }],
      enrollmentTokens: [{ token: ENROLL, subscriptionId: SUB, resourceGroup: 'arc', location: 'eastus' }],
      agentPollIntervalSeconds: 1, agentStatusIntervalSeconds: 2,
    }));
    await this.startServe();
    for (let i = 0; i < MACHINES; i++) {
      const root = join(this.root, `m${i}`);
      const m: Machine = { i, root, lib: join(root, 'lib'), config: join(root, 'etc'), log: join(root, 'log'), calls: join(root, 'calls.log'), unhealthy: join(root, 'unhealthy'), agent: null, out: '' };
      for (const d of [m.lib, m.config, m.log]) mkdirSync(d, { recursive: true });
      this.machines.push(m);
    }
  }

  async startServe(): Promise<void> {
    const child = spawn(process.execPath, [CLI, 'serve', '--config', join(this.root, 'serve.yaml')], { env: { ...process.env, NODE_EXTRA_CA_CERTS: CA }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (this.serveOut = (this.serveOut + s).slice(-20_000)));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (this.serveOut = (this.serveOut + s).slice(-20_000)));
    this.serve = child;
    await until('serve to answer', async () => (await this.arm('GET', `/subscriptions/${SUB}/resourceGroups?${AV}`).catch(() => null))?.status === 200, 30_000);
  }

  async killServe(): Promise<void> {
    const s = this.serve!;
    s.kill('SIGKILL');
    await exited(s);
  }

  async enroll(m: Machine): Promise<void> {
    const location = m.i % 2 === 0 ? 'eastus' : 'westus';
    const r = await cli('agent', 'connect', '--server', this.url, '--enrollment-token', ENROLL, '--ca-cert', CA, '--name', `m${m.i}`,
      '--location', location, '--lib-dir', m.lib, '--config-dir', m.config);
    assert.equal(r.status, 0, r.stderr);
    const t = await cli('agent', 'trust', 'add', '--key-id', 'contoso-2026', '--file', join(this.keys, 'contoso-2026.pub'), '--config-dir', m.config);
    assert.equal(t.status, 0, t.stderr);
  }

  startAgent(m: Machine): void {
    const env: NodeJS.ProcessEnv = { ...process.env, PW_CALLS: m.calls, PW_UNHEALTHY: m.unhealthy, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.05', NODE_EXTRA_CA_CERTS: CA };
    const child = spawn(process.execPath, [CLI, 'agent', 'run', '--lib-dir', m.lib, '--config-dir', m.config, '--log-dir', m.log, '--imds-port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (m.out = (m.out + s).slice(-20_000)));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (m.out = (m.out + s).slice(-20_000)));
    m.agent = child;
  }

  async killAgent(m: Machine): Promise<void> {
    const a = m.agent;
    if (!a) return;
    a.kill('SIGKILL');
    await exited(a);
    m.agent = null;
  }

  arm(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    return request(this.url, method, path, body === undefined ? undefined : JSON.stringify(body), { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' });
  }

  /** Builds, signs (with the real CLI) and uploads a handler package, then publishes the version when asked. */
  async release(type: 'agent' | 'health', version: string, behaviour: Behaviour, publish: boolean): Promise<string> {
    const name = type === 'agent' ? HANDLER : 'Microsoft.ManagedServices.ApplicationHealthLinux';
    const zip = await zipOf({ 'HandlerManifest.json': manifest(name), 'bin/handler.sh': handlerScript(behaviour) });
    const file = join(this.root, `${name}-${version}.zip`);
    writeFileSync(file, zip);
    const signed = await cli('package', 'sign', '--key', join(this.keys, 'contoso-2026.pem'), '--key-id', 'contoso-2026', '--name', name, '--version', version, file, '--out', `${file}.sig.json`);
    assert.equal(signed.status, 0, signed.stderr);
    const base = type === 'agent' ? AGENT_TYPE : HEALTH_TYPE;
    const up = await request(this.url, 'PUT', `${base}/versions/${version}/package`, zip, {
      authorization: `Bearer ${TOKEN}`, 'content-type': 'application/zip', 'x-phasewise-package-signature': Buffer.from(readFileSync(`${file}.sig.json`)).toString('base64'),
    });
    assert.ok(up.status === 201 || up.status === 200, `upload ${name} ${version}: ${up.status} ${JSON.stringify(up.body)}`);
    if (publish) {
      const p = await this.arm('PUT', `${base}/versions/${version}`, { os: ['linux'] });
      assert.equal(p.status, 201, JSON.stringify(p.body));
    }
    return createHash('sha256').update(zip).digest('hex');
  }

  async extension(m: Machine, name: string): Promise<any> {
    return (await this.arm('GET', `${ARC}/m${m.i}/extensions/${name}?${AV}&$expand=instanceView`)).body;
  }

  /** What the agent says runs on the machine, from its own persisted state (the truth on the machine). */
  local(m: Machine): { installed: string | null; state: string; history: Array<{ outcome: string; version: string | null; message: string }> } {
    const file = join(m.lib, '.agent/state.json');
    if (!existsSync(file)) return { installed: null, state: 'none', history: [] };
    const s = JSON.parse(readFileSync(file, 'utf8'));
    const ext = s.extensions?.[HANDLER];
    return { installed: ext?.installedVersion ?? null, state: ext?.state ?? 'none', history: ext?.history ?? [] };
  }

  /** Runs `version`, enabled. */
  runs(m: Machine, version: string): boolean {
    const l = this.local(m);
    return l.installed === version && l.state === 'Enabled';
  }

  async events(): Promise<EngineEvent[]> {
    const all: EngineEvent[] = [];
    let afterSeq = 0;
    for (let pages = 0; pages < 10_000; pages++) {
      const r = await this.arm('GET', `/phasewise/events?after=${afterSeq}&limit=1000`);
      assert.equal(r.status, 200);
      all.push(...r.body.value);
      if (!r.body.nextLink) return all;
      afterSeq = r.body.lastSeq;
    }
    throw new Error('event log did not end');
  }

  private async startHealthServer(): Promise<void> {
    // The workload each machine's Application Health probe looks at: /health/<i>, unhealthy while the marker exists.
    this.healthServer = http.createServer((req, res) => {
      const i = Number((req.url ?? '').split('/')[2]);
      const m = this.machines[i];
      const bad = !m || existsSync(m.unhealthy);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ApplicationHealthState: bad ? 'Unhealthy' : 'Healthy' }));
    });
    await new Promise<void>((r) => this.healthServer!.listen(0, '127.0.0.1', r));
    this.healthPort = (this.healthServer.address() as AddressInfo).port;
  }

  async tearDown(): Promise<void> {
    for (const m of this.machines) await this.killAgent(m);
    if (this.serve && this.serve.exitCode === null && this.serve.signalCode === null) await this.killServe();
    await new Promise<void>((r) => (this.healthServer ? this.healthServer.close(() => r()) : r()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

function request(base: string, method: string, path: string, body: string | Buffer | undefined, headers: Record<string, string>, opts: https.RequestOptions = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${base}${path}`, { method, headers, ca: readFileSync(CA), agent: false, ...opts, timeout: 15_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function exited(c: ChildProcess): Promise<void> {
  return new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms: number, detail: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}\n${detail()}`);
    await sleep(200);
  }
}

/** Each machine's handler calls, as `cmd version seq operationId`. */
function callsOf(m: Machine): string[] {
  return existsSync(m.calls) ? readFileSync(m.calls, 'utf8').trim().split('\n').filter(Boolean) : [];
}

function assertNothingRanTwice(rig: Rig): void {
  for (const m of rig.machines) {
    const seen = new Set<string>();
    for (const line of callsOf(m)) {
      const [cmd, version, , op] = line.split(' ');
      if (!op) continue;
      const key = `${cmd} ${version} ${op}`;
      assert.ok(!seen.has(key), `m${m.i} ran "${key}" twice:\n${callsOf(m).join('\n')}`);
      seen.add(key);
    }
  }
}

function assertInvariants(events: EngineEvent[]): void {
  const checker = new InvariantChecker({ pairs: new Map([['eastus', 'westus'], ['westus', 'eastus']]) });
  checker.onEvents(events);
  assert.deepEqual(checker.finish(), []);
  const seen = new Set<string>();
  for (const e of events) {
    if (e.type !== 'instance.upgrade.started') continue;
    const id = `${e.machineId} ${e.toVersion} ${e.attempt}`;
    assert.ok(!seen.has(id), `instance.upgrade.started twice for ${id}`);
    seen.add(id);
  }
}

describe('real agents end to end: serve and twenty agent processes', { timeout: 600_000 }, () => {
  const rig = new Rig();
  let goodSha = '';

  before(async () => {
    await rig.setUp();
    // A few at a time: each makes an RSA key, and the two cores are shared with the server.
    for (let i = 0; i < MACHINES; i += 4) await Promise.all(rig.machines.slice(i, i + 4).map((m) => rig.enroll(m)));
    for (const m of rig.machines) rig.startAgent(m);
    await rig.release('health', '2.0.0.0', 'good', false);
    await rig.release('agent', '1.0.0.0', 'good', false);
    for (const m of rig.machines) {
      const health = await rig.arm('PUT', `${ARC}/m${m.i}/extensions/health?${AV}`, { location: m.i % 2 === 0 ? 'eastus' : 'westus', properties: {
        publisher: 'Microsoft.ManagedServices', type: 'ApplicationHealthLinux', typeHandlerVersion: '2.0', enableAutomaticUpgrade: false,
        settings: { protocol: 'http', port: rig.healthPort, requestPath: `/health/${m.i}`, intervalInSeconds: 5, numberOfProbes: 1 },
      } });
      assert.ok(health.status === 200 || health.status === 201, JSON.stringify(health.body));
      const agent = await rig.arm('PUT', `${ARC}/m${m.i}/extensions/agent?${AV}`, { location: m.i % 2 === 0 ? 'eastus' : 'westus', properties: {
        publisher: 'Contoso.Test', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true,
        settings: { greeting: 'hello' }, protectedSettings: { secret: `s3cret-${m.i}` },
      } });
      assert.ok(agent.status === 200 || agent.status === 201, JSON.stringify(agent.body));
    }
    await until('every machine to run 1.0.0.0', async () => {
      for (const m of rig.machines) if ((await rig.extension(m, 'agent'))?.properties?.provisioningState !== 'Succeeded') return false;
      return rig.machines.every((m) => rig.runs(m, '1.0.0.0'));
    }, 120_000, () => rig.machines.map((m) => `m${m.i}: ${JSON.stringify(rig.local(m))}`).join('\n') + `\n${rig.machines[0]!.out}`);
  });

  after(async () => {
    await rig.tearDown();
  });

  test('protected settings never reach a machine in clear: not in the settings files, not in the agent state', () => {
    for (const m of rig.machines) {
      const found = grepTree(m.lib, `s3cret-${m.i}`);
      assert.deepEqual(found, [], `m${m.i}: clear protected settings in ${found.join(', ')}`);
    }
  });

  test("a machine's credential cannot read another machine's goal state (403), and its own answers", async () => {
    const [a, b] = [rig.machines[0]!, rig.machines[1]!];
    const enrollment = (m: Machine) => JSON.parse(readFileSync(join(m.lib, '.agent/enrollment.json'), 'utf8'));
    const ea = enrollment(a);
    const key = readdirSync(a.lib).find((f) => f.endsWith('.prv'))!;
    const tls = { key: readFileSync(join(a.lib, key)), cert: readFileSync(join(a.lib, '.agent/client.crt')) };
    const own = await request(rig.url, 'GET', `/v1/agents/${ea.agentId}/goalstate`, undefined, {}, tls);
    assert.equal(own.status, 200);
    const other = await request(rig.url, 'GET', `/v1/agents/${enrollment(b).agentId}/goalstate`, undefined, {}, tls);
    assert.equal(other.status, 403, JSON.stringify(other.body));
    assert.ok(other.body?.error?.code, 'an ARM error body');
  });

  test('R22, R40: a good release reaches every machine while agents and serve are SIGKILLed; nothing runs twice', async () => {
    goodSha = await rig.release('agent', '1.1.0.0', 'good', true);
    // Kill agents at staggered moments during the rollout, and serve once, then bring them back.
    for (let round = 0; round < 4; round++) {
      await sleep(1_500);
      const victims = [rig.machines[(round * 7) % MACHINES]!, rig.machines[(round * 7 + 3) % MACHINES]!];
      for (const v of victims) await rig.killAgent(v);
      if (round === 1) {
        await rig.killServe();
        await sleep(500);
        await rig.startServe();
      }
      await sleep(300);
      for (const v of victims) rig.startAgent(v);
    }
    await until('every machine to run 1.1.0.0', () => rig.machines.every((m) => rig.runs(m, '1.1.0.0')), 240_000,
      () => rig.machines.map((m) => `m${m.i}: ${JSON.stringify(rig.local(m))}`).join('\n') + `\nserve:\n${rig.serveOut.slice(-3000)}`);
    for (const m of rig.machines) {
      assert.ok(callsOf(m).some((l) => l.startsWith('enable 1.1.0.0')), `m${m.i} enabled 1.1.0.0`);
    }
    assertNothingRanTwice(rig);
    assert.ok(goodSha.length === 64);
  });

  test('R22, R23: a release whose install fails is rolled back on each machine that took it; the rollout stops; every machine keeps a working version', async () => {
    await rig.release('agent', '1.2.0.0', 'failinstall', true);
    await until('the 1.2.0.0 rollout to stop', async () => {
      const rollouts = (await rig.arm('GET', '/phasewise/rollouts')).body.value as Array<any>;
      const r = rollouts.find((x) => x.toVersion === '1.2.0.0');
      return r !== undefined && ['stopped', 'failed', 'completed'].includes(r.status);
    }, 180_000, () => rig.serveOut.slice(-3000));
    const tried = rig.machines.filter((m) => callsOf(m).some((l) => l.startsWith('install 1.2.0.0')));
    assert.ok(tried.length >= 1, 'some machine tried 1.2.0.0');
    assert.ok(tried.length < MACHINES, `the rollout stopped before every machine took the bad release (${tried.length})`);
    await until('machines that tried it to run 1.1.0.0 again', () => tried.every((m) => rig.runs(m, '1.1.0.0')), 60_000);
    for (const m of rig.machines) assert.equal(rig.local(m).installed, '1.1.0.0', `m${m.i} runs 1.1.0.0`);
    assertNothingRanTwice(rig);
  });

  test('R21, R25: a release whose application probe turns unhealthy is rolled back by the health gate', async () => {
    await rig.release('agent', '1.3.0.0', 'unhealthy', true);
    await until('the 1.3.0.0 rollout to stop', async () => {
      const rollouts = (await rig.arm('GET', '/phasewise/rollouts')).body.value as Array<any>;
      const r = rollouts.find((x) => x.toVersion === '1.3.0.0');
      return r !== undefined && ['stopped', 'failed', 'completed'].includes(r.status);
    }, 180_000, () => rig.serveOut.slice(-3000));
    const events = await rig.events();
    // Judged unhealthy by the engine's health wait, or by the agent's own health gate (then the upgrade fails).
    const judged = events.filter((e) => (e.type === 'instance.health.unhealthy' || e.type === 'instance.upgrade.failed') && e.toVersion === '1.3.0.0');
    const seen = events.filter((e) => 'toVersion' in e && e.toVersion === '1.3.0.0').map((e) => `${e.type} ${'machineId' in e ? e.machineId : ''} ${'reason' in e ? e.reason : ''}`);
    assert.ok(judged.length >= 1, `the health gate saw the unhealthy machines:\n${seen.join('\n')}`);
    assert.ok(rig.machines.some((m) => callsOf(m).some((l) => l.startsWith('enable 1.3.0.0'))), 'some machine ran 1.3.0.0');
    await until('every machine back on 1.1.0.0', () => rig.machines.every((m) => rig.runs(m, '1.1.0.0')), 60_000);
    for (const m of rig.machines) assert.ok(!existsSync(m.unhealthy), `m${m.i} is healthy again`);
    assertNothingRanTwice(rig);
  });

  test('a package tampered with on the server is refused by every agent, and nothing of it runs', async () => {
    // Automatic upgrade off first, so that every machine is offered the version by hand (R6).
    for (const m of rig.machines) {
      const r = await rig.arm('PATCH', `${ARC}/m${m.i}/extensions/agent?${AV}`, { properties: { enableAutomaticUpgrade: false } });
      assert.ok(r.status < 300, `PATCH m${m.i}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const sha = await rig.release('agent', '1.4.0.0', 'good', true);
    // An attacker rewrites the stored package; the signature and digest the goal state names stay.
    const stored = findFile(join(rig.dataDir, 'packages'), sha);
    assert.ok(stored, 'the package is stored content-addressed');
    const bytes = readFileSync(stored);
    bytes[bytes.length - 30] = bytes[bytes.length - 30]! ^ 0xff;
    unlinkSync(stored);
    writeFileSync(stored, bytes);
    for (const m of rig.machines) {
      const r = await rig.arm('POST', `/subscriptions/${SUB}/resourceGroups/arc/providers/Microsoft.HybridCompute/machines/m${m.i}/upgradeExtensions?${AV}`,
        { extensionTargets: { 'Contoso.Test.Agent': { targetVersion: '1.4.0.0' } } });
      assert.ok(r.status < 300, `upgradeExtensions m${m.i}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    const refused = (m: Machine) => rig.local(m).history.find((h) => h.outcome === 'rejected');
    await until('every agent to refuse 1.4.0.0', () => rig.machines.every((m) => refused(m) !== undefined), 120_000,
      () => rig.machines.map((m) => `m${m.i}: ${JSON.stringify(rig.local(m))}`).join('\n'));
    assert.match(refused(rig.machines[0]!)!.message, /sha-?256|digest/i, 'the refusal says why');
    for (const m of rig.machines) {
      assert.ok(!callsOf(m).some((l) => l.includes(' 1.4.0.0 ')), `m${m.i} ran nothing of the tampered package`);
    }
    // The engine heard each refusal as a failed upgrade and brought the goal state back (R22).
    await until('every machine to run 1.1.0.0 again', () => rig.machines.every((m) => rig.runs(m, '1.1.0.0')), 60_000);
  });

  test('R22: a handler that hangs is killed with its process group at the timeout, and the machine rolls back', async () => {
    await rig.release('agent', '1.5.0.0', 'hang', true);
    const hung = rig.machines.slice(0, 3);
    for (const m of hung) {
      const r = await rig.arm('POST', `${ARC}/m${m.i}/upgradeExtensions?${AV}`, { extensionTargets: { 'Contoso.Test.Agent': { targetVersion: '1.5.0.0' } } });
      assert.ok(r.status < 300, `upgradeExtensions m${m.i}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    // enable's timeout is 300 s × PHASEWISE_AGENT_TIMEOUT_SCALE (0.05) = 15 s.
    await until('the hung machines to be rolled back', () => hung.every((m) => rig.local(m).history.some((h) => h.outcome === 'rolledBack' && /1\.5\.0\.0|tim/i.test(h.message))), 120_000,
      () => hung.map((m) => `m${m.i}: ${JSON.stringify(rig.local(m))}`).join('\n'));
    await until('the hung machines to run 1.1.0.0 again', () => hung.every((m) => rig.runs(m, '1.1.0.0')), 60_000);
    for (const m of hung) assert.ok(callsOf(m).some((l) => l.startsWith('enable 1.5.0.0')), `m${m.i} tried to enable 1.5.0.0`);
    assertNothingRanTwice(rig);
  });

  test('the event log keeps the engine invariants, and no attempt started twice', async () => {
    assertInvariants(await rig.events());
  });
});

function grepTree(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) found.push(...grepTree(p, needle));
    else if (e.isFile() && readFileSync(p).includes(needle)) found.push(p);
  }
  return found;
}

function findFile(dir: string, name: string): string | null {
  if (!existsSync(dir)) return null;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    } else if (e.name === name) return p;
  }
  return null;
}
