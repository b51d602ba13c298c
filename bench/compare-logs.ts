/**
 * compare-logs — the identical-event-log check for a change that must not change behaviour.
 *
 * Runs every scenario in examples/ through the CLI (`sim FILE --events …`, the scenario's seed and seeds
 * 1–3) and two benchmark fleets in-process: the bench:sim fleet generator with `--machines` as its
 * target (that sets the standalone VMs only: its 1,400 scale sets and 100,000 Arc machines stay, so the
 * default 20,000 builds 805,593 machines, 2% and 25% failing releases), and the bench:sim-image shape
 * with its set counts divided by `--image-divisor` (the default 50 gives 82 sets, 20,000 instances),
 * and prints one sha256 per event log. `--dist DIR` runs another build's code (e.g. main's `dist/`), so
 * one script checks both sides:
 *
 *   node dist/bench/compare-logs.js --dist /tmp/main/dist --out /tmp/base.json
 *   node dist/bench/compare-logs.js --against /tmp/base.json      # exit code 1 on any difference
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function arg(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  if (a) return a.slice(name.length + 3);
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const here = resolve(import.meta.dirname, '..'); // dist/ of this build
const dist = resolve(arg('dist') ?? here);
const repo = process.cwd(); // run from the repository's root (examples/)
const machines = Number(arg('machines') ?? 20_000);
const imageDivisor = Number(arg('image-divisor') ?? 50);
const skip = new Set((arg('skip') ?? '').split(',').filter(Boolean));
const digests: Record<string, string> = {};

function sha(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

// 1. The examples, through the CLI exactly as a user runs them.
const tmp = mkdtempSync(join(tmpdir(), 'compare-logs-'));
const examples = readdirSync(join(repo, 'examples')).filter((f) => /\.ya?ml$/.test(f) && !skip.has(f)).sort();
for (const file of examples) {
  for (const seed of [undefined, 1, 2, 3]) {
    const out = join(tmp, `${file}.${seed ?? 'default'}.jsonl`);
    const args = [join(dist, 'src/cli/main.js'), 'sim', join(repo, 'examples', file), '--quiet', '--events', out];
    if (seed !== undefined) args.push('--seed', String(seed));
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`sim ${file} seed ${seed ?? 'default'} failed: ${r.stderr}`);
    digests[`examples/${file} seed=${seed ?? 'default'}`] = sha(readFileSync(out));
  }
}
rmSync(tmp, { recursive: true, force: true });

// 2. The benchmarks at an affordable scale, the streamed log hashed event by event (JSON Lines).
type Events = ReadonlyArray<unknown>;
const load = async (p: string) => import(pathToFileURL(join(dist, p)).href);
const { runSimulation } = await load('src/sim/simulator.js');
const { compileScenario } = await load('src/sim/scenario.js');
const { benchScenario } = await load('bench/fleet.js');

function streamedDigest(scenario: unknown): { digest: string; events: number } {
  const h = createHash('sha256');
  let events = 0;
  runSimulation(scenario, {
    onEvents: (es: Events) => {
      for (const e of es) h.update(`${JSON.stringify(e)}\n`);
      events += es.length;
    },
  });
  return { digest: h.digest('hex'), events };
}

/** The bench:sim-image shape (bench/fleet.ts), every set count divided by `divisor`. */
function imageScenario(divisor: number): unknown {
  const image = { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server' };
  const to = '24.04.202601190';
  const regions = Array.from({ length: 60 }, (_, i) => `region${String(i).padStart(2, '0')}`);
  const sizes: Array<[number, number]> = [[1000, 300], [500, 800], [200, 1000], [50, 2000]];
  const scaleSets: Array<Record<string, unknown>> = [];
  let n = 0;
  for (const [capacity, count] of sizes) {
    for (let i = 0; i < Math.ceil(count / divisor); i++, n++) {
      scaleSets.push({
        name: `iss${String(n).padStart(5, '0')}`, region: regions[n % regions.length], subscription: `sub-${String(n % 200).padStart(3, '0')}`,
        ...(n % 10 < 7 ? { zones: ['1', '2', '3'] } : {}), capacity, applicationHealth: n % 2 === 0,
        image: { ...image, version: 'latest' },
        upgradePolicy: { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } },
      });
    }
  }
  const waves: Array<[string, string[]]> = [
    ['PT2H', regions.slice(0, 12).filter((_, i) => i % 2 === 0)],
    ['P1D', regions.slice(0, 12).filter((_, i) => i % 2 === 1).concat(regions.slice(12, 24))],
    ['P2D', regions.slice(24, 42)],
    ['P3D', regions.slice(42)],
  ];
  return compileScenario({
    name: 'bench-image-small', start: '2026-01-05T00:00:00Z', seed: 2026, horizon: 'P16W',
    catalog: [{ publisher: 'Contoso.Monitoring', type: 'FleetAgent', supportsAutomaticUpgrade: true, versions: [{ version: '1.4.0.0' }] }],
    extensions: { agent: { publisher: 'Contoso.Monitoring', type: 'FleetAgent', typeHandlerVersion: '1.4', enableAutomaticUpgrade: true } },
    images: [{ ...image, osType: 'Linux', versions: [{ version: '24.04.202601050' }] }],
    fleet: { generate: { regions: { count: 60, zones: 3 }, extensions: ['agent'] }, scaleSets },
    events: [{ at: 'PT1H', publishImage: { ...image, version: to, replications: waves.flatMap(([at, rs]) => rs.map((region) => ({ region, at }))) } }],
    failures: {
      default: { reimageSeconds: { median: 300, p95: 720 }, healthSeconds: { median: 30, p95: 120 } },
      versions: { [to]: { installFailure: 0.01, unhealthyAfterUpgrade: 0.01, rollbackFailure: 0.02 } },
      slowAgents: { share: 0.01, factor: 5 },
    },
  }, 'bench-image-small');
}

for (const failureRate of [0.02, 0.25]) {
  const r = streamedDigest(benchScenario(machines, failureRate));
  digests[`bench:sim machines=${machines} failures=${failureRate}`] = `${r.digest} (${r.events} events)`;
}
{
  const r = streamedDigest(imageScenario(imageDivisor));
  digests[`bench:sim-image sets/${imageDivisor}`] = `${r.digest} (${r.events} events)`;
}

for (const [k, v] of Object.entries(digests)) console.log(`${v}  ${k}`);
const outFile = arg('out');
if (outFile) writeFileSync(outFile, `${JSON.stringify(digests, null, 2)}\n`);
const against = arg('against');
if (against) {
  const base = JSON.parse(readFileSync(against, 'utf8')) as Record<string, string>;
  const diff = Object.keys({ ...base, ...digests }).filter((k) => base[k] !== digests[k]);
  console.log(diff.length === 0 ? `identical: ${Object.keys(digests).length} event logs` : `DIFFERENT: ${diff.join('; ')}`);
  if (diff.length > 0) process.exitCode = 1;
}
