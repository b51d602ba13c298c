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

/** Push and pop 2 M timed items through the simulator's heap, with 100k pending: the floor of any simulation. */
export function heapRate(): number {
  const heap = new TimeHeap<{ at: number }>();
  let t = 0;
  for (let i = 0; i < 100_000; i++) heap.push({ at: (i * 7919) % 100_000 });
  const n = 2_000_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const top = heap.pop()!;
    t = top.at;
    heap.push({ at: t + ((i * 7919) % 1000) });
  }
  return Math.round(n / ((performance.now() - t0) / 1000));
}
