/**
 * R21 R25: the Application Health extension's semantics run by the agent — settings ranges, tcp and
 * http probes against real loopback servers, the state machine, and the health gate that rolls back.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { AppHealthMonitor, HealthStateMachine, parseAppHealthSettings, probe } from '../src/agent/app-health.js';
import type { AppHealthSettings } from '../src/agent/app-health.js';
import { convergeOnce } from '../src/agent/converge.js';
import { extension, goal, HANDLER, handlerZip, newPublisher, PackageServer, packageRef, runtime, sleep, tempDirs, trust } from './helpers/agent-kit.js';

const server = new PackageServer();
const publisher = newPublisher();
let app: http.Server;
let appPort = 0;
let appState: 'Healthy' | 'Unhealthy' | 'garbage' = 'Healthy';
before(async () => {
  await server.start();
  app = http.createServer((req, res) => {
    if (req.url !== '/health') return void res.writeHead(404).end();
    if (appState === 'garbage') return void res.writeHead(200).end('OK');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ApplicationHealthState: appState }));
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appPort = (app.address() as AddressInfo).port;
});
after(async () => {
  await server.stop();
  app.closeAllConnections();
  await new Promise((r) => app.close(r));
});

test('R25: Application Health settings are validated with the ranges of the extension', () => {
  assert.equal(parseAppHealthSettings({ protocol: 'udp', port: 1 }), 'protocol must be tcp, http or https');
  assert.equal(parseAppHealthSettings({ protocol: 'tcp' }), 'port is required for tcp');
  assert.equal(parseAppHealthSettings({ protocol: 'tcp', port: 22, requestPath: '/x' }), 'requestPath is not allowed for tcp');
  assert.equal(parseAppHealthSettings({ protocol: 'http', intervalInSeconds: 4 }), 'intervalInSeconds must be 5-60');
  assert.equal(parseAppHealthSettings({ protocol: 'http', numberOfProbes: 25 }), 'numberOfProbes must be 1-24');
  assert.equal(parseAppHealthSettings({ protocol: 'http', intervalInSeconds: 60, numberOfProbes: 5 }), 'intervalInSeconds × numberOfProbes must be at most 240');
  assert.equal(parseAppHealthSettings({ protocol: 'http', gracePeriod: 14401 }), 'gracePeriod must be 5-14400');
  // Node refuses these paths, and the probe threw out of its timer: the agent ended, and again at every start.
  for (const bad of ['/health check', '/a\tb', '/h\u00e9alth', '/\u65e5', '/a\u0000b']) {
    assert.equal(parseAppHealthSettings({ protocol: 'http', requestPath: bad }), 'requestPath must be a URL path of printable ASCII without spaces (percent-encode the rest: %20)', bad);
  }
  assert.equal((parseAppHealthSettings({ protocol: 'http', requestPath: '/health%20check?x=1&y=~' }) as AppHealthSettings).requestPath, '/health%20check?x=1&y=~');
  assert.deepEqual(parseAppHealthSettings({ protocol: 'https' }), { protocol: 'https', port: 443, requestPath: '/', intervalInSeconds: 5, numberOfProbes: 1, gracePeriod: 5 });
  assert.deepEqual(parseAppHealthSettings({ protocol: 'http', port: 8080, requestPath: 'health', numberOfProbes: 3 }), {
    protocol: 'http',
    port: 8080,
    requestPath: '/health',
    intervalInSeconds: 5,
    numberOfProbes: 3,
    gracePeriod: 15,
  });
});

test('R21: probes — http rich health body, Unknown for anything else; tcp connect', async () => {
  const base: AppHealthSettings = { protocol: 'http', port: appPort, requestPath: '/health', intervalInSeconds: 5, numberOfProbes: 1, gracePeriod: 5 };
  const s = (over: Partial<AppHealthSettings>): AppHealthSettings => ({ ...base, ...over });
  appState = 'Healthy';
  assert.equal(await probe(s({}), 2000), 'Healthy');
  appState = 'Unhealthy';
  assert.equal(await probe(s({}), 2000), 'Unhealthy');
  appState = 'garbage';
  assert.equal(await probe(s({}), 2000), 'Unknown');
  assert.equal(await probe(s({ requestPath: '/missing' }), 2000), 'Unknown', 'non-2xx is Unknown');
  // A path Node will not send is Unknown, never a rejection (it ended the agent from the probe's timer).
  assert.equal(await probe(s({ requestPath: '/health check' }), 2000), 'Unknown');
  assert.equal(await probe(s({ protocol: 'tcp' }), 2000), 'Healthy');
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  assert.equal(await probe(s({ protocol: 'tcp', port }), 2000), 'Unhealthy');
});

test('R21: the state machine — Initializing during grace, N identical probes commit, grace expiry falls to Unhealthy/Unknown', () => {
  const settings: AppHealthSettings = { protocol: 'http', port: 1, requestPath: '/', intervalInSeconds: 5, numberOfProbes: 2, gracePeriod: 20 };
  const m = new HealthStateMachine(settings, 0);
  assert.equal(m.observe('Healthy', 5_000), 'Initializing');
  assert.equal(m.observe('Healthy', 10_000), 'Healthy');
  assert.equal(m.observe('Unhealthy', 15_000), 'Healthy', 'one probe does not flip it');
  assert.equal(m.observe('Unhealthy', 20_000), 'Unhealthy');
  const http2 = new HealthStateMachine(settings, 0);
  http2.observe('Unknown', 10_000);
  assert.equal(http2.observe('Unknown', 25_000), 'Unknown', 'http falls to Unknown after the grace period');
  const tcp = new HealthStateMachine({ ...settings, protocol: 'tcp' }, 0);
  tcp.observe('Healthy', 10_000);
  assert.equal(tcp.observe('Unhealthy', 25_000), 'Unhealthy', 'tcp falls to Unhealthy');
});

test('R22: an upgrade whose application turns Unhealthy fails the health gate and rolls back to the last known good', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const monitor = new AppHealthMonitor(() => Date.now(), 20);
  const rt = runtime(dirs, { health: monitor });
  const appHealth = { protocol: 'http', port: appPort, requestPath: '/health', intervalInSeconds: 5, numberOfProbes: 2 };
  const ah = 'Microsoft.ManagedServices.ApplicationHealthLinux';
  const ahRef = packageRef(server, publisher, ah, '2.0.0', await handlerZip(dirs.callLog));
  const settings = { publicSettings: appHealth, protectedSettings: null, protectedSettingsCertThumbprint: null };
  const ahExt = extension({ name: ah, version: '2.0.0', package: ahRef, operationId: 'op-ah', settings });
  const a = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog));
  const b = packageRef(server, publisher, HANDLER, '1.1.0', await handlerZip(dirs.callLog));
  const gate = { enabled: true, healthGateSeconds: 5 };
  appState = 'Healthy';
  try {
    const g1 = goal(1, [ahExt, extension({ version: '1.0.0', package: a, operationId: 'op-1', rollback: gate, dependencyLevel: 1 })]);
    monitor.configure(g1.extensions);
    await convergeOnce(rt, g1);
    assert.equal(rt.journal.state.extensions[HANDLER]!.history[0]?.outcome, 'succeeded');
    assert.equal(monitor.state(), 'Healthy');
    appState = 'Unhealthy';
    const g2 = goal(2, [ahExt, extension({ version: '1.1.0', package: b, operationId: 'op-2', settingsSeqNo: 2, rollback: gate, dependencyLevel: 1 })]);
    await convergeOnce(rt, g2);
    const o = rt.journal.state.extensions[HANDLER]!.history[0]!;
    assert.equal(o.outcome, 'rolledBack');
    assert.match(o.message, /Unhealthy|not Healthy/);
    assert.equal(rt.journal.state.extensions[HANDLER]!.lastKnownGood?.version, '1.0.0');
  } finally {
    monitor.stop();
    await sleep(10);
  }
});
