/**
 * A journal cut mid-record (power loss, a full disk on a file system without data journaling): a real
 * `phasewise agent` starts anyway. It keeps every extension record that is whole in what is left, drops
 * the torn tail, says so once in its log, and rewrites the file clean; the goal state then brings back
 * what was dropped. Offsets are random (seeded) and also at the edges: empty file, between records,
 * inside the patch state.
 */
import assert from 'node:assert/strict';
import { readFileSync, truncateSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { StatusReport } from '../src/protocol/agent-wire.js';
import type { ExtensionRecord } from '../src/agent/journal.js';
import { extension, goal, HANDLER, handlerZip, newPublisher, packageRef, tempDirs, trust } from './helpers/agent-kit.js';
import { AgentRig, killed, until } from './helpers/agent-process.js';

const rig = new AgentRig();
const cp = rig.cp;
const publisher = newPublisher();
before(() => rig.start());
after(() => rig.stop());

const GOOD = 'Contoso.Test.Good';
const NAMES = [HANDLER, GOOD];
const done = (r: StatusReport | undefined, name: string, opId: string) => r?.agentState[name]?.lastOperation?.operationId === opId && r.agentState[name]?.lastOperation?.outcome === 'succeeded';

/** Where each extension's record ends in the file as the agent writes it (JSON, 2-space indent). */
function recordEnds(text: string, state: { extensions: Record<string, ExtensionRecord> }): Map<string, number> {
  const ends = new Map<string, number>();
  for (const [name, rec] of Object.entries(state.extensions)) {
    const body = JSON.stringify(rec, null, 2).replace(/\n/g, '\n    ');
    const at = text.indexOf(`${JSON.stringify(name)}: ${body}`);
    assert.ok(at > 0, `the record of ${name} is found in the file`);
    ends.set(name, at + JSON.stringify(name).length + 2 + body.length);
  }
  return ends;
}

/** A small seeded generator (mulberry32): the offsets are random but the run can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('a journal truncated at random offsets: the agent starts, keeps the whole records, logs the cut once, rewrites the file', async () => {
  const d = tempDirs();
  trust(d, publisher);
  const agentId = await rig.enroll(d);
  const zip = await handlerZip(d.callLog);
  cp.goals.set(agentId, goal(1, NAMES.map((name) => extension({ name, version: '1.0.0', operationId: `op-${name}`, package: packageRef(cp.packages, publisher, name, '1.0.0', zip) }))));
  const file = join(d.lib, '.agent/state.json');
  const installedAll = async (agent: ReturnType<AgentRig['startAgent']>) => {
    await until('both extensions installed', () => NAMES.every((n) => done(cp.lastReport(agentId), n, `op-${n}`)), 30_000, agent);
    // The journal is written before the report: stop once both records are in the file.
    await until('both records journaled', () => {
      try {
        const s = JSON.parse(readFileSync(file, 'utf8')) as { extensions: Record<string, ExtensionRecord> };
        return NAMES.every((n) => s.extensions[n]?.state === 'Enabled' && s.extensions[n]?.op === null);
      } catch {
        return false;
      }
    }, 10_000, agent);
  };
  let agent = rig.startAgent(d);
  await installedAll(agent);
  agent.kill('SIGKILL');
  await killed(agent);
  const whole = readFileSync(file, 'utf8');
  const original = JSON.parse(whole) as { extensions: Record<string, ExtensionRecord> };
  const ends = recordEnds(whole, original);
  const seed = Number(process.env.TORN_SEED ?? 20261207);
  const next = random(seed);
  const patchesAt = whole.indexOf('"patches"');
  const offsets = [0, Math.min(...ends.values()) + 1, patchesAt + 15, ...Array.from({ length: 4 }, () => Math.floor(next() * (whole.length - 1)))];
  for (const cut of offsets) {
    const context = `seed ${seed}, cut at byte ${cut} of ${whole.length}`;
    // Back to the whole journal, then cut it.
    writeFileSync(file, whole, { mode: 0o600 });
    truncateSync(file, cut);
    const reportsBefore = cp.reports.get(agentId)?.length ?? 0;
    agent = rig.startAgent(d);
    try {
      await until(`a report after the restart (${context})`, () => (cp.reports.get(agentId)?.length ?? 0) > reportsBefore, 30_000, agent);
      const lines = agent.output().split('\n').filter((l) => /was cut at byte/.test(l));
      assert.equal(lines.length, 1, `one log line about the cut (${context}):\n${agent.output()}`);
      assert.match(lines[0]!, new RegExp(`state\\.json was cut at byte ${cut}`));
      const rewritten = JSON.parse(readFileSync(file, 'utf8')) as { version: number; extensions: Record<string, ExtensionRecord> };
      assert.equal(rewritten.version, 1);
      for (const [name, end] of ends) {
        if (end <= cut) assert.deepEqual(rewritten.extensions[name], original.extensions[name], `${name} was whole: kept as it was (${context})`);
      }
      await installedAll(agent); // what was dropped comes back from the goal state
    } finally {
      agent.kill('SIGKILL');
      await killed(agent);
    }
  }
  rmSync(d.root, { recursive: true, force: true });
});
