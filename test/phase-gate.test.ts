/** R10: how the phase gate decides, and what a bad release does to a small canary. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { wilsonLowerBound } from '../src/engine/rollouts/gates.js';
import { baseScenario, simulate } from './helpers/harness.js';

test('R10: the Wilson lower bound matches known values', () => {
  // Reference values computed independently (one-sided 90%, z = 1.2816).
  const rows: Array<[number, number, number]> = [
    [0, 10, 0],
    [1, 1, 0.3784],
    [2, 5, 0.1799],
    [4, 17, 0.1306],
    [40, 100, 0.3393],
    [100, 100, 0.9838],
  ];
  for (const [part, whole, expected] of rows) assert.ok(Math.abs(wilsonLowerBound(part, whole) - expected) < 0.001, `${part}/${whole}: ${wilsonLowerBound(part, whole)}`);
  assert.equal(wilsonLowerBound(0, 0), 0);
});

test('R10: a bad release never passes a canary whose only set stopped after a few instances', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const run = simulate(baseScenario({
      seed,
      canaryRegions: ['east'],
      regions: [{ name: 'east', pair: 'west', zones: [] }, { name: 'west', pair: 'east', zones: [] }],
      fleet: {
        scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }],
        vms: [{ name: 'w', region: 'west', subscription: 'sub1', count: 20, extensions: ['agent'] }],
      },
      failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.8 } } },
    }));
    assert.equal(run.of('phase.started').filter((p) => p.phase === 1).length, 0, `seed ${seed}: the release reached the second phase`);
    assert.equal(run.of('instance.upgrade.started').filter((e) => e.placement.region === 'west').length, 0);
    // Stopped by its canary's gate, or held fleet-wide first by the release's evidence (R22's verdict).
    const stopped = run.of('rollout.stopped');
    const halted = run.of('release.halted');
    assert.equal(stopped.length + halted.length, 1, `seed ${seed}: the rollout should stop or its release be held`);
    if (stopped[0]) assert.match(stopped[0].reason, /phase 0 failed/);
    else assert.equal(halted[0]!.kind, 'evidence');
  }
});

test('R10: a set stopped early leaves too little evidence, so the phase waits for it to run again', () => {
  // 10% failures: the set may stop after one bad batch of two, but the phase is not judged on two instances.
  const run = simulate(baseScenario({
    seed: 3,
    canaryRegions: ['east'],
    regions: [{ name: 'east', pair: 'west', zones: [] }, { name: 'west', pair: 'east', zones: [] }],
    fleet: {
      scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', capacity: 10, extensions: ['agent'] }],
      vms: [{ name: 'w', region: 'west', subscription: 'sub1', count: 5, extensions: ['agent'] }],
    },
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.1 } } },
  }));
  const done = run.of('phase.completed').find((p) => p.phase === 0);
  assert.ok(done, 'phase 0 completes in the end');
  const judged = done.upgraded ?? 0;
  const stops = run.of('gate.breached').filter((g) => g.rule === 'R23' && g.seq < done.seq);
  if (stops.length > 0) assert.ok(judged >= 10, `phase 0 completed on ${judged} judged instances after a stop`);
});
