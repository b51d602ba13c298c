/**
 * Property: `kill -9` of a real `phasewise agent run` at random moments of an upgrade that fails and
 * rolls back (download, update, install, uninstall, reinstall of the last known good) never runs a
 * handler command twice for one operation and step, and the restarted agent always converges to the
 * rolled-back state with the last known good package kept.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { calls, extension, goal, HANDLER, handlerZip, newPublisher, packageRef, sleep, tempDirs, trust } from './helpers/agent-kit.js';
import { cli, CLI, ROOT } from './helpers/cli.js';
import { ControlPlane } from './helpers/control-plane.js';

const cp = new ControlPlane();
const publisher = newPublisher();
const live: ChildProcess[] = [];
before(() => cp.start());
after(async () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await cp.stop();
});

function run(d: ReturnType<typeof tempDirs>): ChildProcess {
  const env = { ...process.env, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.02' };
  const args = ['agent', 'run', '--lib-dir', d.lib, '--config-dir', d.config, '--log-dir', d.log, '--imds-port', '0'];
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: 'ignore' });
  live.push(child);
  return child;
}

const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));

test('R31: kill -9 at random moments of a failing upgrade and its rollback: every step once, convergence, LKG kept', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 1500 }), { minLength: 1, maxLength: 2 }), async (killDelays) => {
      const d = tempDirs();
      trust(d, publisher);
      const c = await cli('agent', 'connect', '--server', cp.url, '--enrollment-token', cp.token, '--ca-cert', join(ROOT, 'test/fixtures/tls/cert.pem'),
        '--lib-dir', d.lib, '--config-dir', d.config);
      assert.equal(c.status, 0, c.stderr);
      const agentId = JSON.parse(readFileSync(join(d.lib, '.agent/enrollment.json'), 'utf8')).agentId as string;
      const slow = 'sleep 0.3';
      const a = packageRef(cp.packages, publisher, HANDLER, '1.0.0', await handlerZip(d.callLog, { install: slow, uninstall: slow, disable: slow }));
      const b = packageRef(cp.packages, publisher, HANDLER, '1.1.0', await handlerZip(d.callLog, { update: slow, install: 'sleep 0.2; exit 3', uninstall: slow }));
      cp.goals.set(agentId, goal(1, [extension({ version: '1.0.0', package: a, operationId: 'op-a' })]));
      let agent = run(d);
      const outcome = (op: string) => cp.lastReport(agentId)?.agentState[HANDLER]?.lastOperation?.operationId === op;
      for (let i = 0; i < 400 && !outcome('op-a'); i++) await sleep(50);
      assert.ok(outcome('op-a'), 'A installed');
      cp.goals.set(agentId, goal(2, [extension({ version: '1.1.0', package: b, operationId: 'op-b', settingsSeqNo: 2 })]));
      for (const delay of killDelays) {
        await sleep(delay);
        agent.kill('SIGKILL');
        await exited(agent);
        agent = run(d);
      }
      for (let i = 0; i < 600 && !outcome('op-b'); i++) await sleep(50);
      agent.kill('SIGTERM');
      await exited(agent);
      const last = cp.lastReport(agentId)?.agentState[HANDLER];
      assert.equal(last?.lastOperation?.operationId, 'op-b', `converged (kills at ${killDelays.join(', ')} ms)`);
      assert.equal(last?.lastOperation?.outcome, 'rolledBack');
      assert.equal(last?.installedVersion, '1.0.0');
      assert.ok(existsSync(join(d.lib, '.agent/packages', `${HANDLER}__1.0.0.zip`)));
      const steps = calls(d.callLog).map((l) => l.split(' ').slice(0, 4).join(' '));
      const twice = steps.filter((s, i) => steps.indexOf(s) !== i);
      assert.deepEqual(twice, [], `no step twice (kills at ${killDelays.join(', ')} ms): ${steps.join(' | ')}`);
    }),
    { numRuns: 3, seed: Number(process.env.PHASEWISE_PROPERTY_SEED ?? 20261205), endOnFailure: true },
  );
});
