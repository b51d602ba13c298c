/** The benchmark fleet: about a million machines over 60 regions in 30 geo-pairs, three zones each. */
import { compileScenario } from '../src/sim/scenario.js';
import type { Scenario } from '../src/sim/scenario.js';

export const TARGET_MACHINES = 1_000_000;

/** Variants of the release: its failures by kind (instead of `failureRate`), critical, another seed. */
export interface BenchRelease {
  failures?: Record<string, number>;
  critical?: boolean;
  seed?: number;
}

/**
 * The generated parts: 1,400 scale sets, 2,000 availability sets and 100,000 Arc machines (about 830,000
 * machines), standalone VMs filling up to `target`. `fit` scales those parts by target / 1,000,000 so that
 * any size asked is the size made (a small fleet is not 830,000 machines; 10 million keep the 1M mix). Off by
 * default: the event logs of bench/baseline-digests.json were recorded without it.
 */
function generated(target: number, fit: boolean): Record<string, unknown> {
  const f = fit ? target / TARGET_MACHINES : 1;
  const n = (x: number) => Math.max(1, Math.round(x * f));
  return {
    regions: { count: 60, zones: 3 },
    subscriptions: 200,
    extensions: ['agent'],
    scaleSets: { count: n(1400), capacity: { min: 10, max: fit && f < 1 ? Math.max(10, Math.round(1000 * f)) : 1000 }, zonalShare: 0.7, applicationHealthShare: 0.5 },
    availabilitySets: { count: n(2000), vms: { min: 2, max: 20 } },
    arcMachines: fit ? Math.round(100_000 * f) : 100_000,
    totalMachines: target,
  };
}

/** The scenario document of the benchmark fleet (what `benchScenario` compiles; bench:dashboard hands it to `serve`). */
export function benchScenarioSpec(target: number, failureRate: number, release: BenchRelease = {}, fit = false): Record<string, unknown> {
  return {
    name: 'bench-1m',
    start: '2026-01-05T00:00:00Z',
    seed: release.seed ?? 2026,
    horizon: 'P16W',
    catalog: [{ publisher: 'Contoso.Monitoring', type: 'FleetAgent', supportsAutomaticUpgrade: true, versions: [{ version: '1.4.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso.Monitoring', type: 'FleetAgent', typeHandlerVersion: '1.4', enableAutomaticUpgrade: true } },
    fleet: { generate: generated(target, fit) },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.5.0.0', ...(release.critical ? { critical: true } : {}) } }],
    failures: {
      default: { installSeconds: { median: 90, p95: 300 }, healthSeconds: { median: 30, p95: 120 } },
      versions: {
        '1.5.0.0': release.failures ?? { installFailure: failureRate / 2, unhealthyAfterUpgrade: failureRate / 2, rollbackFailure: 0.02 },
      },
      slowAgents: { share: 0.01, factor: 5 },
    },
  };
}

/** Builds the scenario with standalone VMs filling the fleet up to `target` machines (`fit`: see `generated`). */
export function benchScenario(target = TARGET_MACHINES, failureRate = 0.02, release: BenchRelease = {}, fit = false): Scenario {
  return compileScenario(benchScenarioSpec(target, failureRate, release, fit), 'bench');
}

export const BENCH_IMAGE = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' } as const;
export const BENCH_IMAGE_FROM = '24.04.202601050';
export const BENCH_IMAGE_TO = '24.04.202601190';

/** Scale sets by size: 300 × 1,000 + 800 × 500 + 1,000 × 200 + 2,000 × 50 = 1,000,000 instances in 4,100 sets. */
const IMAGE_SET_SIZES: ReadonlyArray<readonly [capacity: number, count: number]> = [[1000, 300], [500, 800], [200, 1000], [50, 2000]];

/**
 * The same 60 regions (generated: 30 geo-pairs, three zones) and 200 subscriptions, every machine in a
 * scale set that follows one Ubuntu image at `latest` with automatic OS upgrade on. A new image version is
 * published an hour in and replicated in four waves over three days (6, 18, 18 and 18 regions; the first
 * wave holds one region of each of six pairs). `failureRate` of the re-images fail (half at install, half
 * unhealthy after it), 2% of the rollbacks fail.
 */
export function imageBenchScenario(failureRate = 0.02): Scenario {
  const regions = Array.from({ length: 60 }, (_, i) => `region${String(i).padStart(2, '0')}`);
  const scaleSets: Array<Record<string, unknown>> = [];
  let n = 0;
  for (const [capacity, count] of IMAGE_SET_SIZES) {
    for (let i = 0; i < count; i++, n++) {
      const region = regions[n % regions.length]!;
      const zonal = n % 10 < 7; // 70% of the sets span the three zones of their region
      scaleSets.push({
        name: `iss${String(n).padStart(5, '0')}`, region, subscription: `sub-${String(n % 200).padStart(3, '0')}`,
        ...(zonal ? { zones: ['1', '2', '3'] } : {}), capacity, applicationHealth: n % 2 === 0,
        image: { ...BENCH_IMAGE, version: 'latest' },
        upgradePolicy: { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } },
      });
    }
  }
  const waves = [['PT2H', regions.slice(0, 12).filter((_, i) => i % 2 === 0)], ['P1D', regions.slice(0, 12).filter((_, i) => i % 2 === 1).concat(regions.slice(12, 24))], ['P2D', regions.slice(24, 42)], ['P3D', regions.slice(42)]] as const;
  return compileScenario({
    name: 'bench-image-1m',
    start: '2026-01-05T00:00:00Z',
    seed: 2026,
    horizon: 'P16W',
    catalog: [{ publisher: 'Contoso.Monitoring', type: 'FleetAgent', supportsAutomaticUpgrade: true, versions: [{ version: '1.4.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso.Monitoring', type: 'FleetAgent', typeHandlerVersion: '1.4', enableAutomaticUpgrade: true } },
    images: [{ ...BENCH_IMAGE, osType: 'Linux', versions: [{ version: BENCH_IMAGE_FROM }] }],
    fleet: { generate: { regions: { count: 60, zones: 3 }, extensions: ['agent'] }, scaleSets },
    events: [{ at: 'PT1H', publishImage: { ...BENCH_IMAGE, version: BENCH_IMAGE_TO, replications: waves.flatMap(([at, rs]) => rs.map((region) => ({ region, at }))) } }],
    failures: {
      default: { reimageSeconds: { median: 300, p95: 720 }, healthSeconds: { median: 30, p95: 120 } },
      versions: { [BENCH_IMAGE_TO]: { installFailure: failureRate / 2, unhealthyAfterUpgrade: failureRate / 2, rollbackFailure: 0.02 } },
      slowAgents: { share: 0.01, factor: 5 },
    },
  }, 'bench-image');
}
