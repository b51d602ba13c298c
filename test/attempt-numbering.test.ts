/**
 * "An attempt started twice" (issue 12): a rollout that supersedes another (an OS image release that
 * reached more regions) or catches up after it plans machines the earlier one had tried and rolled
 * back. Its attempts number on from the earlier ones, so no machine, version and attempt number is
 * started twice in the log, whichever rollout starts it. The crash test checks the same on a real
 * process killed over and over.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EngineEvent } from '../src/model/events.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';

function startsTwice(events: readonly EngineEvent[]): string[] {
  const seen = new Map<string, number>();
  const twice: string[] = [];
  for (const e of events) {
    if (e.type !== 'instance.upgrade.started') continue;
    const id = `${e.machineId} → ${e.toVersion} attempt ${e.attempt}`;
    if (seen.has(id)) twice.push(`${id} (seq ${seen.get(id)} and ${e.seq})`);
    else seen.set(id, e.seq);
  }
  return twice;
}

test('R30: a superseding rollout goes on numbering the attempts of the one it replaced; no attempt is started twice', () => {
  let carried = 0;
  for (const seed of [1, 3, 6]) {
    const events: EngineEvent[] = [];
    runSimulation(loadScenarioFile('examples/demo.yaml', { seed }), { onEvents: (e) => events.push(...e) });
    assert.deepEqual(startsTwice(events), [], `seed ${seed}`);
    // The case this is about happens: a machine retried by a later rollout of the same version, at attempt 2 or more.
    const starts = events.filter((e): e is Extract<EngineEvent, { type: 'instance.upgrade.started' }> => e.type === 'instance.upgrade.started');
    const firstRollout = new Map<string, string>();
    for (const e of starts) {
      const k = `${e.machineId}|${e.toVersion}`;
      if (!firstRollout.has(k)) firstRollout.set(k, e.rolloutId);
      else if (firstRollout.get(k) !== e.rolloutId && e.attempt >= 2) carried++;
    }
  }
  assert.ok(carried > 0, 'some machine was retried by a later rollout of the same version');
});
