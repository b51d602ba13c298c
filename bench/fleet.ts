/** The benchmark fleet: about a million machines over 60 regions in 30 geo-pairs, three zones each. */
import { compileScenario } from '../src/sim/scenario.js';
import type { Scenario } from '../src/sim/scenario.js';

export const TARGET_MACHINES = 1_000_000;

function raw(target: number, failureRate: number): Record<string, unknown> {
  return {
    name: 'bench-1m',
    start: '2026-01-05T00:00:00Z',
    seed: 2026,
    horizon: 'P16W',
    catalog: [{ publisher: 'Contoso.Monitoring', type: 'FleetAgent', supportsAutomaticUpgrade: true, versions: [{ version: '1.4.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso.Monitoring', type: 'FleetAgent', typeHandlerVersion: '1.4', enableAutomaticUpgrade: true } },
    fleet: {
      generate: {
        regions: { count: 60, zones: 3 },
        subscriptions: 200,
        extensions: ['agent'],
        scaleSets: { count: 1400, capacity: { min: 10, max: 1000 }, zonalShare: 0.7, applicationHealthShare: 0.5 },
        availabilitySets: { count: 2000, vms: { min: 2, max: 20 } },
        arcMachines: 100_000,
        totalMachines: target,
      },
    },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.5.0.0' } }],
    failures: {
      default: { installSeconds: { median: 90, p95: 300 }, healthSeconds: { median: 30, p95: 120 } },
      versions: { '1.5.0.0': { installFailure: failureRate / 2, unhealthyAfterUpgrade: failureRate / 2, rollbackFailure: 0.02 } },
      slowAgents: { share: 0.01, factor: 5 },
    },
  };
}

/** Builds the scenario with standalone VMs filling the fleet up to `target` machines. */
export function benchScenario(target = TARGET_MACHINES, failureRate = 0.02): Scenario {
  return compileScenario(raw(target, failureRate), 'bench');
}
