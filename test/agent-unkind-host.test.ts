/**
 * `phasewise agent` on an unkind host: handlers that leave a FIFO or a symlink where their status file
 * goes, a second agent started on the same state folder, a state folder whose files cannot grow. The
 * agent keeps working for the other extensions, reports a precise error for the one that failed, never
 * hangs, never runs a step twice (also when the exit file cannot be written), and never loses or
 * truncates its journal.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { StatusReport } from '../src/protocol/agent-wire.js';
import { readHandlerStatus, readHeartbeat } from '../src/agent/handler-files.js';
import { readJsonFile } from '../src/agent/atomic-file.js';
import { runIdOf, runStep } from '../src/agent/handler-process.js';
import type { CommandSpec, ProcessRuntime } from '../src/agent/handler-process.js';
import { Journal } from '../src/agent/journal.js';
import type { OperationJournal } from '../src/agent/journal.js';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, packageRef, sleep, tempDirs, trust, zipOf } from './helpers/agent-kit.js';
import { AgentRig, killed, until } from './helpers/agent-process.js';
import { ROOT } from './helpers/cli.js';

const rig = new AgentRig();
const cp = rig.cp;
const publisher = newPublisher();
before(() => rig.start());
after(() => rig.stop());

const mkfifo = (path: string) => assert.equal(spawnSync('mkfifo', [path]).status, 0, `mkfifo ${path}`);
const LINKED = 'Contoso.Test.Linked';
const GOOD = 'Contoso.Test.Good';
const enroll = (d: Parameters<AgentRig['enroll']>[0]) => rig.enroll(d);
const outcome = (r: StatusReport | undefined, name: string, opId: string) => {
  const last = r?.agentState[name]?.lastOperation;
  return last?.operationId === opId ? last : undefined;
};

test('a status file that is a FIFO or a symlink to /etc/shadow: error 1012 for that extension, no hang, no leak; the others run', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  // mkfifo: opening it for reading blocks until a writer comes, which no handler does.
  const fifo = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { enable: 'mkfifo status/$SEQ.status' }));
  const linked = packageRef(cp.packages, publisher, LINKED, '1.0.0', await handlerZip(d.callLog, { enable: 'ln -s /etc/shadow status/$SEQ.status' }));
  const good = packageRef(cp.packages, publisher, GOOD, '1.0.0', await handlerZip(d.callLog));
  cp.goals.set(agentId, goal(1, [
    extension({ version: '1.0.0', package: fifo, operationId: 'op-fifo' }),
    extension({ name: LINKED, version: '1.0.0', package: linked, operationId: 'op-link' }),
    extension({ name: GOOD, version: '1.0.0', package: good, operationId: 'op-good' }),
  ]));
  const agent = rig.startAgent(d);
  try {
    const r = await until('all three finished', () => {
      const rep = cp.lastReport(agentId);
      return outcome(rep, HANDLER, 'op-fifo') && outcome(rep, LINKED, 'op-link') && outcome(rep, GOOD, 'op-good') ? rep : undefined;
    }, 30_000, agent);
    assert.equal(outcome(r, HANDLER, 'op-fifo')!.outcome, 'failed');
    assert.match(outcome(r, HANDLER, 'op-fifo')!.message, /1012: the handler's status file status\/1\.status is invalid: \S*status\/1\.status is not a regular file/);
    assert.equal(outcome(r, LINKED, 'op-link')!.outcome, 'failed');
    assert.match(outcome(r, LINKED, 'op-link')!.message, /1012: .*1\.status is a symbolic link; only a regular file is read/);
    assert.equal(outcome(r, GOOD, 'op-good')!.outcome, 'succeeded');
    const shadow = readFileSync('/etc/shadow', 'utf8').split(':')[0]!;
    assert.ok(!JSON.stringify(r).includes(`${shadow}:`), 'nothing of /etc/shadow reaches the server');
    // Each enable ran once: a failed operation is not retried by the agent.
    assert.equal(calls(d.callLog).filter((l) => l.startsWith('enable')).length, 3);
  } finally {
    agent.kill('SIGKILL');
    await killed(agent);
  }
});

test('status, heartbeat and manifest files: a FIFO, a device or a symlink is refused at once, never read', () => {
  const d = tempDirs();
  const base = join(d.lib, `${HANDLER}-1.0.0`);
  mkdirSync(join(base, 'status'), { recursive: true });
  mkfifo(join(base, 'status/1.status'));
  symlinkSync('/dev/zero', join(base, 'status/2.status'));
  mkdirSync(join(base, 'status/3.status'));
  for (const seq of [1, 2, 3]) {
    const s = readHandlerStatus(base, seq).body;
    assert.equal(s.status, 'error');
    assert.equal(s.code, 1012, JSON.stringify(s));
  }
  mkfifo(join(base, 'heartbeat.log'));
  assert.match(readHeartbeat(base, Date.now()).message, /heartbeat file is invalid: \S*\/heartbeat\.log is not a regular file/);
  mkfifo(join(base, 'HandlerManifest.json'));
  assert.throws(() => readJsonFile(join(base, 'HandlerManifest.json'), 65536, false), /not a regular file/);
  // The agent's own files too (goalstate.json, state.json): a FIFO there is an error at start, not a hang.
  mkfifo(join(d.lib, 'goalstate.json'));
  assert.throws(() => readJsonFile(join(d.lib, 'goalstate.json'), 65536), /goalstate\.json is not a regular file/);
  rmSync(d.root, { recursive: true, force: true });
});

test('two agents on one state folder: the second exits 5 naming the first, which runs on; a killed owner\'s lock is taken over', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const ref = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { install: 'sleep 1' }));
  cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-two' })]));
  const first = rig.startAgent(d);
  let third: ReturnType<AgentRig['startAgent']> | null = null;
  try {
    await until('install started', () => calls(d.callLog).some((l) => l.startsWith('install')), 15_000, first);
    const second = rig.startAgent(d);
    await until('the second agent exits', () => second.exitCode !== null || second.signalCode !== null, 60_000, second); // a node start-up under load (7 helpers on 2 cores) took over 10 s
    assert.equal(second.exitCode, 5, second.output());
    assert.match(second.output(), new RegExp(`another phasewise agent \\(pid ${first.pid}\\) is running on ${d.lib}`));
    assert.equal(second.output().trim().split('\n').length, 1, 'one line');
    await until('op-two finished', () => outcome(cp.lastReport(agentId), HANDLER, 'op-two'), 20_000, first);
    first.kill('SIGKILL');
    await killed(first);
    third = rig.startAgent(d);
    await until('the third agent reports', () => /running against/.test(third!.output()), 15_000, third);
    assert.equal(third.exitCode, null, third.output());
    // Under one agent at a time each step ran once.
    assert.deepEqual(calls(d.callLog).map((l) => l.split(' ')[0]), ['install', 'enable']);
  } finally {
    first.kill('SIGKILL');
    third?.kill('SIGTERM');
    if (third) await killed(third);
  }
  assert.deepEqual(readdirSync(join(d.lib, '.agent')).filter((f) => f.startsWith('agent.lock')), [], 'a stopped agent leaves no lock');
});

test('a state folder that cannot grow (ulimit -f): a short write is an error, the journal keeps its last whole content, no temporary left', () => {
  const d = tempDirs();
  const file = join(d.lib, '.agent/state.json');
  const script = [
    `import { writeJsonAtomic } from ${JSON.stringify(join(ROOT, 'dist/src/agent/atomic-file.js'))};`,
    `writeJsonAtomic(${JSON.stringify(file)}, { version: 1, small: true });`,
    'try {',
    `  writeJsonAtomic(${JSON.stringify(file)}, { version: 1, big: 'x'.repeat(256 * 1024) });`,
    "  console.log('written');",
    '} catch (err) {',
    "  console.log('refused', err.code);",
    '}',
  ].join('\n');
  // ulimit -f 16: files stop at 8 KiB (512-byte blocks); write(2) then writes part and returns a short count.
  const r = spawnSync('sh', ['-c', 'ulimit -f 16; exec "$0" --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'refused EFBIG');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { version: 1, small: true }, 'the last whole journal');
  assert.deepEqual(readdirSync(join(d.lib, '.agent')), ['state.json'], 'no temporary file left');
  rmSync(d.root, { recursive: true, force: true });
});

test('a package that cannot be written out (ulimit -f, as a full disk): not rejected, the pass fails to be tried again later, no half folder left', async () => {
  const d = tempDirs();
  const zip = join(d.root, 'p.zip');
  writeFileSync(zip, await zipOf({ 'HandlerManifest.json': '[]', 'bin/big': 'x'.repeat(64 * 1024) }));
  const target = join(d.lib, 'Contoso.Test.Agent-1.0.0');
  const script = [
    `import { unpackPackage } from ${JSON.stringify(join(ROOT, 'dist/src/agent/safe-unzip.js'))};`,
    'try {',
    `  await unpackPackage(${JSON.stringify(zip)}, ${JSON.stringify(target)});`,
    "  console.log('unpacked');",
    '} catch (err) {',
    "  console.log(err.constructor.name, err.code, err.message);",
    '}',
  ].join('\n');
  const r = spawnSync('sh', ['-c', 'ulimit -f 16; exec "$0" --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^Error EFBIG cannot unpack the package on this machine: EFBIG .*tried again later$/, 'not a PackageRejected: the package is fine');
  assert.ok(!existsSync(target) && !existsSync(`${target}.unpacking`), 'no half folder left');
  rmSync(d.root, { recursive: true, force: true });
});

test('the exit file cannot be written (a full disk): the finished command is not taken for a killed one and runs once', async () => {
  const d = tempDirs();
  const counter = join(d.root, 'runs');
  // The run file base is the wrapper's last argument; a folder named like its temporary exit file makes
  // `echo $c > <base>.exit.tmp` fail, as a full disk would.
  const command = `echo run >> '${counter}'; base=$(tr '\\0' '\\n' < /proc/$PPID/cmdline | tail -n 1); mkdir "$base.exit.tmp"; exit 3`;
  const op: Pick<OperationJournal, 'operationId' | 'steps'> = { operationId: 'op-noexit', steps: {} };
  const rt: ProcessRuntime = { now: Date.now, sleep, pollMs: 20, log: () => undefined };
  const spec: CommandSpec = { key: 'install@1.0.0', command, cwd: d.root, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs: 10_000, logFile: join(d.log, 'c.log') };
  try {
    const r = await runStep(d, new Journal(d), HANDLER, op, spec, rt);
    assert.deepEqual({ exitCode: r.exitCode, timedOut: r.timedOut }, { exitCode: 3, timedOut: false }, r.output);
    assert.equal(readFileSync(counter, 'utf8'), 'run\n', 'the command ran once');
    const base = runIdOf(HANDLER, op.operationId, spec.key);
    assert.deepEqual(readdirSync(join(d.lib, '.agent/run')), [`${base}.out`], 'its run files are gone; only the emptied output file stays, for the sweep');
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('goalstate.json cannot be written for a while (a read-only or full state folder): the new goal state is fetched again and applied once it can', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await enroll(d);
  const zip = await handlerZip(d.callLog);
  const ext = (v: string, op: string, seq: number) => extension({ version: v, package: packageRef(cp.packages, publisher, HANDLER, v, zip), operationId: op, settingsSeqNo: seq });
  cp.goals.set(agentId, goal(1, [ext('1.0.0', 'op-1', 1)]));
  const agent = rig.startAgent(d);
  const done = (op: string) => until(`${op} done`, () => outcome(cp.lastReport(agentId), HANDLER, op), 20_000, agent);
  try {
    assert.equal((await done('op-1')).outcome, 'succeeded');
    // A folder where goalstate.json goes: renaming the new file over it fails, as on a read-only or full disk.
    const gsFile = join(d.lib, '.agent/goalstate.json');
    rmSync(gsFile);
    mkdirSync(join(gsFile, 'in-the-way'), { recursive: true });
    cp.goals.set(agentId, goal(2, [ext('1.1.0', 'op-2', 2)]));
    await until('the failed write logged', () => /goal state poll failed \(.*goalstate\.json/.test(agent.output()), 20_000, agent);
    rmSync(gsFile, { recursive: true });
    // The agent took goal state 2 in memory with its ETag and never worked on it: the server answered 304 from then on.
    assert.equal((await done('op-2')).outcome, 'succeeded');
    assert.equal((readJsonFile(gsFile, 1 << 22) as { goalState: { goalStateId: number } }).goalState.goalStateId, 2);
    assert.equal(calls(d.callLog).filter((l) => l.startsWith('enable ') && l.includes('op-2')).length, 1, 'enable of op-2 ran once');
  } finally {
    agent.kill('SIGKILL');
    await killed(agent);
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('the server\'s TLS certificate changes issuer: the agent says "not trusted"; the new CA put in server-ca.pem and a restart, it works on, not re-enrolled', async () => {
  const d = tempDirs();
  const agentId = await enroll(d);
  cp.goals.set(agentId, goal(1, []));
  const serverCa = join(d.lib, '.agent/server-ca.pem');
  const rightCa = readFileSync(serverCa, 'utf8');
  // A certificate of another issuer stands for the old CA once the server's certificate was replaced.
  writeFileSync(serverCa, readFileSync(join(d.lib, '.agent/client.crt'), 'utf8'));
  let agent = rig.startAgent(d);
  try {
    await until('the refusal logged', () => /goal state poll failed \(cannot reach .*is not trusted/.test(agent.output()), 20_000, agent);
    assert.equal(cp.lastReport(agentId), undefined);
    agent.kill('SIGTERM');
    await killed(agent);
    writeFileSync(serverCa, rightCa); // docs/agent.md: the operator puts the server's new CA there and restarts the agent
    agent = rig.startAgent(d);
    await until('a report after the restart', () => cp.lastReport(agentId)?.goalStateId === 1, 20_000, agent);
    assert.equal(JSON.parse(readFileSync(join(d.lib, '.agent/enrollment.json'), 'utf8')).agentId, agentId, 'the same agent, not enrolled again');
  } finally {
    agent.kill('SIGKILL');
    await killed(agent);
    rmSync(d.root, { recursive: true, force: true });
  }
});
