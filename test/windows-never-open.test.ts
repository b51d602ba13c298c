/**
 * A maintenance window that never opens again (R70) must not cost the rest of the fleet its bakes (R40):
 * an expired configuration assigned to two standalone VMs made their unit unschedulable, the bound's
 * outlook "never", and both the planner and the engine then cut every phase bake to nothing, hoping to
 * gain time. No bake helps a unit that can never run: the canary's 4-day bake stays, in the plan and in
 * the rollout the engine runs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { simulate } from './helpers/harness.js';

const DAY = 86_400_000;

/** examples/small.yaml (a canary phase, a 4-day bake, the paired region) with an expired window on jump-0 and jump-1. */
function smallWithExpiredWindow(): Record<string, unknown> {
  const raw = parse(readFileSync('examples/small.yaml', 'utf8')) as Record<string, unknown>;
  raw.maintenance = {
    configurations: [{
      name: 'gone', scope: 'Extension', startDateTime: '2026-01-03 22:00', expirationDateTime: '2026-01-20 00:00',
      duration: '06:00', timeZone: 'UTC', recurEvery: 'Day',
    }],
    assignments: [{ configuration: 'gone', machines: ['jump-0', 'jump-1'] }],
  };
  return raw;
}

describe('R40, R70: a unit whose windows never open keeps the bakes of the others', () => {
  const r = simulate(smallWithExpiredWindow());
  const rollout = [...r.engine.state.rollouts.values()][0]!;

  test('R40: the plan keeps the 4-day bake after the canary phase and says the unit never runs', () => {
    const plan = rollout.plan;
    assert.equal(plan.phases.length, 2);
    assert.equal(plan.phases[0]!.bakeAfterMs, 4 * DAY, 'the canary bake');
    assert.equal(plan.estimate.fitsBound, false);
    assert.ok(plan.estimate.notes.some((n) => n.includes('can never run')), plan.estimate.notes.join('\n'));
    assert.ok(!plan.estimate.notes.some((n) => n.includes('bake shortened')), plan.estimate.notes.join('\n'));
  });

  test('R40: the engine waits the whole bake before the second phase', () => {
    const ended = r.of('phase.completed').find((e) => e.rolloutId === rollout.id && e.phase === 0);
    const started = r.of('phase.started').find((e) => e.rolloutId === rollout.id && e.phase === 1);
    assert.ok(ended && started, 'both phases started');
    const bake = Date.parse(started.time) - Date.parse(ended.time);
    assert.ok(bake >= 4 * DAY, `phase 1 started ${bake / 3_600_000} h after phase 0 ended`);
    assert.equal(rollout.status, 'running', 'jump-0 and jump-1 are still waiting for a window');
  });
});
