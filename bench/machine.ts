/** What machine a benchmark ran on: these machines are shared and noisy, so figures need their context. */
import os from 'node:os';
import { TimeHeap } from '../src/util/heap.js';

export function machineLine(): string {
  const cpus = os.cpus();
  return `node ${process.version} · ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'} · ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM · ${os.platform()} ${os.release()}`;
}

export function peakRssMiB(): number {
  // maxRSS is in kilobytes on Linux.
  return process.resourceUsage().maxRSS / 1024;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** CPU seconds this process used (all its threads) since `since`. */
export function cpuSeconds(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/**
 * The bare event queue's rate (see `heapRate`) in wall time and in this process's CPU time: on a shared
 * machine the wall rate moves with the other work, the CPU rate much less, so a ratio of CPU rates is the
 * steadier comparison.
 */
export function heapRates(): { wall: number; cpu: number } {
  const r = heapRun();
  return { wall: Math.round(r.n / (r.wallMs / 1000)), cpu: Math.round(r.n / r.cpuS) };
}

/** The two lines a simulation bench ends with: its rate per event against the bare queue's, in wall and CPU time. */
export function queueRatioLines(events: number, simMs: number, simCpuS: number): string[] {
  const rate = heapRates();
  const wallShare = ((events / (simMs / 1000)) / rate.wall * 100).toFixed(1);
  const perCpu = events / simCpuS;
  return [
    `reference in the same run: the bare event queue does ${rate.wall.toLocaleString('en')} pop+push per second; the whole simulation runs at ${wallShare}% of that rate per event`,
    `the same in CPU time (steadier on a shared machine): ${Math.round(perCpu).toLocaleString('en')} events per CPU second `
      + `(${simCpuS.toFixed(1)} s), the bare queue ${rate.cpu.toLocaleString('en')} pop+push per CPU second: ${(perCpu / rate.cpu * 100).toFixed(1)}%`,
  ];
}

/** Push and pop 2 M timed items through the simulator's heap, with 100k pending: the floor of any simulation. */
export function heapRate(): number {
  const r = heapRun();
  return Math.round(r.n / (r.wallMs / 1000));
}

function heapRun(): { n: number; wallMs: number; cpuS: number } {
  const heap = new TimeHeap<{ at: number }>();
  let t = 0;
  for (let i = 0; i < 100_000; i++) heap.push({ at: (i * 7919) % 100_000 });
  const n = 2_000_000;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const top = heap.pop()!;
    t = top.at;
    heap.push({ at: t + ((i * 7919) % 1000) });
  }
  return { n, wallMs: performance.now() - t0, cpuS: cpuSeconds(c0) };
}
