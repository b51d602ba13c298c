/** What machine a benchmark ran on: these machines are shared and noisy, so figures need their context. */
import os from 'node:os';

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
