/**
 * One engine state as a canonical string (maps sorted by key, objects by field), to compare the state in
 * memory with the state read back from a store. Fields the store does not keep are left out.
 */
import type { EngineState } from '../../src/engine/state.js';

function stable(value: unknown): string {
  return JSON.stringify(value, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

function entries<V>(m: ReadonlyMap<string, V>): Array<[string, V]> {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function canonical(s: EngineState): string {
  const f = s.fleet;
  return stable({
    regions: entries(f.regions), scaleSets: entries(f.scaleSets), availabilitySets: entries(f.availabilitySets), machines: entries(f.machines),
    instances: entries(f.instances).map(([k, m]) => [k, entries(m)]),
    setSizes: entries(f.setSizes).filter(([, v]) => v !== 0), setUnhealthy: entries(f.setUnhealthy).filter(([, v]) => v !== 0),
    health: entries(f.health), unhealthy: [...f.unhealthy].sort(),
    enrolled: [...s.enrolledSubscriptions].sort(), seqs: [s.eventSeq, s.rolloutSeq, s.timerSeq, s.actionSeq],
    pending: entries(s.pendingActions).map(([k, { attempt: _attempt, timer: _timer, ...p }]) => [k, p]),
    installing: entries(s.installing), timers: s.timers.toArray().filter((t) => !t.done).map((t) => t.id).sort((a, b) => a - b),
    rollouts: entries(s.rollouts).map(([id, r]) => [id, {
      status: r.status, open: r.open, force: r.force, toVersion: r.toVersion, caller: r.caller, phases: r.phases,
      attempts: entries(r.attempts).map(([m, { unit: _unit, placement: _placement, healthTimer: _timer, ...a }]) => [m, { ...a, inst: null }]),
      units: entries(r.units).map(([u, x]) => [u, { status: x.status, next: x.next, retryReady: x.retryReady, inflight: x.inflight, gateRun: x.gateRun }]),
    }]),
  });
}
