/** The plan as people read it before they start (`phasewise plan`). */
import { describeArtifact } from '../model/artifact.js';
import { daysFromCivil, isoWeekday } from '../schedule/civil.js';
import type { LocalDateTime, MaintenanceWindow } from '../schedule/window.js';
import { localDateTimeAt } from '../schedule/window.js';
import type { Plan, PlanBatchWindow, PlanUnit } from './types.js';
import { explainBatch } from './units.js';

export interface DescribeOptions {
  /** Show every batch and its machines. */
  detail?: boolean;
  /** The rollout's start (epoch ms): times are shown as dates; by default the plan's own start. */
  startMs?: number;
  /**
   * The windows behind a unit's window key (R70): windowed batches are then shown in the local time of the
   * first window's zone. Without it they are shown in UTC.
   */
  windowsOf?: (windowKey: string) => readonly MaintenanceWindow[];
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** How instants are written: local to a window's zone, or UTC. */
interface Clock {
  label: string;
  local(t: number): LocalDateTime;
}

function utcClock(): Clock {
  return {
    label: 'UTC',
    local: (t) => {
      const d = new Date(t);
      return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
    },
  };
}

function clockOf(u: PlanUnit, opts: DescribeOptions): Clock {
  const w = u.windowKey !== undefined ? opts.windowsOf?.(u.windowKey)[0] : undefined;
  return w ? { label: w.timeZone, local: (t) => localDateTimeAt(w, t) } : utcClock();
}

function day(d: LocalDateTime): string {
  return `${WEEKDAYS[isoWeekday(daysFromCivil(d.year, d.month, d.day)) - 1]} ${d.year}-${p2(d.month)}-${p2(d.day)}`;
}

/** `Sat 2026-01-10 22:00–Sun 04:00 Pacific Standard Time`, or `…22:00–23:30 …` within a day. */
function windowText(w: PlanBatchWindow, base: number, clock: Clock): string {
  const a = clock.local(base + w.opensMs);
  const b = clock.local(base + w.closesMs);
  const sameDay = a.year === b.year && a.month === b.month && a.day === b.day;
  const end = `${sameDay ? '' : `${day(b).slice(0, 3)} `}${p2(b.hour)}:${p2(b.minute)}`;
  return `${day(a)} ${p2(a.hour)}:${p2(a.minute)}–${end} ${clock.label}`;
}

/** The windows a unit's batches are expected to run in: every batch, consecutive batches of one window together. */
function windowLines(u: PlanUnit, base: number, opts: DescribeOptions): string[] {
  if (u.windowKey === undefined) return [];
  const clock = clockOf(u, opts);
  const lines = [`confined to maintenance windows (R70): ${u.windowKey.split('\n').join(', ')}`];
  if (u.unschedulable) lines.push('never runs: none of its windows is long enough for a batch before the configurations expire (R70)');
  let i = 0;
  while (i < u.batches.length) {
    const w = u.batches[i]!.window;
    if (!w) break;
    let j = i;
    while (j + 1 < u.batches.length && u.batches[j + 1]!.window?.opensMs === w.opensMs) j++;
    lines.push(`${i === j ? `batch ${i}` : `batches ${i}–${j}`}: window ${windowText(w, base, clock)}`);
    i = j + 1;
  }
  return lines;
}

function dur(ms: number): string {
  if (!Number.isFinite(ms)) return 'no bound';
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor((ms % 86_400_000) / 3_600_000);
  const m = Math.round((ms % 3_600_000) / 60_000);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

function unitLine(u: PlanUnit, base: number, opts: DescribeOptions): string[] {
  const detail = opts.detail ?? false;
  const sizes = u.batches.map((b) => b.machineIds.length);
  const udCount = new Set(u.batches.map((b) => b.updateDomain)).size;
  const head = `${u.reason}: ${sizes.reduce((a, b) => a + b, 0)} machines in ${u.batches.length} batch${u.batches.length === 1 ? '' : 'es'} of at most ${Math.max(...sizes)}` +
    (u.kind === 'scaleSet' || u.kind === 'availabilitySet' ? ` across ${udCount} update domain${udCount === 1 ? '' : 's'}` : '') +
    (u.limits.maxUnhealthyInstancePercent !== null ? `; gates: set unhealthy ≤ ${u.limits.maxUnhealthyInstancePercent}%, upgraded unhealthy ≤ ${u.limits.maxUnhealthyUpgradedInstancePercent}%` : `; gate: upgraded unhealthy ≤ ${u.limits.maxUnhealthyUpgradedInstancePercent}%`) +
    `; health wait ${dur(u.limits.healthWindowMs)}`;
  const lines = [head];
  if (!detail) {
    for (const line of windowLines(u, base, opts)) lines.push(`  ${line}`);
    return lines;
  }
  if (u.windowKey !== undefined) lines.push(`  ${windowLines(u, base, opts)[0]}`);
  const clock = clockOf(u, opts);
  for (const b of u.batches) lines.push(`  batch ${b.index}: ${b.machineIds.join(', ')} — ${explainBatch(u, b)}${b.window ? `; window ${windowText(b.window, base, clock)}` : ''}`);
  return lines;
}

export function describePlan(plan: Plan, opts: DescribeOptions = {}): string {
  const out: string[] = [];
  const e = plan.estimate;
  const base = opts.startMs ?? e.startMs;
  out.push(`Plan ${plan.rolloutId}: ${describeArtifact(plan.artifact)} → ${plan.toVersion}, ${plan.profile.name} profile`);
  out.push(`  ${plan.machines} machines in ${plan.phases.length} phases and ${plan.batches} batches; estimated ${dur(e.totalMs)} plus ${dur(e.retryAllowanceMs)} for a retry; bound ${dur(e.boundMs)} (R40): ${e.fitsBound ? 'fits' : 'DOES NOT FIT'}`);
  const at = (offset: number) => (opts.startMs === undefined ? `+${dur(offset)}` : new Date(opts.startMs + offset).toISOString().slice(0, 16).replace('T', ' '));
  out.push(`  expected end: ${opts.startMs === undefined ? at(e.totalMs) : `${at(e.totalMs)} UTC`}${e.windowedBatches ? `, with ${e.windowedBatches} batches confined to maintenance windows (R70)` : ''}`);
  if (e.outlook) {
    const o = e.outlook;
    const end = Number.isFinite(o.projectedEndMs) ? `${at(o.projectedEndMs - e.startMs)}${opts.startMs === undefined ? '' : ' UTC'}` : 'never';
    out.push(`  bound (R40): ${o.atRisk ? 'AT RISK' : 'holds'}: last machine first reached by ${end} with ${o.expectedStops} R23 stops expected — ${o.reason}`);
  }
  for (const n of e.notes) out.push(`  note: ${n}`);
  for (const p of plan.phases) {
    out.push('');
    out.push(`Phase ${p.index} — from ${at(p.estimatedStartMs)}, about ${dur(p.estimatedMs)}${p.bakeAfterMs > 0 ? `, then bakes ${dur(p.bakeAfterMs)}` : ''}`);
    out.push(`  why: ${p.reason}`);
    for (const r of p.regions) {
      out.push(`  ${r.region}${r.pair ? ` (geo-pair ${r.pair}, in another phase)` : ''}: ${r.machines} machines, about ${dur(r.estimatedMs)}`);
      r.waves.forEach((w, wi) => {
        out.push(`    wave ${wi}: ${w.reason}, about ${dur(w.estimatedMs)}; ${w.units.length} unit${w.units.length === 1 ? '' : 's'} side by side`);
        for (const u of w.units) for (const [i, line] of unitLine(u, base, opts).entries()) out.push(`      ${i === 0 ? '- ' : '  '}${line}`);
      });
    }
  }
  return out.join('\n');
}
