/**
 * A simulation ends when nothing is due any more. With a rollout still running and the horizon not reached, the summary
 * said nothing of it: a unit waiting for windows that never open again (R70) and a rollout the engine stalled (the
 * one-sided geo-pairs of f6ec90d: `sim` ended on day 5 with exit 0, "running", and no word) looked the same as a run cut
 * short. Its first lines now say which it is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { InvariantChecker } from '../src/audit/invariants.js';
import type { EngineEvent } from '../src/model/events.js';
import { symmetricPairs } from '../src/model/fleet.js';
import { quietEndNote } from '../src/sim/run-end.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { cli } from './helpers/cli.js';
import { scenarioFolder } from './helpers/scenario-files.js';

const files = scenarioFolder('phasewise-quiet-end-');

function scenario(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'quiet-end', start: '2026-03-01T00:00:00Z',
    regions: [{ name: 'a', pair: 'b' }, { name: 'b', pair: 'a' }, { name: 'c' }, { name: 'd' }],
    catalog: [{ publisher: 'P', type: 'A', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
    extensions: { x: { publisher: 'P', type: 'A', typeHandlerVersion: '1.0' } },
    fleet: { arcMachines: [['a', 30], ['b', 12], ['c', 11], ['d', 10]].map(([r, count]) => ({ name: `m${r}`, region: r, subscription: `s${r}`, count, extensions: ['x'] })) },
    events: [{ at: 'P1D', publish: { extension: 'x', version: '1.1.0.0' } }],
    ...extra,
  };
}

test('R70: sim ending with a unit whose windows expired says so in its first lines', async () => {
  const expired = {
    configurations: [{ name: 'gone', startDateTime: '2026-02-01 00:00', expirationDateTime: '2026-03-02 00:00', duration: '06:00', timeZone: 'UTC', recurEvery: 'Day' }],
    assignments: [{ configuration: 'gone', machines: ['ma-0'] }],
  };
  const r = await cli('sim', files.write('expired.yaml', stringify(scenario({ maintenance: expired }))));
  assert.equal(r.status, 0, r.stderr);
  const second = r.stdout.split('\n')[1] ?? '';
  assert.match(second, /; ended with rollout ro-1 waiting for maintenance windows that never open again \(R70/);
  assert.doesNotMatch(second, /stall/);
  // Without the expired window the same fleet completes, and the line says nothing more.
  const done = await cli('sim', files.write('done.yaml', stringify(scenario())));
  assert.doesNotMatch(done.stdout.split('\n')[1] ?? '', /ended with/);
});

test('R10: a stored double geo-pair claim (c and a both name b, saved before the one-geo-pair check) no longer stalls: b is planned apart from both', () => {
  const compiled = compileScenario(scenario(), 'quiet-end.json');
  // a and c both name b, which names none, as a store written before f6ec90d may hold (the check refuses it now).
  // b's completed pair is a only; with b and c in one phase, c's batches waited for b's and were never woken.
  compiled.state.fleet.regions.set('c', { name: 'c', pair: 'b', zones: [] });
  compiled.state.fleet.regions.set('a', { name: 'a', pair: 'b', zones: [] });
  compiled.state.fleet.regions.set('b', { name: 'b', pair: null, zones: [] });
  const events: EngineEvent[] = [];
  const invariants = new InvariantChecker({ pairs: symmetricPairs([...compiled.state.fleet.regions.values()]) });
  const result = runSimulation(compiled, { onEvents: (batch) => { events.push(...batch); invariants.onEvents(batch); } });
  assert.equal(result.hitHorizon, false);
  assert.deepEqual([...result.engine.state.rollouts.values()].map((r) => r.status), ['completed'], 'the rollout completes');
  assert.deepEqual(invariants.finish(), []);
  const created = events.find((e) => e.type === 'rollout.created');
  assert.ok(created?.type === 'rollout.created');
  const phaseOf = (region: string) => created.phases.findIndex((p) => p.includes(region));
  assert.notEqual(phaseOf('b'), phaseOf('a'));
  assert.notEqual(phaseOf('b'), phaseOf('c'), 'b is never in a phase with a region that names it');
  // What was stored is kept as it was: nothing is rewritten.
  assert.equal(result.engine.state.fleet.regions.get('c')!.pair, 'b');
  assert.equal(result.engine.state.fleet.regions.get('b')!.pair, null);
});

test('a rollout still running at a quiet end with no window to wait for is named a stall, not passed over', () => {
  // Cut the run short: the rollout is mid-way, and nothing explains it as a window would.
  const result = runSimulation(compileScenario(scenario({ horizon: 'P1DT3H' }), 'quiet-end.json'));
  const running = [...result.engine.state.rollouts.values()].filter((r) => r.status === 'running').map((r) => r.id);
  assert.deepEqual(running, ['ro-1']);
  assert.match(quietEndNote(result.engine.state, running), /; ended with rollout ro-1 still running and nothing left to move it \(a stall/);
});
