/**
 * Withdrawing a version while a rollout to a later one runs: the machines on the withdrawn version that
 * the later rollout has merely planned (no attempt yet) are counted in the answer (`planned`, with and
 * without rollback) and, with rollback, followed: if that rollout leaves them on the withdrawn version
 * (an operator cancels it), the server's follow-up (src/server/control-follow-up.ts) rolls them back to
 * the version each ran before. None keeps the withdrawn version.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IN_FLIGHT } from '../src/engine/state.js';
import type { Withdrawal } from '../src/server/control-follow-up.js';
import { ControlFollowUp } from '../src/server/control-follow-up.js';
import { compileScenario } from '../src/sim/scenario.js';
import { Simulation } from '../src/sim/simulator.js';
import { baseScenario } from './helpers/harness.js';

const KEY = 'extension:contoso.agent';
const AGENT = { kind: 'extension' as const, publisher: 'Contoso', type: 'Agent' };

/** Machines start on 1.0 and 1.2; 1.3 is published an hour in and runs everywhere, 1.4 eight weeks in. */
function start(seed: number): Simulation {
  const template = (installed: string) => ({ publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true, installed });
  const compiled = compileScenario(baseScenario({
    seed,
    horizon: 'P20W',
    catalog: [{ publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }, { version: '1.2.0.0' }] }],
    extensions: { v10: template('1.0.0.0'), v12: template('1.2.0.0') },
    fleet: {
      scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['v10'] }],
      vms: [{ region: 'west', subscription: 'sub1', count: 10, zones: ['1', '2'], extensions: ['v12'] }],
      arcMachines: [{ region: 'north', subscription: 'sub2', count: 6, extensions: ['v10'] }],
    },
    events: [{ at: 'PT1H', publish: { extension: 'v10', version: '1.3.0.0' } }, { at: 'P8W', publish: { extension: 'v10', version: '1.4.0.0' } }],
  }), 'withdraw-planned');
  const sim = new Simulation(compiled, {});
  const later = () => [...sim.engine.state.rollouts.values()].find((r) => r.toVersion === '1.4.0.0');
  const onLater = () => [...sim.engine.state.fleet.instances.get(KEY)!.values()].filter((i) => i.installedVersion === '1.4.0.0').length;
  while (!(later()?.status === 'running' && onLater() >= 5) && sim.step());
  assert.equal(later()?.status, 'running', 'the rollout to 1.4.0.0 runs');
  return sim;
}

function census(sim: Simulation): { onVersion: string[]; idle: string[]; before: Map<string, string> } {
  const insts = [...sim.engine.state.fleet.instances.get(KEY)!.values()];
  const busy = new Set([...sim.engine.state.rollouts.values()].flatMap((r) => [...r.attempts.values()].filter((a) => IN_FLIGHT.has(a.status)).map((a) => a.machineId)));
  const onVersion = insts.filter((i) => i.installedVersion === '1.3.0.0');
  return {
    onVersion: onVersion.map((i) => i.machineId),
    idle: onVersion.filter((i) => !busy.has(i.machineId)).map((i) => i.machineId),
    before: new Map(onVersion.map((i) => [i.machineId, i.previousGoodVersion ?? ''])),
  };
}

describe('withdrawing a version that a rollout to a later one has planned machines on', () => {
  test('without rollback: nothing starts, and the answer counts the machines on it and those the later rollout will take off it', () => {
    const sim = start(1);
    const { onVersion, idle } = census(sim);
    assert.ok(idle.length > 0, 'machines on 1.3.0.0 are merely planned in the rollout to 1.4.0.0');
    const r = sim.engine.withdrawVersion(AGENT, '1.3.0.0', { rollback: false, reason: 'bad build', caller: 'test' });
    assert.deepEqual(r.rollouts, []);
    assert.equal(r.onVersion, onVersion.length);
    assert.equal(r.planned, idle.length, 'every machine on it without an attempt in flight is planned in the rollout to 1.4.0.0');
    assert.equal([...sim.engine.state.rollouts.values()].filter((x) => x.status === 'running').length, 1, 'no rollback rollout started');
  });

  test('with rollback: the planned machines are counted and followed; when the later rollout is cancelled they go back to their own version', async () => {
    const sim = start(2);
    const { idle, before } = census(sim);
    const saved: Withdrawal[] = [];
    const errors: unknown[] = [];
    const followUp = new ControlFollowUp(sim.engine, { list: () => [...saved], put: (w) => saved.push(w) }, (e) => errors.push(e));
    const r = sim.engine.withdrawVersion(AGENT, '1.3.0.0', { rollback: true, reason: 'bad build', caller: 'test' });
    followUp.follow({ artifact: AGENT, version: '1.3.0.0', caller: 'test' });
    assert.equal(r.planned, idle.length, 'the machines the rollout to 1.4.0.0 has yet to take are counted');
    assert.deepEqual(r.rollouts, [], 'they are left to the rollout that takes them off 1.3.0.0');
    // The operator stops the later release: the machines it had planned would keep the withdrawn version.
    const later = [...sim.engine.state.rollouts.values()].find((x) => x.toVersion === '1.4.0.0')!;
    sim.engine.cancelRolloutByOperator(later.id, 'not now', 'test');
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    await tick();
    for (let i = 0; i < 200_000 && sim.step(); i++) await tick();
    assert.deepEqual(errors, []);
    const now = sim.engine.state.fleet.instances.get(KEY)!;
    const left = [...now.values()].filter((i) => i.installedVersion === '1.3.0.0').map((i) => i.machineId);
    assert.deepEqual(left, [], 'no machine keeps the withdrawn version');
    const wrong = idle.filter((id) => now.get(id)!.installedVersion !== before.get(id)).map((id) => `${id}: ${now.get(id)!.installedVersion}, ran ${before.get(id)}`);
    assert.deepEqual(wrong, [], 'each planned machine is back on the version it ran before 1.3.0.0');
    assert.ok(saved.at(-1)?.done, 'the withdrawal is followed until nothing is left on it');
  });
  test('the follow-up looks at the machines it still follows only, and decides as a pass over the whole fleet would; it still completes', async () => {
    // It passed over the whole fleet per batch that settled. Each followed call is checked against such a pass
    // made right after it: that pass finds nothing left to start, and counts what it counted.
    const sim = start(3);
    const { idle, before } = census(sim);
    const saved: Withdrawal[] = [];
    const errors: unknown[] = [];
    const engine = sim.engine;
    const original = engine.rollBackWithdrawn.bind(engine);
    const mismatches: string[] = [];
    const sizes: number[] = [];
    engine.rollBackWithdrawn = (artifact, version, caller, follow) => {
      const followed = follow?.machines != null;
      const r = original(artifact, version, caller, follow);
      if (!followed) return r;
      sizes.push(follow!.machines!.size);
      const full = original(artifact, version, caller);
      if (full.rollouts.length > 0 || full.inFlight !== r.inFlight || full.planned !== r.planned) {
        mismatches.push(`followed: ${r.inFlight} in flight, ${r.planned} planned; the fleet: ${full.inFlight}, ${full.planned}, ${full.rollouts.length} rollouts started`);
      }
      return r;
    };
    const followUp = new ControlFollowUp(engine, { list: () => [...saved], put: (w) => saved.push(w) }, (e) => errors.push(e));
    engine.withdrawVersion(AGENT, '1.3.0.0', { rollback: true, reason: 'bad build', caller: 'test' });
    followUp.follow({ artifact: AGENT, version: '1.3.0.0', caller: 'test' });
    engine.cancelRolloutByOperator([...engine.state.rollouts.values()].find((x) => x.toVersion === '1.4.0.0')!.id, 'not now', 'test');
    const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
    await tick();
    for (let i = 0; i < 200_000 && sim.step(); i++) await tick();
    assert.deepEqual(errors, []);
    assert.deepEqual(mismatches, []);
    assert.ok(sizes.length > 0, 'later calls looked at the followed machines only');
    assert.ok(sizes.at(-1)! < sizes[0]! || sizes[0] === 0, `the followed machines shrink (${sizes.join(', ')})`);
    const now = engine.state.fleet.instances.get(KEY)!;
    assert.deepEqual([...now.values()].filter((i) => i.installedVersion === '1.3.0.0').map((i) => i.machineId), [], 'no machine keeps the withdrawn version');
    assert.deepEqual(idle.filter((id) => now.get(id)!.installedVersion !== before.get(id)), [], 'each planned machine is back on the version it ran before');
    assert.ok(saved.at(-1)?.done, 'the follow-up completes');
  });
});
