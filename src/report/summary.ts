/**
 * Folds the event log into what people ask after a rollout: how many machines were upgraded, rolled
 * back, failed and retried; when each phase started and ended; which gates held; and a time series
 * for the report's chart. Works incrementally, so a million-machine run never keeps its log.
 */
import type { Artifact } from '../model/artifact.js';
import { artifactKey, describeArtifact } from '../model/artifact.js';
import type { EngineEvent } from '../model/events.js';

export interface PhaseSummary {
  index: number;
  regions: string[];
  startedAt: string | null;
  endedAt: string | null;
  /** `cancelled`: the phase was open when its rollout was cancelled (superseded): it never completed nor failed. */
  status: 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';
  upgraded: number;
  unhealthy: number;
}

export interface GateRecord {
  time: string;
  type: string;
  gate: string;
  rule: string;
  observed: number;
  limit: number;
  where: string;
  reason: string;
}

export interface SeriesPoint {
  /** Start of the bucket, ms since the epoch. */
  t: number;
  succeeded: number;
  unhealthy: number;
  rolledBack: number;
  failed: number;
  started: number;
}

/** A hold of the rollout's release, fleet-wide (release.halted), and when it was lifted, if it was. */
export interface ReleaseHaltRecord {
  time: string;
  kind: string;
  reason: string;
  caller: string;
  resumedAt: string | null;
}

export interface RolloutSummary {
  id: string;
  artifact: string;
  /** The instance key of the artifact: release holds (release.halted) name it, not the rollout. */
  artifactKey: string;
  toVersion: string;
  profile: string;
  status: string;
  reason: string;
  createdAt: string;
  endedAt: string | null;
  eligible: number;
  upgraded: number;
  upgradeFailures: number;
  unhealthy: number;
  rolledBack: number;
  failed: number;
  retried: number;
  skipped: number;
  batches: number;
  phases: PhaseSummary[];
  /** Gate events (held and breached) per rule. */
  gatesByRule: Record<string, number>;
  /** Of those, the breaches (gate.breached) per rule. */
  breachesByRule: Record<string, number>;
  gates: GateRecord[];
  /** Holds of the release while this rollout ran; the status reads `held` while one lasts. */
  releaseHalts: ReleaseHaltRecord[];
  series: SeriesPoint[];
}

const MAX_GATE_RECORDS = 200;

export class SummaryCollector {
  private readonly rollouts = new Map<string, RolloutSummary>();
  /** Releases held now (artifactKey@toVersion → the hold): a rollout created while its release is held starts held. */
  private readonly held = new Map<string, ReleaseHaltRecord>();
  private readonly buckets = new Map<string, Map<number, SeriesPoint>>();
  firstTime: string | null = null;
  lastTime: string | null = null;
  events = 0;
  private lastPointTime = '';
  private lastPointBucket = 0;
  private lastPoint: SeriesPoint | null = null;
  private lastPointRollout = '';
  private lastRollout: RolloutSummary | null = null;

  constructor(private readonly bucketMs = 3_600_000) {}

  readonly onEvents = (events: readonly EngineEvent[]): void => {
    for (const e of events) this.add(e);
  };

  add(e: EngineEvent): void {
    this.events++;
    this.firstTime ??= e.time;
    this.lastTime = e.time;
    if (e.type === 'rollout.created') {
      this.lastRollout = null; // a rollout id created again is a new summary
      this.rollouts.set(e.rolloutId, {
        id: e.rolloutId, artifact: describeArtifact(e.artifact as Artifact), artifactKey: artifactKey(e.artifact as Artifact),
        toVersion: e.toVersion, profile: e.profile, status: 'running', reason: e.reason,
        createdAt: e.time, endedAt: null, eligible: e.eligible, upgraded: 0, upgradeFailures: 0, unhealthy: 0, rolledBack: 0, failed: 0, retried: 0, skipped: 0, batches: 0,
        phases: e.phases.map((regions, index) => ({ index, regions, startedAt: null, endedAt: null, status: 'pending', upgraded: 0, unhealthy: 0 })),
        gatesByRule: {}, breachesByRule: {}, gates: [], releaseHalts: [], series: [],
      });
      this.buckets.set(e.rolloutId, new Map());
      const hold = this.held.get(`${artifactKey(e.artifact as Artifact)}@${e.toVersion}`);
      if (hold && holds(hold.kind, e.profile)) {
        const r = this.rollouts.get(e.rolloutId)!;
        r.releaseHalts.push(hold);
        r.status = 'held';
      }
      return;
    }
    if (e.type === 'release.halted' || e.type === 'release.resumed') {
      this.release(e);
      return;
    }
    if (!('rolloutId' in e)) return;
    // A log comes in long runs of one rollout's events: the previous event's rollout is most often this one's.
    let r = this.lastRollout;
    if (r === null || r.id !== e.rolloutId) {
      r = this.rollouts.get(e.rolloutId) ?? null;
      if (r === null) return;
      this.lastRollout = r;
    }
    switch (e.type) {
      case 'phase.started': { const p = r.phases[e.phase]!; p.startedAt = e.time; p.status = 'running'; return; }
      case 'phase.completed':
      case 'phase.failed': {
        const p = r.phases[e.phase]!;
        p.endedAt = e.time;
        p.status = e.type === 'phase.completed' ? 'completed' : 'failed';
        p.upgraded = e.upgraded ?? 0;
        p.unhealthy = e.unhealthy ?? 0;
        return;
      }
      case 'batch.started': r.batches++; return;
      case 'instance.upgrade.started': this.point(r.id, e.time).started++; return;
      case 'instance.upgrade.succeeded': r.upgraded++; this.point(r.id, e.time).succeeded++; return;
      case 'instance.upgrade.failed': r.upgradeFailures++; this.point(r.id, e.time).unhealthy++; return;
      case 'instance.health.unhealthy': r.unhealthy++; this.point(r.id, e.time).unhealthy++; return;
      case 'instance.rollback.succeeded': r.rolledBack++; this.point(r.id, e.time).rolledBack++; return;
      case 'instance.rollback.failed': r.failed++; this.point(r.id, e.time).failed++; return;
      case 'instance.retry.scheduled': r.retried++; return;
      case 'instance.skipped': r.skipped++; return;
      case 'gate.held':
      case 'gate.breached': {
        r.gatesByRule[e.rule] = (r.gatesByRule[e.rule] ?? 0) + 1;
        if (e.type === 'gate.breached') r.breachesByRule[e.rule] = (r.breachesByRule[e.rule] ?? 0) + 1;
        if (r.gates.length < MAX_GATE_RECORDS) {
          const s = e.scope;
          const where = [s.region, s.zone ? `zone ${s.zone}` : null, s.setId ?? null].filter(Boolean).join(' / ');
          r.gates.push({ time: e.time, type: e.type, gate: e.gate, rule: e.rule, observed: e.observed, limit: e.limit, where, reason: e.reason });
        }
        return;
      }
      case 'rollout.completed':
      case 'rollout.stopped':
      case 'rollout.cancelled':
        // A rollout replaced by a newer plan of the release is superseded, not cancelled by anyone.
        r.status = e.type === 'rollout.cancelled' && e.reason.startsWith('superseded') ? 'superseded' : e.type.slice('rollout.'.length);
        r.reason = e.reason;
        r.endedAt = e.time;
        // An open phase of a cancelled rollout ends with it: it would read "running" forever otherwise.
        if (e.type === 'rollout.cancelled') {
          for (const p of r.phases) {
            if (p.status !== 'running') continue;
            p.status = 'cancelled';
            p.endedAt = e.time;
          }
        }
        return;
      case 'rollout.paused':
        r.status = 'paused';
        return;
      case 'rollout.resumed':
        r.status = r.releaseHalts.some((h) => h.resumedAt === null) ? 'held' : 'running';
        r.endedAt = null;
        return;
      default:
        return;
    }
  }

  /** A release held or resumed fleet-wide: every unfinished rollout of that artifact and version. */
  private release(e: Extract<EngineEvent, { type: 'release.halted' | 'release.resumed' }>): void {
    const key = `${e.artifactKey}@${e.toVersion}`;
    // One record per hold, shared by the release's rollouts: a resume shows on each of them.
    const hold = e.type === 'release.halted' ? { time: e.time, kind: e.kind, reason: e.reason, caller: e.caller, resumedAt: null } : null;
    if (hold) this.held.set(key, hold);
    else {
      const was = this.held.get(key);
      if (was) was.resumedAt = e.time;
      this.held.delete(key);
    }
    for (const r of this.rollouts.values()) {
      if (r.artifactKey !== e.artifactKey || r.toVersion !== e.toVersion || r.endedAt !== null) continue;
      if (!holds(e.type === 'release.halted' ? e.kind : (r.releaseHalts.at(-1)?.kind ?? ''), r.profile)) continue;
      if (hold) {
        r.releaseHalts.push(hold);
        if (r.status === 'running') r.status = 'held';
      } else if (r.status === 'held') r.status = 'running';
    }
  }

  private point(rolloutId: string, time: string): SeriesPoint {
    // Events come in runs of one instant: parse each instant's text once.
    if (time !== this.lastPointTime) {
      this.lastPointTime = time;
      this.lastPointBucket = Math.floor(Date.parse(time) / this.bucketMs) * this.bucketMs;
    }
    const t = this.lastPointBucket;
    // ...and of one rollout: the point of the previous event is most often this one's.
    const last = this.lastPoint;
    if (last !== null && last.t === t && this.lastPointRollout === rolloutId) return last;
    const b = this.buckets.get(rolloutId)!;
    let p = b.get(t);
    if (!p) b.set(t, (p = { t, succeeded: 0, unhealthy: 0, rolledBack: 0, failed: 0, started: 0 }));
    this.lastPoint = p;
    this.lastPointRollout = rolloutId;
    return p;
  }

  result(): RolloutSummary[] {
    return [...this.rollouts.values()].map((r) => ({ ...r, series: [...this.buckets.get(r.id)!.values()].sort((a, b) => a.t - b.t) }));
  }
}

/** Whether a hold of this kind stops a rollout of this profile: manual upgrades (R6) wait only for an operator's. */
function holds(kind: string, profile: string): boolean {
  return profile !== 'manual' || kind === 'operator';
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor((ms % 86_400_000) / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  return d > 0 ? `${d}d ${h}h ${m}m` : h > 0 ? `${h}h ${m}m` : `${m}m`;
}

/** The text summary `phasewise sim` prints; `eventLog` is the file the full log went to, if any. */
export function formatSummary(rollouts: readonly RolloutSummary[], eventLog: string | null = null): string {
  const lines: string[] = [];
  for (const r of rollouts) {
    const took = r.endedAt ? formatDuration(Date.parse(r.endedAt) - Date.parse(r.createdAt)) : 'not finished';
    lines.push(`Rollout ${r.id}: ${r.artifact} → ${r.toVersion} (${r.profile}) — ${r.status}${r.endedAt ? ` after ${took}` : ''}`);
    lines.push(`  ${r.reason}`);
    for (const h of r.releaseHalts) {
      const lifted = h.resumedAt ? `; resumed ${h.resumedAt}` : '; still held: no new batch anywhere until an operator resumes the release';
      lines.push(`  release held fleet-wide ${h.time} (${h.kind}, by ${h.caller}): ${h.reason}${lifted}`);
    }
    lines.push(`  eligible ${r.eligible} · upgraded ${r.upgraded} · install failures ${r.upgradeFailures} · unhealthy after upgrade ${r.unhealthy} · rolled back ${r.rolledBack} · failed (rollback failed) ${r.failed} · retries scheduled ${r.retried} · skipped ${r.skipped} · batches ${r.batches}`);
    lines.push('  phase  start                     end                       duration    regions');
    for (const p of r.phases) {
      const dur = p.startedAt && p.endedAt ? formatDuration(Date.parse(p.endedAt) - Date.parse(p.startedAt)) : '';
      const mark = p.status === 'failed' ? '  FAILED' : p.status === 'cancelled' ? '  cancelled' : '';
      const end = p.endedAt ?? (p.startedAt ? 'running' : '—');
      lines.push(`  ${String(p.index).padEnd(5)}  ${(p.startedAt ?? '—').padEnd(24)}  ${end.padEnd(24)}  ${dur.padEnd(10)}  ${p.regions.join(', ')}${mark}`);
    }
    lines.push(...gateLines(r, eventLog));
    lines.push('');
  }
  return lines.join('\n');
}

/** Held and breached gates apart: a breach is not a gate that held. */
function gateLines(r: RolloutSummary, eventLog: string | null): string[] {
  const count = (m: Record<string, number>) => Object.entries(m).filter(([, n]) => n > 0).map(([rule, n]) => `${rule} ×${n}`).join(', ');
  const held = Object.fromEntries(Object.entries(r.gatesByRule).map(([rule, n]) => [rule, n - (r.breachesByRule[rule] ?? 0)]));
  const lines: string[] = [];
  const heldText = count(held);
  const breachedText = count(r.breachesByRule);
  if (!heldText && !breachedText) lines.push('  gates: none held, none breached');
  if (heldText) lines.push(`  gates that held: ${heldText}`);
  if (breachedText) lines.push(`  gates breached: ${breachedText}`);
  for (const g of r.gates.slice(0, 8)) lines.push(`    ${g.time} ${g.type} ${g.gate} (${g.rule}) ${g.where}: ${g.reason}`);
  const more = Object.values(r.gatesByRule).reduce((a, b) => a + b, 0) - 8;
  if (more > 0) lines.push(`    … ${more} more ${eventLog ? `in the event log ${eventLog}` : '(write the event log with --events FILE to see them)'}`);
  return lines;
}
