/** The run summary folds interleaved rollouts apart (it reuses the previous event's rollout when it can). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SummaryCollector } from '../src/report/summary.js';
import type { EngineEvent } from '../src/model/events.js';

const artifact = { kind: 'extension' as const, publisher: 'P', type: 'A' };
let seq = 0;
const ev = (body: Record<string, unknown>) => ({ seq: ++seq, time: '2026-01-05T00:00:00.000Z', ...body }) as unknown as EngineEvent;
const created = (id: string) => ev({ type: 'rollout.created', rolloutId: id, artifact, toVersion: '1.1.0.0', profile: 'standard', phases: [['east']], eligible: 3, reason: '' });
const succeeded = (id: string, machineId: string) =>
  ev({ type: 'instance.upgrade.succeeded', rolloutId: id, batchId: 'b', machineId, placement: {}, artifact, attempt: 1, fromVersion: '1.0.0.0', toVersion: '1.1.0.0' });

test('events of two rollouts in turn are counted each to its own rollout, and a rollout id created again starts afresh', () => {
  const s = new SummaryCollector();
  s.onEvents([created('r1'), created('r2'), succeeded('r1', 'a'), succeeded('r2', 'b'), succeeded('r1', 'c'), succeeded('r1', 'd'), succeeded('r2', 'e')]);
  assert.deepEqual(s.result().map((r) => [r.id, r.upgraded]), [['r1', 3], ['r2', 2]]);
  s.onEvents([created('r2'), succeeded('r2', 'f'), succeeded('x', 'g')]);
  assert.deepEqual(s.result().map((r) => [r.id, r.upgraded]), [['r1', 3], ['r2', 1]]);
});
