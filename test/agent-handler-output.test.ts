/**
 * A handler command that leaves a process behind, writing on to the command's output file after the
 * step ended (a daemon started with `&`). The step's end unlinked `run/<id>.out` under it: what it wrote
 * then grew an unlinked file, out of every sweep's reach and of the disk's `du`. The file is now kept while
 * a process holds it (emptied, cut by the sweep like any `.out`) and removed by the sweep once nobody does.
 * Real child processes, killed by their pid.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_OUTPUT_FILE_BYTES, runIdOf, runStep, trimRunOutputs } from '../src/agent/handler-process.js';
import type { CommandSpec, ProcessRuntime } from '../src/agent/handler-process.js';
import { heldOpen } from '../src/agent/open-files.js';
import { Journal } from '../src/agent/journal.js';
import type { OperationJournal, PatchOpJournal, StepRecord } from '../src/agent/journal.js';
import { HANDLER, sleep, tempDirs } from './helpers/agent-kit.js';
import { processAlive as alive } from './helpers/poll.js';

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

test('a process the handler left behind writes on into the kept run/<id>.out, never into an unlinked file; the sweep removes it once the process is gone', async () => {
  const d = tempDirs();
  const pidFile = join(d.root, 'daemon.pid');
  const wrote = join(d.root, 'wrote');
  const go = join(d.root, 'go');
  // The daemon waits for `go` (the step has ended by then), writes a line to its stdout, then lingers.
  const daemon = `echo $$ > '${pidFile}'; while [ ! -f '${go}' ]; do sleep 0.05; done; echo late-line; touch '${wrote}'; exec sleep 60`;
  const command = `echo first-line; sh -c "${daemon.replace(/["$]/g, (c) => `\\${c}`)}" & while [ ! -s '${pidFile}' ]; do sleep 0.02; done; exit 0`;
  const op: Pick<OperationJournal, 'operationId' | 'steps'> = { operationId: 'op-daemon', steps: {} };
  const rt: ProcessRuntime = { now: Date.now, sleep, pollMs: 20, log: () => undefined };
  const spec: CommandSpec = { key: 'enable@1.0.0', command, cwd: d.root, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs: 20_000, logFile: join(d.log, 'c.log') };
  const journal = new Journal(d);
  const out = join(d.lib, '.agent/run', `${runIdOf(HANDLER, op.operationId, spec.key)}.out`);
  let pid = 0;
  try {
    const r = await runStep(d, journal, HANDLER, op, spec, rt);
    assert.deepEqual({ exitCode: r.exitCode, timedOut: r.timedOut }, { exitCode: 0, timedOut: false }, r.output);
    assert.match(r.output, /first-line/);
    pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(alive(pid), 'the daemon outlived its step');
    assert.ok(existsSync(out), 'the output file the daemon holds is kept');
    assert.equal(readFileSync(out, 'utf8'), '', 'emptied at the step\'s end');
    assert.deepEqual(heldOpen([out]), new Set([out]));

    writeFileSync(go, '');
    await until('the daemon wrote its line', () => existsSync(wrote));
    assert.doesNotMatch(readlinkSync(`/proc/${pid}/fd/1`), /\(deleted\)$/, 'the daemon writes to a file on the disk\'s books');
    assert.equal(readFileSync(out, 'utf8'), 'late-line\n');

    // The operation closes (its exit files go); the sweep cuts the file but leaves it while it is held...
    journal.forgetRuns(op.steps);
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 0, leftovers: 0 });
    assert.ok(existsSync(out));
    assert.deepEqual(trimRunOutputs(d, 4, true), { trimmed: 1, removed: 0, leftovers: 0 }, 'a held file is cut like any');
    assert.equal(readFileSync(out, 'utf8'), 'late');

    // ...and removes it once nobody holds it.
    process.kill(pid, 'SIGKILL');
    await until('the daemon gone', () => !alive(pid));
    pid = 0;
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, false), { trimmed: 0, removed: 0, leftovers: 0 }, 'only a sweep that looks for idle files removes');
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 1, leftovers: 0 });
    assert.deepEqual(readdirSync(join(d.lib, '.agent/run')), []);
  } finally {
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('a step\'s end does not read every process\'s open files: its output file is emptied and kept; the idle sweep removes it once its operation closed', async () => {
  const d = tempDirs();
  const op: Pick<OperationJournal, 'operationId' | 'steps'> = { operationId: 'op-plain', steps: {} };
  const rt: ProcessRuntime = { now: Date.now, sleep, pollMs: 20, log: () => undefined };
  const spec: CommandSpec = { key: 'install@1.0.0', command: 'echo done; exit 4', cwd: d.root, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs: 20_000, logFile: join(d.log, 'c.log') };
  const run = join(d.lib, '.agent/run');
  try {
    const journal = new Journal(d);
    const r = await runStep(d, journal, HANDLER, op, spec, rt);
    assert.equal(r.exitCode, 4);
    assert.equal(r.output, 'done\n');
    const base = runIdOf(HANDLER, op.operationId, spec.key);
    assert.deepEqual(readdirSync(run).sort(), [`${base}.exit`, `${base}.out`], 'the exit file (kept until the operation closes) and the emptied output file');
    assert.equal(readFileSync(join(run, `${base}.out`), 'utf8'), '');
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 0, leftovers: 0 }, 'owned while its exit file is there');
    journal.forgetRuns(op.steps);
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, false), { trimmed: 0, removed: 0, leftovers: 0 }, 'only an idle sweep removes');
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 1, leftovers: 0 });
    assert.deepEqual(readdirSync(run), []);
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('heldOpen: the files some process holds, none of those nobody holds or that are gone; null without /proc', () => {
  const d = tempDirs();
  try {
    assert.deepEqual(heldOpen([join(d.root, 'missing')]), new Set());
    assert.equal(heldOpen([d.lib], join(d.root, 'no-proc')), null);
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('exit and pid files of no open step (an operation closed while the agent was killed, or dropped by a cut journal) are removed by the sweep; a live wrapper\'s are left', async () => {
  const d = tempDirs();
  const run = join(d.lib, '.agent/run');
  mkdirSync(run, { recursive: true });
  const step = (runId: string): StepRecord => ({ state: 'done', startedAt: 0, timeoutMs: 1, pid: null, runId, exitCode: 0, timedOut: false, restarts: 0, output: '', finishedAt: 0 });
  const journal = new Journal(d);
  journal.record(HANDLER).op = { steps: { 'install@1.0.0': step('aaaa') } } as unknown as OperationJournal;
  journal.state.patches.current = { steps: { 'install:openssl': step('eeee') } } as unknown as PatchOpJournal;
  const open = journal.openRunIds();
  assert.deepEqual([...open].sort(), ['aaaa', 'eeee']);
  const dead = spawnSync('true').pid!;
  const wrapperBase = join(run, 'dddd');
  // A wrapper of no open step still running: its command line names its run file base, as the real one's does.
  const wrapper = spawn('sh', ['-c', 'sleep 30; exit 0', 'phasewise-handler', wrapperBase], { stdio: 'ignore' });
  const files: Record<string, string> = {
    'aaaa.exit': '0\n', 'aaaa.out': '', 'eeee.pid': `${dead}\n`,
    'bbbb.exit': '0\n', 'bbbb.exit.tmp': '1\n', 'bbbb.out': '',
    'cccc.pid': `${dead}\n`, 'cccc.out': 'x',
    'dddd.pid': `${wrapper.pid}\n`, 'dddd.out': '',
  };
  try {
    for (const [n, text] of Object.entries(files)) writeFileSync(join(run, n), text);
    mkdirSync(join(run, 'ffff.exit')); // whatever a handler planted under such a name
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, false, open), { trimmed: 0, removed: 0, leftovers: 4, orphans: [{ runId: 'dddd', pid: wrapper.pid }] });
    assert.deepEqual(readdirSync(run).sort(), ['aaaa.exit', 'aaaa.out', 'bbbb.out', 'cccc.out', 'dddd.out', 'dddd.pid', 'eeee.pid']);
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true, open), { trimmed: 0, removed: 2, leftovers: 0, orphans: [{ runId: 'dddd', pid: wrapper.pid }] }, 'their output files go with the idle sweep');
    assert.deepEqual(readdirSync(run).sort(), ['aaaa.exit', 'aaaa.out', 'dddd.out', 'dddd.pid', 'eeee.pid'], 'the open steps\' files and the live wrapper\'s stay');
    wrapper.kill('SIGKILL');
    await until('the wrapper gone', () => !alive(wrapper.pid!));
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true, open), { trimmed: 0, removed: 1, leftovers: 1, orphans: [] }, 'once it is gone without an exit code');
    assert.deepEqual(readdirSync(run).sort(), ['aaaa.exit', 'aaaa.out', 'eeee.pid']);
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 0, leftovers: 0 }, 'without the open steps (before the first pass) nothing is taken');
  } finally {
    if (alive(wrapper.pid!)) wrapper.kill('SIGKILL');
    rmSync(d.root, { recursive: true, force: true });
  }
});
