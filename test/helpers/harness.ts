/**
 * Test harness: scenarios written inline as plain objects, compiled by the real scenario compiler and
 * run by the real simulator and engine on a virtual clock, with the whole event log kept.
 */
import type { EngineEvent, EventType } from '../../src/model/events.js';
import { compileScenario } from '../../src/sim/scenario.js';
import type { Scenario } from '../../src/sim/scenario.js';
import { runSimulation } from '../../src/sim/simulator.js';
import type { SimResult } from '../../src/sim/simulator.js';
import { MemoryStore } from '../../src/store/memory-store.js';

export interface Run extends SimResult {
  scenario: Scenario;
  events: readonly EngineEvent[];
  of<T extends EventType>(type: T): Array<Extract<EngineEvent, { type: T }>>;
}

/** Compiles and simulates `raw` (the same shape as a scenario file). */
export function simulate(raw: unknown, seed?: number): Run {
  const scenario = compileScenario(raw, 'inline-test-scenario', seed === undefined ? {} : { seed });
  const store = new MemoryStore();
  const result = runSimulation(scenario, { store });
  const events = store.events();
  return {
    ...result,
    scenario,
    events,
    of: <T extends EventType>(type: T) => events.filter((e) => e.type === type) as Array<Extract<EngineEvent, { type: T }>>,
  };
}

/** A small valid scenario to start from; tests override what they need. */
export function baseScenario(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'test',
    start: '2026-01-05T00:00:00Z',
    seed: 1,
    horizon: 'P10W',
    regions: [
      { name: 'east', pair: 'west', zones: ['1', '2', '3'] },
      { name: 'west', pair: 'east', zones: ['1', '2', '3'] },
      { name: 'north', pair: 'south', zones: ['1', '2'] },
      { name: 'south', pair: 'north', zones: [] },
    ],
    catalog: [
      { publisher: 'Contoso', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
    ],
    extensions: { agent: { publisher: 'Contoso', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    fleet: {
      scaleSets: [{ name: 'ss-east', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 30, extensions: ['agent'] }],
      vms: [{ region: 'west', subscription: 'sub1', count: 10, zones: ['1', '2'], extensions: ['agent'] }],
      arcMachines: [{ region: 'north', subscription: 'sub2', count: 5, extensions: ['agent'] }],
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
    ...overrides,
  };
}

/** A scenario with every kind of step: failures, rollbacks, retries, a failed rollback, an opt-out, a background fault. */
export function everyStepScenario(): Record<string, unknown> {
  return baseScenario({
    seed: 11,
    profiles: { standard: { phaseBake: 'PT6H' } },
    failures: {
      versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.08, installFailure: 0.04, rollbackFailure: 0.2 } },
      background: [{ at: 'PT1H20M', duration: 'PT2H', scaleSet: 'ss-east', share: 0.3 }],
    },
    events: [
      { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
      { at: 'PT1H30M', setAutomaticUpgrade: { extension: 'agent', region: 'west', share: 0.3, enabled: false } },
      { at: 'P2D', setAutomaticUpgrade: { extension: 'agent', region: 'west', share: 0.3, enabled: true } },
    ],
  });
}
