/**
 * The server's console tells each rollout's story in words at info level: created, phases started
 * and completed, gates breached, paused, resumed, stopped, completed, cancelled, and releases held or
 * withdrawn. Per-instance events stay out (a million machines would drown it); they are in the event log.
 */
import type { Engine } from '../engine/engine.js';
import { describeArtifact } from '../model/artifact.js';
import type { EngineEvent } from '../model/events.js';

export interface MilestoneLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** One sentence for a milestone event, or null for events that are not milestones. */
export function milestoneText(e: EngineEvent, engine: Engine): { level: 'info' | 'warn'; text: string } | null {
  const what = (rolloutId: string) => {
    const r = engine.state.rollouts.get(rolloutId);
    return r ? `rollout ${rolloutId} (${describeArtifact(r.artifact)} ${r.toVersion})` : `rollout ${rolloutId}`;
  };
  switch (e.type) {
    case 'rollout.created': {
      const phases = e.phases.map((p) => p.join('+')).join(' → ');
      return { level: 'info', text: `${what(e.rolloutId)} created: ${e.profile}, ${e.eligible} machines, phases ${phases}. ${e.reason}` };
    }
    case 'phase.started':
      return { level: 'info', text: `${what(e.rolloutId)}: phase ${e.phase} started in ${e.regions.join(', ')}` };
    case 'phase.completed':
      return { level: 'info', text: `${what(e.rolloutId)}: phase ${e.phase} completed (${e.upgraded ?? 0} upgraded, ${e.unhealthy ?? 0} unhealthy)` };
    case 'phase.failed':
      return { level: 'warn', text: `${what(e.rolloutId)}: phase ${e.phase} failed: ${e.reason ?? ''}` };
    case 'gate.breached': {
      const where = e.scope.setId ?? `${e.scope.region}/${e.scope.subscription}`;
      return { level: 'warn', text: `${what(e.rolloutId)}: gate ${e.gate} breached on ${where}: observed ${e.observed}, limit ${e.limit}. ${e.reason}` };
    }
    case 'rollout.paused': case 'rollout.resumed': case 'rollout.stopped': case 'rollout.completed': case 'rollout.cancelled': {
      const verb = e.type.slice('rollout.'.length);
      return { level: verb === 'stopped' ? 'warn' : 'info', text: `${what(e.rolloutId)} ${verb}: ${e.reason}` };
    }
    case 'release.halted': {
      const verb = e.kind === 'withdrawn' ? 'withdrawn' : 'held fleet-wide';
      return { level: 'warn', text: `release ${describeArtifact(e.artifact)} ${e.toVersion} ${verb} by ${e.caller}: ${e.reason}` };
    }
    case 'release.resumed':
      return { level: 'info', text: `release ${describeArtifact(e.artifact)} ${e.toVersion} resumed: ${e.reason}` };
    default:
      return null;
  }
}

export function logMilestones(engine: Engine, log: MilestoneLogger): void {
  engine.onEvents((events) => {
    for (const e of events) {
      const m = milestoneText(e, engine);
      if (!m) continue;
      const fields = { event: e.type, seq: e.seq, ...('rolloutId' in e ? { rolloutId: e.rolloutId } : {}) };
      if (m.level === 'warn') log.warn(fields, m.text);
      else log.info(fields, m.text);
    }
  });
}
