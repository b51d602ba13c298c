/**
 * The hot path's shortcuts build, in one literal, what the general helpers build from a fields object
 * (issue 13, docs/benchmarks.md): the same keys in the same order and the same values. The event log
 * is compared key for key (the order is part of its text), attempts and timers for their one shape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Catalog } from '../src/catalog/catalog.js';
import type { ExtensionInstance } from '../src/model/artifact.js';
import type { Placement } from '../src/model/fleet.js';
import { emitInstance, emitVersionChange } from '../src/engine/attempts/record.js';
import { cancelTimer, newContext, schedule, scheduleTimer } from '../src/engine/core/context.js';
import type { AttemptState, RolloutState, TimerKind, UnitState } from '../src/engine/state.js';
import { emptyFleet, newAttempt, newEngineState, upgradingAttempt } from '../src/engine/state.js';

const text = fc.string({ maxLength: 12 });
const placement = fc.record({
  region: text, zone: fc.option(text), setId: fc.option(text), setKind: fc.constantFrom('scaleSet' as const, 'availabilitySet' as const, 'none' as const),
  updateDomain: fc.option(fc.nat(20)), faultDomain: fc.option(fc.nat(3)), subscription: text,
});

function instance(machineId: string, installedVersion: string): ExtensionInstance {
  return {
    machineId, artifactKey: 'extension:p/t', name: 'agent', publisher: 'p', type: 't', typeHandlerVersion: '1.0', autoUpgradeMinorVersion: true, settings: {},
    desiredVersion: installedVersion, installedVersion, lastKnownGoodVersion: installedVersion, enableAutomaticUpgrade: true, status: 'Succeeded', blockedReason: null,
  };
}

function rollout(id: string, toVersion: string): RolloutState {
  return { id, artifact: { kind: 'extension', publisher: 'p', type: 't' }, artifactKey: 'extension:p/t', toVersion } as unknown as RolloutState;
}

test('emitVersionChange emits what emitInstance emits with { fromVersion, toVersion }, key for key in the same order', () => {
  fc.assert(fc.property(
    fc.constantFrom('instance.upgrade.started' as const, 'instance.upgrade.succeeded' as const), text, text, text, text, text, fc.nat(5), fc.nat(1e13), placement,
    (type, rolloutId, batchId, machineId, from, to, attempt, now, p) => {
      const r = rollout(rolloutId, to);
      const run = (emit: (ctx: ReturnType<typeof newContext>, a: AttemptState) => void) => {
        const ctx = newContext(newEngineState(emptyFleet(), new Catalog()), now, false);
        const a = newAttempt({
          rolloutId, machineId, inst: instance(machineId, from), unitId: 'u', batchId, attempt, status: 'upgrading', fromVersion: from, actionKey: null, reason: null, dueAtMs: null,
        }, undefined, p as Placement);
        emit(ctx, a);
        emit(ctx, a);
        return ctx.events;
      };
      const general = run((ctx, a) => emitInstance(ctx, type, r, a, { fromVersion: from, toVersion: to }));
      const shortcut = run((ctx, a) => emitVersionChange(ctx, type, r, a, from, to));
      assert.equal(JSON.stringify(shortcut), JSON.stringify(general));
      assert.deepStrictEqual(shortcut, general);
    },
  ), { seed: 20261206, numRuns: 300 });
});

test('upgradingAttempt is newAttempt of an upgrade starting now: the same keys in the same order, the same values', () => {
  fc.assert(fc.property(text, text, text, text, text, fc.nat(5), placement, (rolloutId, machineId, unitId, batchId, from, attempt, p) => {
    const inst = instance(machineId, from);
    const unit = { plan: { id: unitId } } as unknown as UnitState;
    const general = newAttempt({
      rolloutId, machineId, inst, unitId, batchId, attempt, status: 'upgrading', fromVersion: from, actionKey: null, reason: null, dueAtMs: null,
    }, unit, p as Placement);
    const shortcut = upgradingAttempt(rolloutId, inst, unitId, batchId, attempt, unit, p as Placement);
    assert.deepStrictEqual(Object.keys(shortcut), Object.keys(general));
    assert.deepStrictEqual(shortcut, general);
  }), { seed: 20261206, numRuns: 200 });
});

test('scheduleTimer is schedule without the fields object: the same timer, queued and numbered the same', () => {
  const kinds: TimerKind[] = ['healthDeadline', 'actionTimeout', 'retry'];
  fc.assert(fc.property(fc.nat(1e13), fc.constantFrom(...kinds), text, text, fc.oneof(text, fc.nat(9)), (at, kind, rolloutId, ref, token) => {
    const a = ctxWithTimer((ctx) => schedule(ctx, { at, kind, rolloutId, ref, token, attempt: undefined }));
    const b = ctxWithTimer((ctx) => scheduleTimer(ctx, at, kind, rolloutId, ref, token, undefined));
    assert.deepStrictEqual(Object.keys(b.timer), Object.keys(a.timer));
    assert.deepStrictEqual(b.timer, a.timer);
    assert.deepStrictEqual(b.queued, a.queued);
  }), { seed: 20261206, numRuns: 200 });
});

function ctxWithTimer(make: (ctx: ReturnType<typeof newContext>) => ReturnType<typeof schedule>) {
  const ctx = newContext(newEngineState(emptyFleet(), new Catalog()), 0, true);
  const timer = make(ctx);
  return { timer, queued: ctx.state.timers.ordered(), added: ctx.changes!.timersAdded };
}

test('a cancelled timer lets its attempt go, is marked done once and leaves the store once', () => {
  const ctx = newContext(newEngineState(emptyFleet(), new Catalog()), 0, true);
  const a = upgradingAttempt('r', instance('m', '1.0'), 'u', 'b', 1, {} as UnitState, {} as Placement);
  const t = scheduleTimer(ctx, 1000, 'healthDeadline', 'r', 'm', 1, a);
  assert.equal(t.attempt, a);
  cancelTimer(ctx, t);
  cancelTimer(ctx, t);
  assert.equal(t.done, true);
  assert.equal(t.attempt, undefined);
  assert.deepStrictEqual(ctx.changes!.timersFired, [t]);
});
