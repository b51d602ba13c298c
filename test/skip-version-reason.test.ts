/**
 * R1, R5: the part of `skipReason` that depends only on the installed version is remembered per rollout
 * (`RolloutState.judged`), not in one module-level slot shared by every engine of the process (which kept
 * the last rollout judged alive). Remembering must never change an answer: interleaved rollouts of
 * different targets and directions, asked about any sequence of versions, answer as a rollout asked afresh.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { skipReason } from '../src/engine/attempts/skip.js';
import type { TickContext } from '../src/engine/core/context.js';
import type { RolloutState } from '../src/engine/state.js';
import type { ExtensionInstance } from '../src/model/artifact.js';

const VERSIONS = ['1.0.0.0', '1.1.0.0', '1.2.0.0', '2.0.0.0', '2.1.0.0'];

/** Only what `skipReason` reads: the instance opted in, so only its type's support is looked up. */
const ctx = {
  state: { installing: new Set<string>(), catalog: { getType: () => ({ supportsAutomaticUpgrade: true }) } },
} as unknown as TickContext;

function rollout(toVersion: string, downgrade: boolean, manual: boolean): RolloutState {
  return {
    id: `ro-${toVersion}-${downgrade}-${manual}`, artifactKey: 'extension:contoso.agent', toVersion, major: Number(toVersion.split('.')[0]),
    artifact: { kind: 'extension', publisher: 'Contoso', type: 'Agent' }, plan: { downgrade, profile: { name: manual ? 'manual' : 'standard' } },
  } as unknown as RolloutState;
}

function instance(installedVersion: string): ExtensionInstance {
  return { machineId: 'm1', installedVersion, blockedReason: null, enableAutomaticUpgrade: true } as unknown as ExtensionInstance;
}

test('R1: remembered answers are per rollout: two rollouts asked in turn about one version each keep their own', () => {
  const up = rollout('1.2.0.0', false, true);
  const back = rollout('1.0.0.0', true, true);
  for (let i = 0; i < 3; i++) {
    assert.equal(skipReason(ctx, up, instance('1.1.0.0')), null, 'an upgrade from 1.1 to 1.2 goes ahead');
    assert.equal(skipReason(ctx, back, instance('1.1.0.0')), null, 'a downgrade from 1.1 to 1.0 goes ahead');
    assert.equal(skipReason(ctx, up, instance('1.2.0.0')), 'already at 1.2.0.0');
    assert.equal(skipReason(ctx, back, instance('1.0.0.0')), 'already at 1.0.0.0, not above 1.0.0.0');
  }
  assert.deepEqual(up.judged, { version: '1.2.0.0', reason: 'already at 1.2.0.0' }, 'the memory lives on the rollout');
});

test('R1 R5: over any interleaving of rollouts and versions, a remembered answer equals the answer of a rollout asked afresh', () => {
  const rolloutArb = fc.record({ to: fc.constantFrom(...VERSIONS), downgrade: fc.boolean(), manual: fc.boolean() });
  const asksArb = fc.array(fc.tuple(fc.nat(), fc.constantFrom(...VERSIONS)), { maxLength: 40 });
  fc.assert(fc.property(fc.array(rolloutArb, { minLength: 1, maxLength: 4 }), asksArb, (specs, asks) => {
    const rollouts = specs.map((s) => rollout(s.to, s.downgrade, s.manual));
    for (const [pick, version] of asks) {
      const i = pick % rollouts.length;
      const s = specs[i]!;
      const fresh = skipReason(ctx, rollout(s.to, s.downgrade, s.manual), instance(version));
      assert.equal(skipReason(ctx, rollouts[i]!, instance(version)), fresh, `${rollouts[i]!.id} at ${version}`);
    }
  }), { numRuns: 300 });
});
