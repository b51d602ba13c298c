/**
 * Limits on the size of a scenario's fleet, checked before anything is built: a typo such as
 * `count: 1000000000` must be a clear error, not minutes of work ending in the process running out of
 * memory. The limits are well above the fleets Phasewise is measured with (1,000,000 machines and 10
 * million for bench/fleet.ts, docs/benchmarks.md); generated sets count at their largest size.
 */
import type { ScenarioInput } from './scenario-schema.js';

export const MAX_MACHINES = 20_000_000;
export const MAX_GENERATED_REGIONS = 10_000;
export const MAX_SUBSCRIPTIONS = 100_000;

interface Issue { path: string; message: string }

const n = (x: number): string => x.toLocaleString('en');

/** The problems with the fleet's size; empty when it can be built. */
export function fleetSizeIssues(fleet: ScenarioInput['fleet']): Issue[] {
  const issues: Issue[] = [];
  const g = fleet.generate;
  if (g?.regions && g.regions.count > MAX_GENERATED_REGIONS) {
    issues.push({ path: 'fleet.generate.regions.count', message: `expected at most ${n(MAX_GENERATED_REGIONS)} generated regions, got ${n(g.regions.count)}` });
  }
  if (g?.subscriptions !== undefined && g.subscriptions > MAX_SUBSCRIPTIONS) {
    issues.push({ path: 'fleet.generate.subscriptions', message: `expected at most ${n(MAX_SUBSCRIPTIONS)} subscriptions, got ${n(g.subscriptions)}` });
  }
  // Each part of the fleet with the most machines it can make; the largest is named in the message.
  const parts: Array<[path: string, machines: number]> = [];
  (fleet.scaleSets ?? []).forEach((s, i) => parts.push([`fleet.scaleSets[${i}]`, s.capacity * (s.count ?? 1)]));
  (fleet.availabilitySets ?? []).forEach((a, i) => parts.push([`fleet.availabilitySets[${i}]`, a.vms * (a.count ?? 1)]));
  (fleet.vms ?? []).forEach((v, i) => parts.push([`fleet.vms[${i}].count`, v.count]));
  (fleet.arcMachines ?? []).forEach((v, i) => parts.push([`fleet.arcMachines[${i}].count`, v.count]));
  if (g?.scaleSets) parts.push(['fleet.generate.scaleSets', g.scaleSets.count * g.scaleSets.capacity.max]);
  if (g?.availabilitySets) parts.push(['fleet.generate.availabilitySets', g.availabilitySets.count * g.availabilitySets.vms.max]);
  if (g?.vms !== undefined) parts.push(['fleet.generate.vms', g.vms]);
  if (g?.arcMachines !== undefined) parts.push(['fleet.generate.arcMachines', g.arcMachines]);
  const written = parts.reduce((sum, [, m]) => sum + m, 0);
  if (g?.totalMachines !== undefined) parts.push(['fleet.generate.totalMachines', Math.max(0, g.totalMachines - written)]);
  const total = parts.reduce((sum, [, m]) => sum + m, 0);
  if (total > MAX_MACHINES) {
    const [path, largest] = parts.reduce((a, b) => (b[1] > a[1] ? b : a));
    issues.push({ path, message: `the fleet would have up to ${n(total)} machines (${n(largest)} here); a scenario holds at most ${n(MAX_MACHINES)}` });
  }
  return issues;
}
