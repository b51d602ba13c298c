/**
 * bench:bound, slow agents across seeds — session 14's find (test/bound-under-holds.test.ts): a critical release
 * on one 100-instance set in 1% batches, R23 at 0%, a share of the agents 50 times slow. For each share and seed it
 * prints the day the last machine was first reached, whether R40 (21 days) held or the release verdict halted the
 * rollout before it reached every machine (R40 then asks nothing more), and the R23 stops of the first pass: how many kept the retry interval, how
 * many were shortened and how many of those were at the 6-hour floor, and where the last full-length stop left the set.
 *
 *   npm run build && node dist/bench/r40-slow-seeds.js [lastSeed=100] [shares=0.05,0.1,0.2]
 */
import { MIN_R23_STOP_MS } from '../src/planner/bound.js';
import { compileScenario } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { MemoryStore } from '../src/store/memory-store.js';
import { DAY, slowAgentsScenario } from '../test/helpers/bound-fleet.js';
import { machineLine, median } from './machine.js';

const lastSeed = Number(process.argv[2] ?? 100);
const shares = (process.argv[3] ?? '0.05,0.1,0.2').split(',').map(Number);
const days = (ms: number) => (ms / DAY).toFixed(3);

interface Row { seed: number; lastDays: number; halted: boolean; held: boolean }

function runSeed(seed: number, share: number): Row {
  const store = new MemoryStore();
  const res = runSimulation(compileScenario(slowAgentsScenario(seed, share), 'bench-r40-slow'), { store });
  const r = [...res.engine.state.rollouts.values()][0]!;
  const first = new Map<string, number>();
  // R23 stops while machines are still to be reached; each lasts until the set's next batch starts.
  const stops: Array<{ at: number; left: number; shortened: boolean; ms: number }> = [];
  let open: (typeof stops)[number] | undefined;
  let halted = '';
  for (const e of store.events()) {
    const t = Date.parse(e.time);
    if (e.type === 'batch.started' && open) {
      stops.push({ ...open, ms: t - open.at });
      open = undefined;
    }
    if (e.type === 'instance.upgrade.started' && !first.has(e.machineId)) first.set(e.machineId, t);
    if (e.type === 'gate.breached' && e.rule === 'R23' && first.size < 100) open = { at: t, left: 100 - first.size, shortened: /instead of the retry interval/.test(e.reason), ms: 0 };
    // Halted or stopped before every machine was reached: R40 asks nothing more of it (after, it does not matter).
    if (!halted && first.size < 100 && (e.type === 'release.halted' || e.type === 'rollout.stopped')) halted = `${e.type} at ${days(t - r.createdAtMs)} d`;
  }
  const last = Math.max(...first.values()) - r.createdAtMs;
  const held = !halted && first.size === 100 && last <= 21 * DAY;
  const full = stops.filter((s) => !s.shortened);
  const short = stops.filter((s) => s.shortened);
  const lastFull = full.at(-1);
  console.log([
    `share ${share}`, `seed ${seed}`, `reached ${first.size}`, `last first reach ${days(last)} d`, halted ? `HALTED (${halted})` : held ? 'held' : 'MISSED',
    `R23 stops ${stops.length}: ${full.length} full, ${short.length} shortened (${short.filter((s) => s.ms <= MIN_R23_STOP_MS + 60_000).length} at 6 h)`,
    lastFull ? `last full stop at ${days(lastFull.at - r.createdAtMs)} d, ${lastFull.left} left` : 'no full stop',
  ].join(' · '));
  return { seed, lastDays: last / DAY, halted: halted !== '', held };
}

console.log(machineLine());
for (const share of shares) {
  const rows = Array.from({ length: lastSeed }, (_, i) => runSeed(i + 1, share));
  const ran = rows.filter((x) => !x.halted);
  const missed = ran.filter((x) => !x.held);
  const ds = ran.map((x) => x.lastDays);
  console.log(`share ${share}: seeds 1-${lastSeed}, halted ${rows.length - ran.length}, completed ${ran.length}, missed R40 ${missed.length}`
    + (ran.length ? ` (${missed.map((x) => `seed ${x.seed} +${Math.ceil((x.lastDays - 21) * 1440)} min`).join(', ') || 'none'}); last first reach median ${median(ds).toFixed(3)} d,`
      + ` max ${Math.max(...ds).toFixed(3)} d, within 0.25 d of the bound ${ds.filter((d) => d > 20.75 && d <= 21).length}` : ''));
}
