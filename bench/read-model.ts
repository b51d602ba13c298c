/**
 * bench:readmodel — a follower's refresh (store/postgres/read-model.ts) at scale: the benchmark fleet
 * (BENCH_RM_MACHINES, default 1,000,000) imported into a throw-away PostgreSQL, the model's first
 * (whole) load, then rollout ticks committed by a PgStore, each followed by a refresh that applies only
 * that tick's changes (fleet rows and the rollouts' progress rows); and a whole load at the end for
 * comparison. CPU seconds are this process's (the refresh's decoding and applying; PostgreSQL runs in
 * its own processes).
 */
import { loadavg } from 'node:os';
import { ReadModel } from '../src/store/postgres/read-model.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { connect } from '../src/store/postgres/connect.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { Simulation } from '../src/sim/simulator.js';
import { benchScenario } from './fleet.js';
import { machineLine } from './machine.js';

const MACHINES = Number(process.env.BENCH_RM_MACHINES ?? 1_000_000);
const TICKS = Number(process.env.BENCH_RM_TICKS ?? 300);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

const server = await startEmbeddedPostgres();
try {
  console.log(`bench:readmodel — a follower's refresh at ${MACHINES.toLocaleString('en')} machines`);
  console.log(`machine: ${machineLine()}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const store0 = await PgStore.open(server.url);
  await store0.importState(benchScenario(MACHINES, 0.02, {}, true).state, { load: false });
  await store0.end();

  const client = await connect(server.url);
  const model = new ReadModel();
  let t0 = performance.now();
  let c0 = cpuMs();
  const first = await model.refresh(client);
  console.log(`first refresh (${first.kind}): ${ms(performance.now() - t0)} wall, ${ms(cpuMs() - c0)} CPU; ${model.state!.fleet.machines.size.toLocaleString('en')} machines`);

  // The leader: a simulation restarted on the stored fleet (its scenario a small one of the same spec, as bench:pg does).
  const store = await PgStore.open(server.url);
  const sim = new Simulation(benchScenario(1000, 0.02, {}, true), { store });
  sim.restart(store);
  sim.driver.observe = () => {};
  const wall: number[] = [];
  const cpu: number[] = [];
  let rows = 0;
  let progressRows = 0;
  let changed = 0;
  for (let i = 0; i < TICKS && sim.step(); i++) {
    await store.settled();
    t0 = performance.now();
    c0 = cpuMs();
    const r = await model.refresh(client);
    if (r.kind === 'same') continue;
    if (r.kind !== 'changes') throw new Error(`refresh ${i}: ${r.kind}, expected changes`);
    wall.push(performance.now() - t0);
    cpu.push(cpuMs() - c0);
    rows += r.rows;
    progressRows += r.progressRows;
    changed++;
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  console.log(`refreshes after ticks: ${changed} (rollouts ${model.state!.rollouts.size}, attempts ${[...model.state!.rollouts.values()].reduce((n, r) => n + r.attempts.size, 0)})`);
  console.log(`  fleet rows + tombstones applied: mean ${(rows / Math.max(1, changed)).toFixed(0)} per refresh`);
  const units = [...model.state!.rollouts.values()].reduce((n, r) => n + r.units.size, 0);
  console.log(`  progress rows + tombstones read: mean ${(progressRows / Math.max(1, changed)).toFixed(0)} per refresh (the rollouts hold ${units.toLocaleString('en')} units)`);
  console.log(`  wall: median ${ms(pct(wall, 0.5))}, p90 ${ms(pct(wall, 0.9))}, max ${ms(pct(wall, 1))}; CPU: median ${ms(pct(cpu, 0.5))}, mean ${ms(mean(cpu))}`);
  await store.end();
  t0 = performance.now();
  c0 = cpuMs();
  const whole = await new ReadModel().refresh(client);
  console.log(`a whole load at the end (${whole.kind}): ${ms(performance.now() - t0)} wall, ${ms(cpuMs() - c0)} CPU`);
  await client.end();
  console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
} finally {
  await server.stop();
}
