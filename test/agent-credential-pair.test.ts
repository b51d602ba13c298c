/**
 * A client certificate that is not for the machine key (`agent connect --force` cut short between its
 * writes, or files of two enrollments) made every request throw inside Node before it existed; the
 * request's deadline then had no request to cut, threw a ReferenceError from a timer 30 s later and ended
 * the agent (systemd restarted it into the same end). Now `agent run` refuses to start saying what to do,
 * and a request that cannot be created is an ordinary, retried failure.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { HttpError, mtlsAgent, request } from '../src/agent/http-client.js';
import { sleep, tempDirs, TLS_CERT } from './helpers/agent-kit.js';
import { AgentRig, caFile, killed } from './helpers/agent-process.js';

const rig = new AgentRig();
before(() => rig.start());
after(() => rig.stop());

test('a request Node refuses to create (key and certificate that do not match) is rejected, and its deadline later throws nothing', async () => {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const agent = mtlsAgent(key, TLS_CERT, [TLS_CERT]);
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    await assert.rejects(request(`${rig.cp.url}/v1/agents/a/goalstate`, { agent, maxBytes: 1024, timeoutMs: 200 }), (err: unknown) => {
      assert.ok(err instanceof HttpError);
      assert.match(err.message, /cannot send the request to .*key values mismatch/);
      return true;
    });
    await sleep(600); // past the deadline
    assert.deepEqual(uncaught, []);
  } finally {
    process.off('uncaughtException', onUncaught);
    agent.destroy();
  }
});

test('agent run with a client certificate that is not for the machine key exits 1 at once, saying to enroll again', async () => {
  const d = tempDirs();
  await rig.enroll(d);
  copyFileSync(caFile, join(d.lib, '.agent/client.crt')); // a certificate, but another key's
  const agent = rig.startAgent(d);
  const exit = await Promise.race([killed(agent).then(() => agent.exitCode), sleep(20_000).then(() => 'running')]);
  assert.equal(exit, 1, agent.output());
  assert.match(agent.output(), /the client certificate .*client\.crt is not for the machine key .*\.prv .*enroll again with `phasewise agent connect --force`/);
  assert.equal(agent.output().trim().split('\n').length, 1, 'one line, no stack trace');
});
