/**
 * A handler command that leaves a process behind, writing on to the command's output file after the
 * step ended (a daemon started with `&`). The step's end unlinked `run/<id>.out` under it: what it wrote
 * then grew an unlinked file, out of every sweep's reach and of the disk's `du`. The file is now kept while
 * a process holds it (emptied, cut by the sweep like any `.out`) and removed by the sweep once nobody does.
 * Real child processes, killed by their pid.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_OUTPUT_FILE_BYTES, runIdOf, runStep, trimRunOutputs } from '../src/agent/handler-process.js';
import type { CommandSpec, ProcessRuntime } from '../src/agent/handler-process.js';
import { heldOpen } from '../src/agent/open-files.js';
import { Journal } from '../src/agent/journal.js';
import type { OperationJournal } from '../src/agent/journal.js';
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
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 0 });
    assert.ok(existsSync(out));
    assert.deepEqual(trimRunOutputs(d, 4, true), { trimmed: 1, removed: 0 }, 'a held file is cut like any');
    assert.equal(readFileSync(out, 'utf8'), 'late');

    // ...and removes it once nobody holds it.
    process.kill(pid, 'SIGKILL');
    await until('the daemon gone', () => !alive(pid));
    pid = 0;
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, false), { trimmed: 0, removed: 0 }, 'only a sweep that looks for idle files removes');
    assert.deepEqual(trimRunOutputs(d, MAX_OUTPUT_FILE_BYTES, true), { trimmed: 0, removed: 1 });
    assert.deepEqual(readdirSync(join(d.lib, '.agent/run')), []);
  } finally {
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(d.root, { recursive: true, force: true });
  }
});

test('a step whose command left nothing running: its output file goes with the step, as before', async () => {
  const d = tempDirs();
  const op: Pick<OperationJournal, 'operationId' | 'steps'> = { operationId: 'op-plain', steps: {} };
  const rt: ProcessRuntime = { now: Date.now, sleep, pollMs: 20, log: () => undefined };
  const spec: CommandSpec = { key: 'install@1.0.0', command: 'echo done; exit 4', cwd: d.root, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeoutMs: 20_000, logFile: join(d.log, 'c.log') };
  try {
    const r = await runStep(d, new Journal(d), HANDLER, op, spec, rt);
    assert.equal(r.exitCode, 4);
    assert.equal(r.output, 'done\n');
    const base = runIdOf(HANDLER, op.operationId, spec.key);
    assert.deepEqual(readdirSync(join(d.lib, '.agent/run')), [`${base}.exit`], 'only the exit file, kept until the operation closes');
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
