/**
 * A handler command outliving the agent: the journal announces it before it is spawned, so the next
 * agent uses its exit code if it finished meanwhile, or waits for it and still kills it at the original
 * deadline. (The agent "dies" here by its sleep throwing; agent-kill.test.ts uses real kill -9.)
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { convergeOnce } from '../src/agent/converge.js';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, PackageServer, packageRef, runtime, sleep, tempDirs, trust } from './helpers/agent-kit.js';

const server = new PackageServer();
const publisher = newPublisher();
before(() => server.start());
after(() => server.stop());

/** Processes of group `pgid` that are not zombies (a container's init may not reap orphans). */
function liveMembers(pgid: number): number[] {
  const live: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') live.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return live;
}

/** A runtime whose agent "crashes" (its next sleep throws) once the call log shows `line`. */
function crashingWhen(dirs: ReturnType<typeof tempDirs>, line: RegExp) {
  const rt = runtime(dirs);
  rt.sleep = async (ms) => {
    if (calls(dirs.callLog).some((l) => line.test(l))) throw new Error('simulated crash');
    await sleep(ms);
  };
  return rt;
}

test('a command that finished while the agent was down: its exit code is used, it does not run again', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { install: 'sleep 0.4' }));
  const g = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
  await assert.rejects(convergeOnce(crashingWhen(dirs, /^install/), g), /simulated crash/);
  await sleep(800);
  const rt = runtime(dirs);
  await convergeOnce(rt, g);
  assert.equal(rt.journal.state.extensions[HANDLER]!.history[0]?.outcome, 'succeeded');
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]), ['install', 'enable']);
});

test('a hanging command is still killed at its original deadline by the next agent', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { install: 'sleep 60' }));
  const g = goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]);
  const first = crashingWhen(dirs, /^install/);
  first.timeoutsMs.install = 2000;
  await assert.rejects(convergeOnce(first, g), /simulated crash/);
  const state = JSON.parse(readFileSync(join(dirs.lib, '.agent/state.json'), 'utf8'));
  const step = state.extensions[HANDLER].op.steps['install@1.0.0'];
  assert.equal(step.state, 'running');
  assert.ok(step.pid > 0, 'the pid is journaled');
  const rt = runtime(dirs); // its own timeouts are 10 s: the journaled 2 s deadline must win
  await convergeOnce(rt, g);
  const elapsed = Date.now() - step.startedAt;
  assert.ok(elapsed >= 2000 && elapsed < 6000, `killed at the original deadline (${elapsed} ms after the start)`);
  const o = rt.journal.state.extensions[HANDLER]!.history[0]!;
  assert.equal(o.outcome, 'failed');
  assert.match(o.message, /install of 1\.0\.0 timed out/);
  await sleep(100);
  assert.deepEqual(liveMembers(step.pid), [], 'nothing of the process group runs any more');
  assert.equal(calls(dirs.callLog).length, 1);
});

test('a command killed from outside (no exit code, e.g. a reboot) is run again once, and the log says so', async () => {
  const dirs = tempDirs();
  trust(dirs, publisher);
  const flag = join(dirs.root, 'first-try');
  const ref = packageRef(server, publisher, HANDLER, '1.0.0', await handlerZip(dirs.callLog, { install: `if [ ! -f '${flag}' ]; then touch '${flag}'; sleep 30; fi` }));
  const rt = runtime(dirs);
  const pass = convergeOnce(rt, goal(1, [extension({ version: '1.0.0', package: ref, operationId: 'op-1' })]));
  for (let i = 0; i < 200 && !existsSync(flag); i++) await sleep(25);
  const step = rt.journal.state.extensions[HANDLER]!.op!.steps['install@1.0.0']!;
  process.kill(-step.pid!, 'SIGKILL');
  await pass;
  assert.equal(rt.journal.state.extensions[HANDLER]!.history[0]?.outcome, 'succeeded');
  assert.deepEqual(calls(dirs.callLog).map((l) => l.split(' ')[0]), ['install', 'install', 'enable']);
  assert.ok(rt.lines.some((l) => /install@1\.0\.0 is gone without an exit code \(killed from outside/.test(l)), rt.lines.join('\n'));
});
