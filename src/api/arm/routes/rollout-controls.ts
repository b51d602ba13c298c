/**
 * Operators' controls (docs/api.md, "Rollout controls"): pause, resume and cancel a rollout, pause and
 * resume every rollout at once, withdraw a version. Each needs the `contributor` role, names its
 * caller in the event log and the activity log, and changes nothing when it is refused.
 *
 *   POST /phasewise/rollouts/{id}/pause    { "reason"? }   hold the rollout's release (every rollout of that version)
 *   POST /phasewise/rollouts/{id}/resume                   lift a pause, a stop, R23's set stops
 *   POST /phasewise/rollouts/{id}/cancel   { "reason"? }
 *   POST /phasewise/fleet/pause            { "reason"? }   the fleet-wide stop
 *   POST /phasewise/fleet/resume
 *   POST /phasewise/publishers/{publisher}/extensionTypes/{type}/versions/{version}/withdraw  { "reason"?, "rollback"? }
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { RolloutState } from '../../../engine/state.js';
import { releaseKey } from '../../../engine/state.js';
import { artifactKey } from '../../../model/artifact.js';
import type { ArmContext } from '../context.js';
import { writer } from '../context.js';
import { conflict, notFound } from '../errors.js';
import { parseBody } from '../validation.js';
import { rolloutRecord } from './publisher.js';

const reasonBody = z.object({ reason: z.string().min(1).max(1000).optional() }).strict();
const withdrawBody = z.object({ reason: z.string().min(1).max(1000).optional(), rollback: z.boolean().default(false) }).strict();

/** Follows what a withdrawal with rollback leaves for later (src/server/control-follow-up.ts). */
export interface WithdrawalFollower {
  follow(w: { artifact: { kind: 'extension'; publisher: string; type: string }; version: string; caller: string }): void;
}

function rolloutOf(ctx: ArmContext, req: FastifyRequest): RolloutState {
  const { id } = req.params as { id: string };
  const rollouts = ctx.engine.state.rollouts;
  const r = rollouts.get(id) ?? (id.length <= 200 ? [...rollouts.values()].find((x) => x.id.toLowerCase() === id.toLowerCase()) : undefined);
  if (!r) throw notFound('RolloutNotFound', `There is no rollout '${id.slice(0, 200)}'.`);
  return r;
}

function mustBeLive(r: RolloutState, action: string): void {
  if (r.status === 'completed' || r.status === 'cancelled') {
    throw conflict('RolloutEnded', `Rollout ${r.id} has ended (${r.status}); it cannot be ${action}.`);
  }
}

export function registerRolloutControlRoutes(app: FastifyInstance, ctx: ArmContext, follower: WithdrawalFollower | null): void {
  app.post('/phasewise/rollouts/:id/pause', async (req) => {
    const caller = writer(req, 'Phasewise/rollouts/pause/action');
    const r = rolloutOf(ctx, req);
    const body = parseBody(reasonBody, req.body ?? {});
    mustBeLive(r, 'paused');
    if (r.status === 'stopped') throw conflict('RolloutStopped', `Rollout ${r.id} is stopped already (${r.reason}); resume or cancel it.`);
    const hold = ctx.engine.state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.hold;
    if (hold) throw conflict('RolloutAlreadyPaused', `Rollout ${r.id} is paused already: its release is held (${hold.kind}): ${hold.reason}`);
    const paused = ctx.engine.pauseRollout(r.id, body.reason ?? 'no reason given', caller);
    ctx.runtime.kick();
    return { ...rolloutRecord(r, ctx.engine.state, ctx.runtime.clock.now()), paused: paused.map((x) => x.id) };
  });

  app.post('/phasewise/rollouts/:id/resume', async (req) => {
    const caller = writer(req, 'Phasewise/rollouts/resume/action');
    const r = rolloutOf(ctx, req);
    mustBeLive(r, 'resumed');
    const hold = ctx.engine.state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.hold;
    if (hold?.kind === 'withdrawn') throw conflict('VersionWithdrawn', `Version ${r.toVersion} was withdrawn; its rollouts cannot resume.`);
    const stoppedSets = [...r.units.values()].some((u) => u.status === 'stopped' || u.status === 'held');
    if (!hold && r.status !== 'stopped' && !stoppedSets) throw conflict('RolloutNotPaused', `Rollout ${r.id} is ${r.status} and nothing holds it back; there is nothing to resume.`);
    const done = ctx.engine.resumeRolloutByOperator(r.id, caller);
    ctx.runtime.kick();
    return { ...rolloutRecord(r, ctx.engine.state, ctx.runtime.clock.now()), resumed: done };
  });

  app.post('/phasewise/rollouts/:id/cancel', async (req) => {
    const caller = writer(req, 'Phasewise/rollouts/cancel/action');
    const r = rolloutOf(ctx, req);
    const body = parseBody(reasonBody, req.body ?? {});
    mustBeLive(r, 'cancelled');
    ctx.engine.cancelRolloutByOperator(r.id, body.reason ?? 'no reason given', caller);
    ctx.runtime.kick();
    return rolloutRecord(r, ctx.engine.state, ctx.runtime.clock.now());
  });

  app.post('/phasewise/fleet/pause', async (req) => {
    const caller = writer(req, 'Phasewise/fleet/pause/action');
    const body = parseBody(reasonBody, req.body ?? {});
    const paused = ctx.engine.pauseAllRollouts(body.reason ?? 'no reason given', caller);
    ctx.runtime.kick();
    return { paused: paused.map((r) => r.id) };
  });

  app.post('/phasewise/fleet/resume', async (req) => {
    const caller = writer(req, 'Phasewise/fleet/resume/action');
    const resumed = ctx.engine.resumeAllRollouts(caller);
    ctx.runtime.kick();
    return { resumed: resumed.map((r) => r.id) };
  });

  app.post('/phasewise/publishers/:publisher/extensionTypes/:type/versions/:version/withdraw', async (req) => {
    const caller = writer(req, 'Phasewise/releases/withdraw/action');
    const { publisher, type, version } = req.params as { publisher: string; type: string; version: string };
    const body = parseBody(withdrawBody, req.body ?? {});
    const t = ctx.engine.state.catalog.getType(publisher, type);
    if (!t || !t.versions.some((v) => v.version === version)) {
      throw notFound('VersionNotFound', `Version '${version.slice(0, 100)}' of '${publisher}.${type}' is not published.`);
    }
    if (ctx.engine.state.catalog.isWithdrawn(t.publisher, t.type, version)) throw conflict('VersionAlreadyWithdrawn', `Version ${version} of ${t.publisher}.${t.type} is withdrawn already.`);
    const artifact = { kind: 'extension' as const, publisher: t.publisher, type: t.type };
    const result = ctx.engine.withdrawVersion(artifact, version, { rollback: body.rollback, reason: body.reason ?? 'no reason given', caller });
    if (body.rollback && follower) follower.follow({ artifact, version, caller });
    ctx.runtime.kick();
    return {
      artifact, version, withdrawn: true, rollback: body.rollback, release: `${artifactKey(artifact)}@${version}`,
      cancelled: result.cancelled,
      rollbackRollouts: result.rollouts.map((r) => r.id),
      machinesInFlight: result.inFlight,
      machinesWithoutEarlierVersion: result.noEarlierVersion.length,
    };
  });
}
