/**
 * Guest OS patching end to end on the real server side: a `phasewise serve` (in process) and a real
 * `phasewise agent run` process with a scripted apt-get. The AgentDriver's PatchDriver puts the
 * operation in the goal state, the agent runs it and reports, the driver answers with the ARM-shaped
 * result; an installation resent with its key is answered again without reaching the machine. A
 * schedule's reboot notice reaches the machine's IMDS scheduled events and its approval the server (R83).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MAX_REBOOT_NOTICES, STALE_NOTICE_MS } from '../src/api/agent/goal-states.js';
import { tempDirs } from './helpers/agent-kit.js';
import { call, CERT, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { cli, CLI, ROOT } from './helpers/cli.js';

const ENROLL = 'enroll-token-patching-0123456789';
const SEC = 'Debian-Security:12/oldstable-security';
let s: TestServer;
let agent: ChildProcess | null = null;
let out = '';
const d = tempDirs();
const bin = join(d.root, 'pm');
const imdsPort = 20000 + Math.floor(Math.random() * 20000);

/** The promise's value, or a failure naming `what` (with the agent's output) after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}\n${out}`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

before(async () => {
  s = await startTestServer({ agentPollIntervalSeconds: 1, agentStatusIntervalSeconds: 2, enrollmentTokens: [{ token: ENROLL, subscriptionId: 'sub1', resourceGroup: 'arc', location: 'westus' }] });
  mkdirSync(bin, { recursive: true });
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-apt.sh'), join(bin, 'apt-get'));
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-reboot.sh'), join(bin, 'reboot.sh'));
  writeFileSync(join(bin, 'available'), [
    `openssl 3.0.19-1~deb12u2 3.0.22-1~deb12u2 ${SEC}`, `postgresql-15 15.13-0+deb12u1 15.14-0+deb12u1 ${SEC}`,
    `linux-image-amd64 6.1.187-1 6.1.192-3 ${SEC}`, 'curl 7.88.1-10+deb12u14 7.88.1-10+deb12u15 Debian:12.15/oldstable', '',
  ].join('\n'));
  writeFileSync(join(bin, 'fail-postgresql-15'), '');
  const c = await cli('agent', 'connect', '--server', s.url, '--enrollment-token', ENROLL, '--ca-cert', CERT, '--name', 'patch-1', '--lib-dir', d.lib, '--config-dir', d.config);
  assert.equal(c.status, 0, c.stderr);
  const env: NodeJS.ProcessEnv = { ...process.env, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.02' };
  delete env.NODE_EXTRA_CA_CERTS;
  agent = spawn(process.execPath, [CLI, 'agent', 'run', '--lib-dir', d.lib, '--config-dir', d.config, '--log-dir', d.log, '--imds-port', String(imdsPort),
    '--package-manager', 'apt', '--package-manager-path', bin, '--reboot-command', join(bin, 'reboot.sh'), '--reboot-required-file', join(bin, 'reboot-required')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout!.setEncoding('utf8').on('data', (t: string) => (out = (out + t).slice(-20_000)));
  agent.stderr!.setEncoding('utf8').on('data', (t: string) => (out = (out + t).slice(-20_000)));
});

after(async () => {
  if (agent && agent.exitCode === null) {
    agent.kill('SIGKILL');
    await new Promise((r) => agent!.once('exit', r));
  }
  await s?.stop();
});

test('assessPatches and installPatches through serve and a real agent: goal state, report, ARM-shaped answers, idempotent by key', async () => {
  const driver = s.agents.driver;
  const machineId = driver.agents()[0]!.machineId;
  const target = { machineId, os: 'linux' as const };
  const a = await within(driver.patches.assessPatches(target), 60_000, 'the assessment');
  assert.equal(a.status, 'Succeeded');
  assert.deepEqual(a.availablePatches.map((p) => [p.patchId, p.classifications[0]]).sort(), [
    ['curl_7.88.1-10+deb12u15', 'Other'], ['linux-image-amd64_6.1.192-3', 'Security'], ['openssl_3.0.22-1~deb12u2', 'Security'], ['postgresql-15_15.14-0+deb12u1', 'Security'],
  ]);
  assert.deepEqual(driver.goal(driver.agents()[0]!.agentId)!.patchOps, {}, 'answered: the operation left the goal state');

  const req = { key: 'maint-run-1', maximumDurationMs: 3600_000, rebootSetting: 'IfRequired' as const, classifications: ['Critical' as const, 'Security' as const], include: [], exclude: ['linux-image-*'] };
  const r = await within(driver.patches.installPatches(target, req), 60_000, 'the installation');
  assert.equal(r.status, 'CompletedWithWarnings');
  assert.deepEqual(Object.fromEntries(r.patches.map((p) => [p.name, p.installationState])), {
    'postgresql-15': 'Failed', openssl: 'Installed', 'linux-image-amd64': 'Excluded', curl: 'NotSelected',
  });
  assert.equal(r.rebootStatus, 'NotNeeded');
  assert.equal(existsSync(join(bin, 'reboots.log')), false);
  const calls = readFileSync(join(bin, 'calls.log'), 'utf8');
  assert.equal(calls.split('\n').filter((l) => l.startsWith('install ')).length, 2);
  // The same key again: the stored answer; the machine sees nothing new.
  assert.deepEqual(await within(driver.patches.installPatches(target, req), 5_000, 'the resent installation'), r);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(readFileSync(join(bin, 'calls.log'), 'utf8'), calls);
});

test('R76: a platform patch baseline through the agent driver: Critical and Security patches with the reboot setting, one answer per key', async () => {
  const driver = s.agents.driver;
  const machineId = driver.agents()[0]!.machineId;
  const before = readFileSync(join(bin, 'calls.log'), 'utf8');
  const action = {
    kind: 'upgrade' as const, key: 'ro-9/platform/1', machineId, artifact: { kind: 'guestPatch' as const, os: 'Linux' as const }, artifactKey: 'guestPatch:linux',
    fromVersion: '0.0.0', toVersion: '2026.3.1', settings: { rebootSetting: 'Never' },
  };
  driver.send(action);
  const answered = async () => {
    for (let i = 0; i < 600; i++) {
      const a = driver.store.operation(action.key)?.answer;
      if (a) return JSON.parse(a) as { ok: boolean; version: string; patch?: { installed: number; failed: number; pending: number; rebooted: boolean } };
      await new Promise((res) => setTimeout(res, 100));
    }
    return undefined;
  };
  const obs = await within(answered(), 60_000, 'the platform patch answer');
  assert.ok(obs, `no answer\n${out}`);
  // openssl went in before; the kernel (Security) now goes in; postgresql-15 fails again; curl (Other) is not selected.
  assert.equal(obs.ok, true);
  assert.equal(obs.version, '2026.3.1');
  assert.deepEqual(obs.patch, { installed: 1, failed: 1, pending: 0, rebooted: false, rebootSec: 0 });
  const calls = readFileSync(join(bin, 'calls.log'), 'utf8').slice(before.length);
  assert.ok(/install .*linux-image-amd64/.test(calls), calls);
  assert.ok(!/curl/.test(calls.split('\n').filter((l) => l.startsWith('install ')).join('\n')), calls);
  assert.equal(existsSync(join(bin, 'reboots.log')), false, 'rebootSetting Never: no reboot');
  // A resend is answered from the store; the machine sees nothing new.
  const seen = readFileSync(join(bin, 'calls.log'), 'utf8');
  driver.send(action);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(readFileSync(join(bin, 'calls.log'), 'utf8'), seen);
});

test('R83: a schedule run\'s reboot notice is a Reboot scheduled event on the machine\'s IMDS endpoint (same EventId, NotBefore) until the run ends; the machine approves it', async () => {
  const driver = s.agents.driver;
  const { agentId, machineId } = driver.agents()[0]!;
  const m = s.runtime.engine.state.fleet.machines.get(machineId)!;
  const runId = 'nightly@2026-12-06T02:00:00.000Z';
  const eventId = '0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9';
  let notBeforeMs = 0;
  s.runtime.engine.recordPatchEvents((t) => {
    notBeforeMs = t + 15 * 60_000;
    return [{ type: 'machine.reboot.announced', machineId, placement: m.placement, runId, eventId, notBefore: new Date(notBeforeMs).toISOString(),
      reason: `a patch installation (${runId}) may reboot the machine` }];
  });
  const base = `http://127.0.0.1:${imdsPort}/metadata/scheduledevents?api-version=2020-07-01`;
  type Imds = { DocumentIncarnation: number; Events: Array<{ EventId: string; EventType: string; NotBefore: string; EventStatus: string; Resources: string[] }> };
  const read = async () => (await (await fetch(base, { headers: { Metadata: 'true' } })).json()) as Imds;
  const seen = async (want: boolean) => {
    for (let i = 0; i < 150; i++) {
      const got = await read();
      if (got.Events.some((e) => e.EventId === eventId) === want) return got;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the reboot notice ${want ? 'never reached' : 'never left'} the IMDS endpoint\n${out}`);
  };
  const got = await seen(true);
  const ev = got.Events.find((e) => e.EventId === eventId)!;
  assert.equal(ev.EventType, 'Reboot');
  assert.equal(ev.EventStatus, 'Scheduled');
  assert.equal(ev.NotBefore, new Date(notBeforeMs).toUTCString());
  assert.deepEqual(ev.Resources, [driver.agent(agentId)!.resourceId]);

  // The machine approves it early (IMDS StartRequests): forwarded, and kept with the notice on the server.
  const ok = await fetch(base, { method: 'POST', headers: { Metadata: 'true' }, body: JSON.stringify({ StartRequests: [{ EventId: eventId }] }) });
  assert.equal(ok.status, 200, await ok.text());
  assert.equal(driver.goal(agentId)!.rebootNotices![eventId]!.approved, true);
  assert.equal(s.runtime.engine.state.rollouts.size, 0, 'approving a reboot approves no re-image');

  // The run ends: the notice leaves the goal state and the machine's endpoint.
  s.runtime.engine.recordPatchEvents([{ type: 'patch.run.completed', machineId, placement: m.placement, configuration: 'nightly', runId, status: 'Succeeded',
    installed: 1, failed: 0, pending: 0, maintenanceWindowExceeded: false, rebootStatus: 'Completed', reason: '1 installed, 0 failed' }]);
  const gone = await seen(false);
  assert.ok(gone.DocumentIncarnation > got.DocumentIncarnation);
  assert.deepEqual(driver.goal(agentId)!.rebootNotices, {});
});

test('R75, R83: a schedule run on the agent machine: the server\'s reboot notice and the agent\'s reboot are one event (same EventId); '
  + 'approved through IMDS, the reboot starts before its NotBefore', async () => {
  const ARC = '/subscriptions/sub1/resourceGroups/arc/providers/Microsoft.HybridCompute/machines';
  const CFG = '/subscriptions/sub1/resourceGroups/arc/providers/Microsoft.Maintenance/maintenanceConfigurations';
  const MIN = 60_000;
  // openssl is installed already (the test above); postgresql-15 now installs and asks for a reboot.
  rmSync(join(bin, 'fail-postgresql-15'));
  writeFileSync(join(bin, 'reboot-postgresql-15'), '');
  const name = s.agents.driver.agents()[0]!.resourceId.split('/').pop()!;
  const put = await call(s.url, 'PUT', `${ARC}/${name}?api-version=2024-07-10`, { location: 'westus', properties: { osType: 'linux',
    osProfile: { linuxConfiguration: { patchSettings: {
      patchMode: 'AutomaticByPlatform', automaticByPlatformSettings: { rebootSetting: 'IfRequired', bypassPlatformSafetyChecksOnUserSchedule: true },
    } } } } });
  assert.ok(put.status === 200 || put.status === 201, JSON.stringify(put.body));
  const opens = Math.ceil((s.runtime.clock.now() + 30 * MIN) / MIN) * MIN;
  const start = new Date(opens).toISOString().slice(0, 16).replace('T', ' ');
  const cfg = await call(s.url, 'PUT', `${CFG}/agentnightly?api-version=2023-04-01`, { location: 'westus', properties: {
    maintenanceScope: 'InGuestPatch', extensionProperties: { InGuestPatchMode: 'User' },
    maintenanceWindow: { startDateTime: start, duration: '03:55', timeZone: 'UTC', recurEvery: 'Day' },
    installPatches: { rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical', 'Security'], packageNameMasksToExclude: ['linux-image-*'] } },
  } });
  assert.equal(cfg.status, 201, JSON.stringify(cfg.body));
  const asg = await call(s.url, 'PUT', `${ARC}/${name}/providers/Microsoft.Maintenance/configurationAssignments/agentnightly?api-version=2023-04-01`,
    { properties: { maintenanceConfigurationId: `${CFG}/agentnightly` } });
  assert.equal(asg.status, 201, JSON.stringify(asg.body));

  const base = `http://127.0.0.1:${imdsPort}/metadata/scheduledevents?api-version=2020-07-01`;
  type Ev = { EventId: string; EventType: string; NotBefore: string; EventStatus: string };
  let announced: Record<string, any> | undefined;
  let reboot: Ev | undefined;
  for (let i = 0; i < 300 && !reboot; i++) {
    const log = (await call(s.url, 'GET', '/phasewise/events?limit=1000')).body.value as Array<Record<string, any>>;
    announced ??= log.find((e) => e.type === 'machine.reboot.announced' && e.runId.startsWith('agentnightly@'));
    const got = (await (await fetch(base, { headers: { Metadata: 'true' } })).json()) as { Events: Ev[] };
    reboot = announced && got.Events.find((e) => e.EventId === announced!.eventId);
    if (!reboot) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(announced && reboot, `the run's reboot notice reached the machine with the server's EventId\n${out}`);
  assert.equal(reboot.EventType, 'Reboot');
  const ok = await fetch(base, { method: 'POST', headers: { Metadata: 'true' }, body: JSON.stringify({ StartRequests: [{ EventId: reboot.EventId }] }) });
  assert.equal(ok.status, 200, await ok.text());

  // The agent's own reboot carries the same EventId (never a second event) and, approved, starts before its NotBefore.
  for (let i = 0; i < 300 && !existsSync(join(bin, 'reboots.log')); i++) {
    const got = (await (await fetch(base, { headers: { Metadata: 'true' } })).json()) as { Events: Ev[] };
    const reboots = got.Events.filter((e) => e.EventType === 'Reboot');
    assert.ok(reboots.length <= 1 && reboots.every((e) => e.EventId === announced!.eventId), JSON.stringify(got.Events));
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(existsSync(join(bin, 'reboots.log')), `the approved reboot ran\n${out}`);
  const at = Number(readFileSync(join(bin, 'reboots.log'), 'utf8').trim().split('\n').pop()!.split(' ')[1]) * 1000;
  const own = new RegExp(`reboot announced \\(event ${announced!.eventId}, not before ([^)]+)\\)`).exec(out);
  assert.ok(own, `the agent announced its reboot under the server's EventId\n${out}`);
  // `date +%s` is whole seconds; the notice is 18 s here (900 s × 0.02): approved, the reboot comes well before it ends.
  assert.ok(at + 1000 < Date.parse(own[1]!) - 5000, `rebooted at ${new Date(at).toISOString()}, well before its NotBefore ${own[1]} (approved early)`);
});

test('R83: a machine\'s reboot notices are bounded: at most MAX_REBOOT_NOTICES, and one a day stale goes when a newer comes', async () => {
  const driver = s.agents.driver;
  const { agentId, machineId } = driver.agents()[0]!;
  const placement = s.runtime.engine.state.fleet.machines.get(machineId)!.placement;
  driver.goal(agentId)!.rebootNotices = {}; // whatever the tests above left
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  const announce = (i: number, at: number) => ({ seq: 0, time: new Date(at).toISOString(), type: 'machine.reboot.announced' as const, machineId, placement,
    runId: `bound@${i}`, eventId: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, notBefore: new Date(at + 15 * 60_000).toISOString(), reason: 'test' });
  for (let i = 0; i < MAX_REBOOT_NOTICES + 3; i++) s.agents.goalStates.noteEvents([announce(i, t0 + i * 60_000)]);
  const kept = Object.values(driver.goal(agentId)!.rebootNotices!).map((n) => n.runId).sort();
  assert.equal(kept.length, MAX_REBOOT_NOTICES);
  assert.ok(!kept.includes('bound@0') && kept.includes(`bound@${MAX_REBOOT_NOTICES + 2}`), 'the oldest go first');
  s.agents.goalStates.noteEvents([announce(99, t0 + STALE_NOTICE_MS + 3600_000)]);
  assert.deepEqual(Object.values(driver.goal(agentId)!.rebootNotices!).map((n) => n.runId), ['bound@99'], 'a day stale: gone');
  const gs = s.agents.goalStates.current(agentId)!;
  assert.deepEqual(gs.events.filter((e) => e.EventType === 'Reboot').map((e) => e.EventId), [announce(99, 0).eventId]);
});
