/**
 * A journal torn inside the patch state (power loss on a disk that acknowledged an fsync it had not done,
 * a full disk on a file system without data journaling): a real `phasewise agent run` with a scripted
 * apt-get is killed with SIGKILL, its `state.json` is cut where the patch state lies, and it is started
 * again. The ids done and the operation in flight must survive the cut: the torn part is completed from
 * the journal as it was one write before (`state.prev.json`), so no install command runs twice.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { GoalStatePatchOperation, PatchOperationReport } from '../src/protocol/agent-wire.js';
import type { PatchState } from '../src/agent/journal.js';
import { goal, sleep, tempDirs } from './helpers/agent-kit.js';
import { AgentRig, killed, until } from './helpers/agent-process.js';
import type { AgentProcess, Dirs } from './helpers/agent-process.js';
import { ROOT } from './helpers/cli.js';

const rig = new AgentRig();
const cp = rig.cp;
before(() => rig.start());
after(() => rig.stop());

const SEC = 'Debian-Security:12/oldstable-security';

function scriptedApt(d: Dirs, offer: string[], marks: Record<string, string>): string {
  const bin = join(d.root, 'pm');
  mkdirSync(bin, { recursive: true });
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-apt.sh'), join(bin, 'apt-get'));
  copyFileSync(join(ROOT, 'test/fixtures/patching/scripted-reboot.sh'), join(bin, 'reboot.sh'));
  writeFileSync(join(bin, 'available'), offer.join('\n') + '\n');
  for (const [file, content] of Object.entries(marks)) writeFileSync(join(bin, file), content);
  return bin;
}

const pmArgs = (bin: string) => ['--package-manager', 'apt', '--package-manager-path', bin, '--reboot-command', join(bin, 'reboot.sh'), '--reboot-required-file', join(bin, 'reboot-required')];
const calls = (bin: string) => (existsSync(join(bin, 'calls.log')) ? readFileSync(join(bin, 'calls.log'), 'utf8').trim().split('\n').filter(Boolean) : []);
const installs = (bin: string) => calls(bin).filter((l) => l.startsWith('install ')).map((l) => l.split(' ').at(-1)!);
const assessments = (bin: string) => calls(bin).filter((l) => l.includes('dist-upgrade')).length;

function install(operationId: string): GoalStatePatchOperation {
  return {
    operationId, kind: 'install',
    install: { maximumDurationSeconds: 3600, rebootSetting: 'Never', classificationsToInclude: ['Security'], packageNameMasksToInclude: [], packageNameMasksToExclude: [], rebootNoticeSeconds: 0 },
  };
}

function finished(agentId: string, opId: string): PatchOperationReport | undefined {
  const r = cp.lastReport(agentId)?.patchOperations?.find((p) => p.operationId === opId);
  return r && r.status !== 'InProgress' ? r : undefined;
}

function patchesIn(file: string): PatchState | undefined {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { patches: PatchState }).patches;
  } catch {
    return undefined;
  }
}

/** Restores both journal files as the killed agent left them, cuts `state.json` at `cut`, starts the agent. */
function restartCut(d: Dirs, bin: string, files: { state: string; prev: string }, cut: number): AgentProcess {
  writeFileSync(join(d.lib, '.agent/state.json'), files.state, { mode: 0o600 });
  writeFileSync(join(d.lib, '.agent/state.prev.json'), files.prev, { mode: 0o600 });
  truncateSync(join(d.lib, '.agent/state.json'), cut);
  return rig.startAgent(d, pmArgs(bin));
}

async function stop(agent: AgentProcess): Promise<void> {
  agent.kill('SIGKILL');
  await killed(agent);
}

test('a journal torn inside the patch ids done: the finished operation is not run again, nothing is installed twice', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  // postgresql-15 fails: it stays on offer, so running the operation again would install it again.
  const bin = scriptedApt(d, [`openssl 3.0.19-1 3.0.22-1 ${SEC}`, `postgresql-15 15.13-0 15.14-0 ${SEC}`], { 'fail-postgresql-15': '' });
  cp.goals.set(agentId, { ...goal(1, []), patchOperations: [install('inst-1')] });
  const statePath = join(d.lib, '.agent/state.json');
  let agent = rig.startAgent(d, pmArgs(bin));
  await until('inst-1 done', () => finished(agentId, 'inst-1'), 30_000, agent);
  await until('inst-1 journaled as done', () => patchesIn(statePath)?.doneIds.includes('inst-1'), 10_000, agent);
  await stop(agent);
  const files = { state: readFileSync(statePath, 'utf8'), prev: readFileSync(join(d.lib, '.agent/state.prev.json'), 'utf8') };
  assert.deepEqual(installs(bin), ['openssl=3.0.22-1', 'postgresql-15=15.14-0']);
  const text = files.state;
  const at = (s: string) => {
    const i = text.indexOf(s);
    assert.ok(i > 0, `${s} is in the journal`);
    return i;
  };
  // Inside the ids done, inside the history (before the ids), inside the event counter, and nothing left.
  const cuts = [at('"doneIds"') + 16, at('"history"') + 40, at('"eventSeq"') + 5, 0];
  for (const cut of cuts) {
    const context = `cut at byte ${cut} of ${text.length}`;
    const reports = cp.reports.get(agentId)?.length ?? 0;
    agent = restartCut(d, bin, files, cut);
    try {
      await until(`a report after the restart (${context})`, () => (cp.reports.get(agentId)?.length ?? 0) > reports, 20_000, agent);
      await sleep(1500); // a pass or two: a re-run would have started by now
      assert.match(agent.output(), new RegExp(`state\\.json was cut at byte ${cut} .*from the write before it`), context);
      assert.deepEqual(installs(bin), ['openssl=3.0.22-1', 'postgresql-15=15.14-0'], `no install ran again (${context})\n${agent.output()}`);
      assert.equal(assessments(bin), 1, `not even assessed again (${context})`);
      assert.ok(patchesIn(statePath)?.doneIds.includes('inst-1'), `the rewritten journal has inst-1 done (${context})`);
      assert.equal(finished(agentId, 'inst-1')?.status, 'CompletedWithWarnings', context);
    } finally {
      await stop(agent);
    }
  }
  rmSync(d.root, { recursive: true, force: true });
});

test('a journal torn inside the operation in flight, killed mid-install: the running install is picked up, not started again', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = scriptedApt(d, [`libssl3 3.0.19-1 3.0.22-1 ${SEC}`, `openssl 3.0.19-1 3.0.22-1 ${SEC}`], { 'slow-openssl': '3' });
  cp.goals.set(agentId, { ...goal(1, []), patchOperations: [install('inst-2')] });
  const statePath = join(d.lib, '.agent/state.json');
  let agent = rig.startAgent(d, pmArgs(bin));
  // Killed once the journal names the running install's wrapper (the write after the one announcing it).
  await until('openssl install running', () => (patchesIn(statePath)?.current?.steps['install:openssl']?.pid ?? null) !== null, 30_000, agent);
  await stop(agent);
  const files = { state: readFileSync(statePath, 'utf8'), prev: readFileSync(join(d.lib, '.agent/state.prev.json'), 'utf8') };
  const cut = files.state.indexOf('"install:openssl"') + 30; // inside the step: the whole `current` is dropped
  assert.ok(cut > 30, 'the step is in the journal');
  agent = restartCut(d, bin, files, cut);
  try {
    const r = await until('inst-2 done', () => finished(agentId, 'inst-2'), 30_000, agent);
    assert.equal(r.status, 'Succeeded', agent.output());
    assert.match(agent.output(), /install:openssl was running when the agent stopped; picking it up/);
    assert.deepEqual(installs(bin), ['libssl3=3.0.22-1', 'openssl=3.0.22-1'], `each install ran once\n${agent.output()}`);
    assert.equal(assessments(bin), 1, 'the operation was continued, not assessed afresh');
  } finally {
    await stop(agent);
  }
  rmSync(d.root, { recursive: true, force: true });
});

test('the write lost is the one that finished a step, or the one that announced one: the run files keep either from running again', async () => {
  const d = tempDirs();
  const agentId = await rig.enroll(d);
  const bin = scriptedApt(d, [`libssl3 3.0.19-1 3.0.22-1 ${SEC}`, `openssl 3.0.19-1 3.0.22-1 ${SEC}`], { 'slow-openssl': '3' });
  cp.goals.set(agentId, { ...goal(1, []), patchOperations: [install('inst-3')] });
  const statePath = join(d.lib, '.agent/state.json');
  let agent = rig.startAgent(d, pmArgs(bin));
  await until('openssl install running', () => (patchesIn(statePath)?.current?.steps['install:openssl']?.pid ?? null) !== null, 30_000, agent);
  await stop(agent);
  const state = readFileSync(statePath, 'utf8');
  // The write before, as if the last ones were lost: libssl3 still running (its end not journaled),
  // openssl not announced (yet its wrapper was spawned and runs on).
  const older = JSON.parse(state) as { patches: PatchState };
  const cur = older.patches.current!;
  assert.equal(cur.steps['install:libssl3']?.state, 'done');
  cur.steps['install:libssl3'] = { ...cur.steps['install:libssl3']!, state: 'running', exitCode: null, finishedAt: null, output: '' };
  delete cur.results.libssl3;
  delete cur.steps['install:openssl'];
  const cut = state.indexOf('"install:openssl"') + 30; // inside current: completed from the write before
  agent = restartCut(d, bin, { state, prev: `${JSON.stringify(older, null, 2)}\n` }, cut);
  try {
    const r = await until('inst-3 done', () => finished(agentId, 'inst-3'), 30_000, agent);
    assert.equal(r.status, 'Succeeded', agent.output());
    assert.match(agent.output(), /install:libssl3 was running when the agent stopped; picking it up/);
    assert.match(agent.output(), /install:openssl has run files but no journal record \(a journal write was lost\); picking it up, not starting it again/);
    assert.deepEqual(installs(bin), ['libssl3=3.0.22-1', 'openssl=3.0.22-1'], `each install ran once\n${agent.output()}`);
    await until('the exit files are removed with the operation', () => readdirSync(join(d.lib, '.agent/run')).length === 0, 5_000, agent);
  } finally {
    await stop(agent);
  }
  rmSync(d.root, { recursive: true, force: true });
});
