/** The plan as people read it before they start (`phasewise plan`). */
import { describeArtifact } from '../model/artifact.js';
import type { Plan, PlanUnit } from './types.js';
import { explainBatch } from './units.js';

function dur(ms: number): string {
  if (!Number.isFinite(ms)) return 'no bound';
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor((ms % 86_400_000) / 3_600_000);
  const m = Math.round((ms % 3_600_000) / 60_000);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

function unitLine(u: PlanUnit, detail: boolean): string[] {
  const sizes = u.batches.map((b) => b.machineIds.length);
  const udCount = new Set(u.batches.map((b) => b.updateDomain)).size;
  const head = `${u.reason}: ${sizes.reduce((a, b) => a + b, 0)} machines in ${u.batches.length} batch${u.batches.length === 1 ? '' : 'es'} of at most ${Math.max(...sizes)}` +
    (u.kind === 'scaleSet' || u.kind === 'availabilitySet' ? ` across ${udCount} update domain${udCount === 1 ? '' : 's'}` : '') +
    (u.limits.maxUnhealthyInstancePercent !== null ? `; gates: set unhealthy ≤ ${u.limits.maxUnhealthyInstancePercent}%, upgraded unhealthy ≤ ${u.limits.maxUnhealthyUpgradedInstancePercent}%` : `; gate: upgraded unhealthy ≤ ${u.limits.maxUnhealthyUpgradedInstancePercent}%`) +
    `; health wait ${dur(u.limits.healthWindowMs)}`;
  const lines = [head];
  if (detail) for (const b of u.batches) lines.push(`  batch ${b.index}: ${b.machineIds.join(', ')} — ${explainBatch(u, b)}`);
  return lines;
}

export function describePlan(plan: Plan, opts: { detail?: boolean; startMs?: number } = {}): string {
  const out: string[] = [];
  const e = plan.estimate;
  out.push(`Plan ${plan.rolloutId}: ${describeArtifact(plan.artifact)} → ${plan.toVersion}, ${plan.profile.name} profile`);
  out.push(`  ${plan.machines} machines in ${plan.phases.length} phases and ${plan.batches} batches; estimated ${dur(e.totalMs)} plus ${dur(e.retryAllowanceMs)} for a retry; bound ${dur(e.boundMs)} (R40): ${e.fitsBound ? 'fits' : 'DOES NOT FIT'}`);
  for (const n of e.notes) out.push(`  note: ${n}`);
  const at = (offset: number) => (opts.startMs === undefined ? `+${dur(offset)}` : new Date(opts.startMs + offset).toISOString().slice(0, 16).replace('T', ' '));
  for (const p of plan.phases) {
    out.push('');
    out.push(`Phase ${p.index} — from ${at(p.estimatedStartMs)}, about ${dur(p.estimatedMs)}${p.bakeAfterMs > 0 ? `, then bakes ${dur(p.bakeAfterMs)}` : ''}`);
    out.push(`  why: ${p.reason}`);
    for (const r of p.regions) {
      out.push(`  ${r.region}${r.pair ? ` (geo-pair ${r.pair}, in another phase)` : ''}: ${r.machines} machines, about ${dur(r.estimatedMs)}`);
      r.waves.forEach((w, wi) => {
        out.push(`    wave ${wi}: ${w.reason}, about ${dur(w.estimatedMs)}; ${w.units.length} unit${w.units.length === 1 ? '' : 's'} side by side`);
        for (const u of w.units) for (const [i, line] of unitLine(u, opts.detail ?? false).entries()) out.push(`      ${i === 0 ? '- ' : '  '}${line}`);
      });
    }
  }
  return out.join('\n');
}
