/**
 * Guest OS patching by a real `phasewise agent run` against the stand-in control plane, with a scripted
 * apt-get (test/fixtures/patching/scripted-apt.sh, a real process; never the machine's own apt) and a
 * reboot command that only records. Assessment, selection by classification and masks, a failure per
 * package, the reboot setting, R83 announcement of the reboot, the maximum duration, and kill -9.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { GoalStatePatchOperation, PatchOperationReport } from '../src/protocol/agent-wire.js';
import { goal, tempDirs } from './helpers/agent-kit.js';
import { AgentRig, dirArgs, killed, until } from './helpers/agent-process.js';
import type { Dirs } from './helpers/agent-process.js';
import { cli, ROOT } from './helpers/cli.js';

const rig = new AgentRig();
const cp = rig.cp;
before(() => rig.start());
after(() => rig.stop());

const SEC = 'Debian-Security:12/oldstable-security';
const OLD = 'Debian:12.15/oldstable';

/** A folder with the scripted apt-get, its offer, and the recording reboot command. */
function scriptedApt(d: Dirs, offer: Array<[string, string, string, string]>, marks: Record<string, string> = {}): string {
  const bin = join(d.root, 'pm');
  mkdirSync(bin, { recursive: true });
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-apt.sh'), join(bin, 'apt-get'));
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-reboot.sh'), join(bin, 'reboot.sh'));
  writeFileSync(join(bin, 'available'), offer.map((o) => o.join(' ')).join('\n') + '\n');
  for (const [file, content] of Object.entries(marks)) writeFileSync(join(bin, file), content);
  return bin;
}

const pmArgs = (bin: string) => ['--package-manager', 'apt', '--package-manager-path', bin, '--reboot-command', join(bin, 'reboot.sh'), '--reboot-required-file', join(bin, 'reboot-required')];
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim().split('\n').filter(Boolean) : []);
const installs = (bin: string) => lines(join(bin, 'calls.log')).filter((l) => l.startsWith('install ')).map((l) => l.split(' ').at(-1)!);

function install(operationId: string, over: Partial<NonNullable<GoalStatePatchOperation['install']>> = {}): GoalStatePatchOperation {
  return {
    operationId, kind: 'install',
    install: { maximumDurationSeconds: 3600, rebootSetting: 'IfRequired', classificationsToInclude: ['Critical', 'Security'], packageNameMasksToInclude: [], packageNameMasksToExclude: [], rebootNoticeSeconds: 0, ...over },
  };
}

function withPatches(id: number, ops: GoalStatePatchOperation[]) {
  return { ...goal(id, []), patchOperations: ops };
}

function finished(agentId: string, opId: string): PatchOperationReport | undefined {
  const r = cp.lastReport(agentId)?.patchOperations?.find((p) => p.operationId === opId);
  return r && r.status !== 'InProgress' ? r : undefined;
}

const stateOf = (r: PatchOperationReport) => Object.fromEntries(r.patches.map((p) => [p.name, p.installationState]));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

test('assessment lists what the package manager offers, by classification; a failed refresh fails it, saying why', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = scriptedApt(d, [['openssl', '3.0.19-1~deb12u2', '3.0.22-1~deb12u2', SEC], ['curl', '7.88.1-10+deb12u14', '7.88.1-10+deb12u15', OLD], ['linux-image-amd64', '6.1.187-1', '6.1.192-3', SEC]]);
  cp.goals.set(agentId, withPatches(1, [{ operationId: 'assess-1', kind: 'assess' }]));
  const agent = rig.startAgent(d, pmArgs(bin));
  const r = await until('assessment done', () => finished(agentId, 'assess-1'), 20_000, agent);
  assert.equal(r.status, 'Succeeded');
  assert.equal(r.packageManager, 'apt');
  assert.deepEqual({ security: r.counts.security, other: r.counts.other, critical: r.counts.critical }, { security: 2, other: 1, critical: 0 });
  const curl = r.patches.find((p) => p.name === 'curl')!;
  assert.deepEqual(curl, { name: 'curl', version: '7.88.1-10+deb12u15', classifications: ['Other'], rebootBehavior: 'CanRequestReboot' });
  assert.equal(r.patches.find((p) => p.name === 'linux-image-amd64')?.rebootBehavior, 'AlwaysRequiresReboot');
  assert.deepEqual(installs(bin), [], 'an assessment installs nothing');
  writeFileSync(join(bin, 'update-fails'), '');
  cp.goals.set(agentId, withPatches(2, [{ operationId: 'assess-1', kind: 'assess' }, { operationId: 'assess-2', kind: 'assess' }]));
  const bad = await until('second assessment done', () => finished(agentId, 'assess-2'), 20_000, agent);
  assert.equal(bad.status, 'Failed');
  assert.equal(bad.error?.code, 'AssessmentFailed');
  assert.match(bad.error!.message, /apt-get update failed \(exit 100\).*Temporary failure resolving/);
  assert.equal(lines(join(bin, 'calls.log')).filter((l) => / update$/.test(l)).length, 2, 'assess-1 was not run again');
  if (process.env.PW_DEBUG) console.log(agent.output());
  agent.kill('SIGTERM');
  await killed(agent);
});

test('installation installs the selected packages only, respects masks, reports a failure per package; IfRequired without need: no reboot', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = scriptedApt(d, [
    ['openssl', '3.0.19-1', '3.0.22-1', SEC], ['libssl3', '3.0.19-1', '3.0.22-1', SEC], ['postgresql-15', '15.13-0', '15.14-0', SEC],
    ['linux-image-amd64', '6.1.187-1', '6.1.192-3', SEC], ['curl', '7.88.1-10', '7.88.1-11', OLD], ['tzdata', '2025b-0', '2026f-0', OLD],
  ], { 'fail-postgresql-15': '', 'reboot-linux-image-amd64': '' });
  cp.goals.set(agentId, withPatches(1, [install('inst-1', { classificationsToInclude: ['Security'], packageNameMasksToExclude: ['linux-image-*'] })]));
  const agent = rig.startAgent(d, pmArgs(bin));
  const r = await until('installation done', () => finished(agentId, 'inst-1'), 30_000, agent);
  assert.deepEqual(stateOf(r), {
    'postgresql-15': 'Failed', libssl3: 'Installed', openssl: 'Installed', 'linux-image-amd64': 'Excluded', curl: 'NotSelected', tzdata: 'NotSelected',
  });
  assert.equal(r.status, 'CompletedWithWarnings');
  assert.match(r.patches.find((p) => p.name === 'postgresql-15')!.message!, /error processing package postgresql-15/);
  assert.deepEqual({ ...r.counts, critical: 0 }, { critical: 0, security: 4, other: 2, installed: 2, failed: 1, pending: 0, notSelected: 2, excluded: 1 });
  assert.deepEqual(installs(bin).sort(), ['libssl3=3.0.22-1', 'openssl=3.0.22-1', 'postgresql-15=15.14-0']);
  assert.equal(r.rebootStatus, 'NotNeeded');
  assert.equal(existsSync(join(bin, 'reboots.log')), false);

  // An include mask selects by name whatever the classification; Never: the reboot is only reported as required.
  cp.goals.set(agentId, withPatches(2, [install('inst-2', { rebootSetting: 'Never', packageNameMasksToInclude: ['tz*', 'linux-image-*'] })]));
  const never = await until('inst-2 done', () => finished(agentId, 'inst-2'), 30_000, agent);
  assert.equal(never.status, 'Succeeded');
  assert.equal(stateOf(never).tzdata, 'Installed');
  assert.equal(stateOf(never)['linux-image-amd64'], 'Installed');
  assert.equal(stateOf(never).curl, 'NotSelected');
  assert.equal(never.rebootStatus, 'Required');
  assert.equal(never.rebootPending, true);
  assert.equal(existsSync(join(bin, 'reboots.log')), false, 'Never: no reboot');
  agent.kill('SIGTERM');
  await killed(agent);
});

test('a package name the repository offers that is not one (starts with -, has a quote) is refused and reported; every name goes after --', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  // Names as a hostile or broken repository could print them in apt's simulation: an option, a shell quote.
  const option = '-oAPT::Get::AllowUnauthenticated=true';
  const quoted = "x'y";
  const bin = scriptedApt(d, [['openssl', '3.0.19-1', '3.0.22-1', SEC], [option, '1', '2', SEC], [quoted, '1', '2', SEC], ['zlib1g', '1:1.2.13', '1:1.2.13.1', SEC]]);
  cp.goals.set(agentId, withPatches(1, [install('inst-odd', { classificationsToInclude: ['Security'] })]));
  const agent = rig.startAgent(d, pmArgs(bin));
  const r = await until('inst-odd done', () => finished(agentId, 'inst-odd'), 30_000, agent);
  assert.deepEqual(stateOf(r), { openssl: 'Installed', zlib1g: 'Installed', [option]: 'Failed', [quoted]: 'Failed' });
  assert.match(r.patches.find((p) => p.name === option)!.message!, /^refused: "-oAPT::Get::AllowUnauthenticated=true" is not a package name/);
  assert.match(r.patches.find((p) => p.name === quoted)!.message!, /is not a package name/);
  const installLines = lines(join(bin, 'calls.log')).filter((l) => l.startsWith('install '));
  assert.equal(installLines.length, 2, installLines.join('\n'));
  for (const l of installLines) assert.match(l, / -- (openssl=3\.0\.22-1|zlib1g=1:1\.2\.13\.1)$/, 'the package comes after --');
  agent.kill('SIGTERM');
  await killed(agent);
});

test('apt\'s name:arch (a foreign architecture\'s package, libc6:i386) is installed as name:arch=version, not refused; masks with :arch match it and the machine\'s own', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  // As `apt-get -s dist-upgrade` names them on a multiarch Debian: libc6 of the machine's architecture, libc6:i386 of another.
  const bin = scriptedApt(d, [['libc6', '2.36-9', '2.36-9+deb12u4', SEC], ['libc6:i386', '2.36-9', '2.36-9+deb12u4', SEC], ['openssl', '3.0.19-1', '3.0.22-1', SEC],
    ['zlib1g:i386', '1:1.2.13', '1:1.2.13.1', OLD]], { 'ma-libc6': '' });
  // libc6:amd64 names the machine's own libc6 (its architecture is amd64): excluded; libc6:i386 is not.
  cp.goals.set(agentId, withPatches(1, [install('inst-arch', { classificationsToInclude: ['Security'], packageNameMasksToExclude: ['libc6:amd64'] })]));
  const agent = rig.startAgent(d, pmArgs(bin));
  const r = await until('inst-arch done', () => finished(agentId, 'inst-arch'), 30_000, agent);
  assert.deepEqual(stateOf(r), { libc6: 'Excluded', 'libc6:i386': 'Installed', openssl: 'Installed', 'zlib1g:i386': 'NotSelected' });
  assert.equal(r.status, 'Succeeded');
  assert.deepEqual(installs(bin).sort(), ['libc6:i386=2.36-9+deb12u4', 'openssl=3.0.22-1']);
  // Included by name:arch whatever its classification; `libc6` (no :arch) names it whatever the architecture. dpkg says libc6:amd64.
  cp.goals.set(agentId, withPatches(2, [install('inst-arch-2', { packageNameMasksToInclude: ['zlib1g:i386', 'libc6'] })]));
  const r2 = await until('inst-arch-2 done', () => finished(agentId, 'inst-arch-2'), 30_000, agent);
  assert.deepEqual(stateOf(r2), { libc6: 'Installed', 'zlib1g:i386': 'Installed' });
  assert.deepEqual(installs(bin).sort(), ['libc6:i386=2.36-9+deb12u4', 'libc6=2.36-9+deb12u4', 'openssl=3.0.22-1', 'zlib1g:i386=1:1.2.13.1']);
  agent.kill('SIGTERM');
  await killed(agent);
});

test('packages named like Object members (constructor, toString, __proto__) are installed or refused like any other, never taken for done', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  // RPM and Debian allow these names; a repository can offer them. Results were looked up on a plain object:
  // `constructor` and `toString` found Object's own members, were skipped as done and stayed Pending for good.
  const bin = scriptedApt(d, [['constructor', '1.0-1', '1.0-2', SEC], ['toString', '2.0-1', '2.0-2', SEC], ['__proto__', '1', '2', SEC], ['state', '1', '2', SEC]]);
  cp.goals.set(agentId, withPatches(1, [install('inst-proto', { classificationsToInclude: ['Security'] })]));
  const agent = rig.startAgent(d, pmArgs(bin));
  const r = await until('inst-proto done', () => finished(agentId, 'inst-proto'), 30_000, agent);
  assert.deepEqual(stateOf(r), { constructor: 'Installed', toString: 'Installed', state: 'Installed', ['__proto__']: 'Failed' });
  assert.match(r.patches.find((p) => p.name === '__proto__')!.message!, /is not a package name/);
  assert.deepEqual(installs(bin).sort(), ['constructor=1.0-2', 'state=2', 'toString=2.0-2']);
  agent.kill('SIGTERM');
  await killed(agent);
});

test('R83: a reboot is announced as a Reboot scheduled event first and runs once approved; Always reboots without a need', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = scriptedApt(d, [['openssl', '3.0.19-1', '3.0.22-1', SEC]]);
  // 1 hour of notice (72 s at the tests' time scale): only the approval can start it within the test.
  cp.goals.set(agentId, withPatches(1, [install('inst-r', { rebootSetting: 'Always', rebootNoticeSeconds: 3600 })]));
  const port = await freePort();
  const agent = rig.startAgent(d, [...pmArgs(bin), '--imds-port', String(port)]);
  const url = `http://127.0.0.1:${port}/metadata/scheduledevents`;
  type Doc = { DocumentIncarnation: number; Events: Array<{ EventId: string; EventType: string; EventStatus: string; NotBefore: string }> };
  let ev: Doc['Events'][number] | undefined;
  for (const end = Date.now() + 30_000; !ev; ) {
    if (Date.now() > end) assert.fail(`no Reboot event announced\n${agent.output()}`);
    try {
      const got = await fetch(url, { headers: { Metadata: 'true' } });
      ev = ((await got.json()) as Doc).Events.find((e) => e.EventType === 'Reboot');
    } catch {
      // not listening yet
    }
    if (!ev) await new Promise((r2) => setTimeout(r2, 100));
  }
  assert.equal(ev.EventStatus, 'Scheduled');
  assert.ok(Date.parse(ev.NotBefore) > Date.now() + 30_000, 'NotBefore is the notice period away');
  assert.equal(existsSync(join(bin, 'reboots.log')), false, 'not rebooted before approval or NotBefore');
  assert.equal(cp.lastReport(agentId)?.patchOperations?.[0]?.status, 'InProgress');
  const res = await fetch(url, { method: 'POST', headers: { Metadata: 'true', 'content-type': 'application/json' }, body: JSON.stringify({ StartRequests: [{ EventId: ev.EventId }] }) });
  assert.equal(res.status, 200);
  const r = await until('rebooted', () => finished(agentId, 'inst-r'), 20_000, agent);
  assert.equal(r.rebootStatus, 'Started');
  assert.equal(stateOf(r).openssl, 'Installed');
  assert.equal(lines(join(bin, 'reboots.log')).length, 1);
  assert.equal(cp.approvals.length, 0, "the agent's own event is approved on the machine, not sent to the control plane");
  agent.kill('SIGTERM');
  await killed(agent);
  const again = rig.startAgent(d, pmArgs(bin));
  await until('a report after the restart', () => (cp.reports.get(agentId)?.length ?? 0) > 0 && again.output().includes('running against'), 15_000, again);
  await new Promise((res2) => setTimeout(res2, 1500));
  assert.equal(lines(join(bin, 'reboots.log')).length, 1, 'a restart never reboots again');
  again.kill('SIGTERM');
  await killed(again);
});

test('kill -9 of the agent mid-install: the restarted agent picks the running install up, no package is installed twice', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = scriptedApt(d, [['libssl3', '3.0.19-1', '3.0.22-1', SEC], ['openssl', '3.0.19-1', '3.0.22-1', SEC], ['zlib1g', '1.2.13', '1.2.13.1', SEC]], { 'slow-openssl': '2' });
  cp.goals.set(agentId, withPatches(1, [install('inst-k')]));
  let agent = rig.startAgent(d, pmArgs(bin));
  await until('openssl install started', () => installs(bin).includes('openssl=3.0.22-1'), 30_000, agent);
  agent.kill('SIGKILL');
  await killed(agent);
  agent = rig.startAgent(d, pmArgs(bin));
  const r = await until('inst-k done', () => finished(agentId, 'inst-k'), 30_000, agent);
  assert.equal(r.status, 'Succeeded', agent.output());
  assert.deepEqual(stateOf(r), { libssl3: 'Installed', openssl: 'Installed', zlib1g: 'Installed' });
  assert.deepEqual(installs(bin), ['libssl3=3.0.22-1', 'openssl=3.0.22-1', 'zlib1g=1.2.13.1']);
  assert.match(agent.output(), /install:openssl was running when the agent stopped; picking it up/);
  agent.kill('SIGKILL');
  await killed(agent);
  agent = rig.startAgent(d, pmArgs(bin));
  await until('a report after the second restart', () => agent.output().includes('running against'), 15_000, agent);
  await new Promise((res) => setTimeout(res, 1500));
  assert.equal(installs(bin).length, 3, 'a finished operation is never run again');
  assert.equal(lines(join(bin, 'calls.log')).filter((l) => l.includes('dist-upgrade')).length, 1, 'nor assessed again');
  agent.kill('SIGTERM');
  await killed(agent);
});

test('kill -9 at random instants of a patch installation and its reboot (a bounded loop): every package installed once, at most one reboot, Succeeded', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const names = ['libssl3', 'openssl', 'zlib1g', 'curl', 'tzdata'];
  const bin = scriptedApt(d, names.map((n) => [n, '1.0-1', '1.0-2', SEC] as [string, string, string, string]), { ...Object.fromEntries(names.map((n) => [`slow-${n}`, '0.4'])), 'reboot-tzdata': '' });
  cp.goals.set(agentId, withPatches(1, [install('inst-r', { rebootSetting: 'IfRequired', rebootNoticeSeconds: 0 })]));
  // Seeded: a failure names the instants that found it.
  let seed = 19;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const killedAt: number[] = [];
  let agent = rig.startAgent(d, pmArgs(bin));
  for (let i = 0; i < 6 && !finished(agentId, 'inst-r'); i++) {
    await until('the agent running', () => agent.output().includes('running against'), 15_000, agent);
    const ms = Math.round(200 + next() * 1200);
    killedAt.push(ms);
    await new Promise((res) => setTimeout(res, ms));
    agent.kill('SIGKILL');
    await killed(agent);
    agent = rig.startAgent(d, pmArgs(bin));
  }
  const r = await until('inst-r done', () => finished(agentId, 'inst-r'), 60_000, agent);
  const why = `killed after ${killedAt.join(', ')} ms\n${agent.output()}`;
  assert.equal(r.status, 'Succeeded', why);
  assert.deepEqual(stateOf(r), Object.fromEntries(names.map((n) => [n, 'Installed'])), why);
  assert.deepEqual([...installs(bin)].sort(), names.map((n) => `${n}=1.0-2`).sort(), `each package installed once; ${why}`);
  // The reboot is journaled as started before its command runs: a kill in between is a reboot missed, never a second one.
  assert.equal(r.rebootStatus, 'Started', why);
  assert.ok(lines(join(bin, 'reboots.log')).length <= 1, `at most one reboot; ${why}`);
  agent.kill('SIGKILL');
  await killed(agent);
  agent = rig.startAgent(d, pmArgs(bin));
  await until('the agent running again', () => agent.output().includes('running against'), 15_000, agent);
  await new Promise((res) => setTimeout(res, 1500));
  assert.ok(lines(join(bin, 'reboots.log')).length <= 1, 'a restart never reboots again');
  assert.equal(installs(bin).length, names.length, 'nor installs again');
  agent.kill('SIGTERM');
  await killed(agent);
});

test('maximumDuration: no package is started that the window cannot fit; the rest are Pending, maintenanceWindowExceeded', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const offer: Array<[string, string, string, string]> = Array.from({ length: 12 }, (_, i) => [`pkg-${String(i).padStart(2, '0')}`, '1.0', '1.1', SEC]);
  const bin = scriptedApt(d, offer, Object.fromEntries(offer.map((o) => [`slow-${o[0]}`, '0.5'])));
  cp.goals.set(agentId, withPatches(1, [install('inst-w', { maximumDurationSeconds: 1800 })]));
  // Patch durations ×0.004: the 30-minute window is 7.2 s and a package's 5-minute budget 1.2 s; each install takes 0.5 s,
  // so about ten fit and the last ones are never started.
  process.env.PHASEWISE_PATCH_TIME_SCALE = '0.004';
  const agent = rig.startAgent(d, pmArgs(bin));
  delete process.env.PHASEWISE_PATCH_TIME_SCALE;
  const r = await until('inst-w done', () => finished(agentId, 'inst-w'), 30_000, agent);
  assert.equal(r.maintenanceWindowExceeded, true);
  assert.equal(r.status, 'CompletedWithWarnings');
  const pending = r.patches.filter((p) => p.installationState === 'Pending').map((p) => p.name);
  assert.ok(pending.length >= 1 && r.counts.installed >= 1, JSON.stringify(stateOf(r)));
  assert.equal(r.counts.failed, 0, 'no install was cut off: none started without its budget');
  assert.equal(r.counts.installed + pending.length, 12);
  assert.equal(r.counts.pending, pending.length);
  for (const p of pending) assert.ok(!installs(bin).some((i) => i.startsWith(`${p}=`)), `${p} was never started`);
  agent.kill('SIGTERM');
  await killed(agent);
  const status = await cli('agent', 'status', '--json', ...dirArgs(d));
  const recent = (JSON.parse(status.stdout) as { patches: { recent: Array<{ operationId: string; status: string; counts: { pending: number } }> } }).patches.recent;
  assert.deepEqual(recent.map((p) => [p.operationId, p.status, p.counts.pending]), [['inst-w', 'CompletedWithWarnings', pending.length]], '`agent status` shows it');
});

test('dnf: Critical and Security installed, a failed transaction reported per package, IfRequired reboots when needs-restarting says so', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = join(d.root, 'pm');
  mkdirSync(bin, { recursive: true });
  for (const name of ['dnf', 'needs-restarting']) copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-dnf.sh'), join(bin, name));
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-reboot.sh'), join(bin, 'reboot.sh'));
  writeFileSync(join(bin, 'available'), [
    'openssl-libs x86_64 1:3.0.7-18.el9_2 baseos Critical/Sec.', 'kernel-core x86_64 5.14.0-284.30.1.el9_2 baseos Important/Sec.',
    'tzdata noarch 2023c-1.el9 baseos bugfix', 'curl x86_64 7.76.1-23.el9_2.4 baseos -', '',
  ].join('\n'));
  writeFileSync(join(bin, 'fail-openssl-libs'), '');
  writeFileSync(join(bin, 'reboot-kernel-core'), '');
  cp.goals.set(agentId, withPatches(1, [install('inst-d')]));
  const agent = rig.startAgent(d, ['--package-manager', 'dnf', '--package-manager-path', bin, '--reboot-command', join(bin, 'reboot.sh')]);
  const r = await until('inst-d done', () => finished(agentId, 'inst-d'), 30_000, agent);
  assert.equal(r.packageManager, 'dnf');
  assert.deepEqual(stateOf(r), { 'openssl-libs': 'Failed', 'kernel-core': 'Installed', tzdata: 'NotSelected', curl: 'NotSelected' });
  assert.deepEqual({ critical: r.counts.critical, security: r.counts.security, other: r.counts.other }, { critical: 1, security: 1, other: 2 });
  assert.match(r.patches.find((p) => p.name === 'openssl-libs')!.message!, /^Error: Transaction test error/);
  assert.equal(r.status, 'CompletedWithWarnings');
  assert.equal(r.rebootStatus, 'Started');
  assert.equal(lines(join(bin, 'reboots.log')).length, 1);
  const upgrades = lines(join(bin, 'calls.log')).filter((l) => l.startsWith('dnf -y upgrade'));
  assert.deepEqual(upgrades, ['dnf -y upgrade -- openssl-libs-1:3.0.7-18.el9_2.x86_64', 'dnf -y upgrade -- kernel-core-5.14.0-284.30.1.el9_2.x86_64'], 'Critical first');
  agent.kill('SIGTERM');
  await killed(agent);
});
