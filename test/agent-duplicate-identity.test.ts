/**
 * Two machines with one agent identity (a cloned VM image, a restored backup): the enrollment files of
 * one lib dir copied to another. Real `phasewise agent run` processes against a real server on loopback:
 * the copy that is in contact keeps the identity, the other is refused (409 DuplicateAgentInstance, which
 * says to re-enroll) and shows in GET /phasewise/agents and /metrics; a restart of the holder on its own
 * lib dir is accepted at once; once the holder has been silent for the lease, the copy takes over.
 * The lease rule itself is a property test of AgentInstances.
 */
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { AgentInstances, instanceLeaseMs } from '../src/api/agent/agent-instances.js';
import { agentSeat } from '../src/agent/agent-seat.js';
import { ArmError } from '../src/api/arm/errors.js';
import { tempDirs } from './helpers/agent-kit.js';
import { AgentRig, caFile, dirArgs, killed, until } from './helpers/agent-process.js';
import type { AgentProcess } from './helpers/agent-process.js';
import { call, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { cliWithin } from './helpers/cli.js';

const ENROLL = 'dup-enrollment-token-0123456789';
let offsetMs = 0;
let server: TestServer;
const rig = new AgentRig(); // only for its agent processes (its stand-in control plane is not started)

before(async () => {
  server = await startTestServer({
    enrollmentTokens: [{ token: ENROLL, subscriptionId: 'sub1', resourceGroup: 'arc', location: 'eastus' }],
    agentPollIntervalSeconds: 1, agentStatusIntervalSeconds: 2,
    wallNow: () => Date.now() + offsetMs,
  });
});
after(async () => {
  await rig.stop().catch(() => {});
  await server.stop();
});

const agentsView = async () => (await call(server.url, 'GET', '/phasewise/agents')).body.value as any[];

test('agent seat: a restart keeps it; another boot, host or lib dir changes it', () => {
  const a = agentSeat('/var/lib/waagent', 'boot-1', 'web-1');
  assert.equal(agentSeat('/var/lib/waagent/', 'boot-1', 'web-1'), a);
  assert.notEqual(agentSeat('/var/lib/waagent', 'boot-2', 'web-1'), a);
  assert.notEqual(agentSeat('/var/lib/waagent', 'boot-1', 'web-2'), a);
  assert.notEqual(agentSeat('/srv/lib', 'boot-1', 'web-1'), a);
  assert.match(a, /^[0-9a-f]{32}$/);
});

test('duplicate identity: accepted requests of two different seats are at least a lease apart; a seat is refused only while another is live', () => {
  const lease = instanceLeaseMs(1, 2);
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', undefined), fc.integer({ min: 0, max: 2 * lease })), { maxLength: 60 }), (steps) => {
    let now = 0;
    const inst = new AgentInstances(lease, () => now, () => now);
    let last: { seat: string; at: number } | null = null;
    for (const [seat, dt] of steps) {
      now += dt;
      let refused = false;
      try {
        inst.check('ag', seat);
      } catch (err) {
        assert.ok(err instanceof ArmError && err.status === 409 && err.body().error.code === 'DuplicateAgentInstance');
        refused = true;
      }
      if (seat === undefined) {
        assert.equal(refused, false, 'an agent that sends no seat (before this check) is never refused');
        continue;
      }
      const live: boolean = last !== null && last.seat !== seat && now - last.at < lease;
      assert.equal(refused, live);
      if (!refused) last = { seat, at: now };
      if (refused) assert.ok(inst.duplicate('ag'));
    }
  }));
});

test('duplicate identity: only the holder\'s own seat releases the identity; then another seat is accepted at once', () => {
  const now = 0;
  const inst = new AgentInstances(60_000, () => now, () => now);
  inst.check('ag', 'a');
  inst.release('ag', 'b'); // not the holder: nothing changes
  inst.release('ag', undefined);
  assert.throws(() => inst.check('ag', 'b'), /DuplicateAgentInstance|Another machine/);
  inst.release('ag', 'a');
  inst.check('ag', 'b');
  assert.throws(() => inst.check('ag', 'a'), /Another machine/);
});

test('duplicate identity: a copied lib dir is refused with DuplicateAgentInstance while the original reports; it takes over at once when the original stops (SIGTERM), after the lease when it is killed', async () => {
  const d1 = tempDirs();
  const r = await cliWithin(120_000, 'agent', 'connect', '--server', server.url, '--enrollment-token', ENROLL, '--ca-cert', caFile, '--name', 'dup1', ...dirArgs(d1));
  assert.equal(r.status, 0, r.stderr);
  // The clone: the whole machine's agent state, key and credential copied.
  const d2 = tempDirs();
  cpSync(d1.lib, d2.lib, { recursive: true });
  cpSync(d1.config, d2.config, { recursive: true });

  let a: AgentProcess = rig.startAgent(d1);
  const reportedAfter = async (ms: number) => {
    const v = (await agentsView())[0];
    return v?.lastReport && Date.parse(v.lastReport) > ms ? v : null;
  };
  await pollUntil('the original to report', () => reportedAfter(0), a);

  const b = rig.startAgent(d2);
  await until('the copy to be refused', () => /DuplicateAgentInstance: Another machine is using the identity of agent .*phasewise agent connect --force/.test(b.output()), 60_000, b);
  const seen = await pollUntil('the refusal in GET /phasewise/agents', async () => (await agentsView())[0]?.duplicateInstance, a);
  assert.ok(seen.refusedRequests >= 1);
  assert.notEqual(seen.seat, seen.holderSeat);
  const metrics = await call(server.url, 'GET', '/metrics');
  assert.match(String(metrics.body), /^phasewise_agent_duplicate_identities 1$/m);
  // The original goes on reporting; its output has no refusal.
  const since = Date.now() + offsetMs;
  await pollUntil('the original to report again', () => reportedAfter(since), a);
  assert.doesNotMatch(a.output(), /DuplicateAgentInstance/);

  // A restart of the original on its own lib dir (same boot, host and folder: the same seat) is accepted at once.
  a.kill('SIGKILL');
  await killed(a);
  a = rig.startAgent(d1);
  const since2 = Date.now() + offsetMs;
  await pollUntil('the restarted original to report', () => reportedAfter(since2), a);
  assert.doesNotMatch(a.output(), /DuplicateAgentInstance/);

  // The original stops (SIGTERM, as at a reboot): it lets go of the identity, and the copy is accepted at once.
  a.kill('SIGTERM');
  await killed(a);
  const since3 = Date.now() + offsetMs;
  // Well within the lease since the original's last contact (without the release the copy waits for it).
  await pollUntil('the copy to take over without waiting for the lease', () => reportedAfter(since3), b, instanceLeaseMs(1, 2) - 7_000);
  const a2 = rig.startAgent(d1);
  await until('the original, back, to be refused', () => /DuplicateAgentInstance/.test(a2.output()), 60_000, a2);

  // The copy goes away without a word (kill -9, power loss): after the lease the original is accepted again.
  b.kill('SIGKILL');
  await killed(b);
  offsetMs += instanceLeaseMs(1, 2) + 1000;
  const since4 = Date.now() + offsetMs;
  await pollUntil('the original to take over after the lease', () => reportedAfter(since4), a2);
});

async function pollUntil<T>(what: string, fn: () => Promise<T | null | undefined | false>, agent: AgentProcess, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}\nagent output:\n${agent.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
