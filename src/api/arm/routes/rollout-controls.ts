/**
 * Operators' controls (docs/api.md, "Rollout controls"): pause, resume and cancel a rollout, pause and
 * resume every rollout at once, withdraw a version. Each needs the `contributor` role, names its
 * caller in the event log and the activity log, and changes nothing when it is refused.
 *
 *   POST /phasewise/rollouts/{id}/pause    { "reason"? }   hold the rollout's release (every rollout of that version)
 *   POST /phasewise/rollouts/{id}/resume   { "reason"? }   lift a pause, a stop, R23's set stops
 *   POST /phasewise/rollouts/{id}/cancel   { "reason"? }
 *   POST /phasewise/fleet/pause            { "reason"? }   the fleet-wide stop
 *   POST /phasewise/fleet/resume           { "reason"? }
 *   POST /phasewise/publishers/{publisher}/extensionTypes/{type}/versions/{version}/withdraw  { "reason"?, "rollback"? }
 *   POST /phasewise/images/publishers/{p}/offers/{o}/skus/{s}/versions/{v}/withdraw           the same for an OS image
 *   POST /phasewise/subscriptions/{sub}/resourceGroups/{rg}/galleries/{g}/images/{def}/versions/{v}/withdraw
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { RolloutState } from '../../../engine/state.js';
import { releaseKey } from '../../../engine/state.js';
import { isFleetStopHold } from '../../../engine/rollouts/operator-controls.js';
import type { Artifact } from '../../../model/artifact.js';
import { artifactKey } from '../../../model/artifact.js';
import type { ImageRef } from '../../../model/image-reference.js';
import type { ArmContext } from '../context.js';
import { writer } from '../context.js';
import { conflict, notFound } from '../errors.js';
import { beginFleetStop, endFleetStop, fleetStopView } from '../fleet-stop.js';
import { operatorReason, parseBody } from '../validation.js';
import { rolloutRecord } from './publisher.js';

const reasonBody = z.object({ reason: operatorReason.optional() }).strict();
const withdrawBody = z.object({ reason: operatorReason.optional(), rollback: z.boolean().default(false) }).strict();

/** Follows what a withdrawal with rollback leaves for later (src/server/control-follow-up.ts). */
export interface WithdrawalFollower {
  follow(w: { artifact: Artifact; version: string; caller: string }): void;
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
    const body = parseBody(reasonBody, req.body ?? {});
    mustBeLive(r, 'resumed');
    const hold = ctx.engine.state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.hold;
    if (hold?.kind === 'withdrawn') throw conflict('VersionWithdrawn', `Version ${r.toVersion} was withdrawn; its rollouts cannot resume.`);
    const stoppedSets = [...r.units.values()].some((u) => u.status === 'stopped' || u.status === 'held');
    if (!hold && r.status !== 'stopped' && !stoppedSets) throw conflict('RolloutNotPaused', `Rollout ${r.id} is ${r.status} and nothing holds it back; there is nothing to resume.`);
    const done = ctx.engine.resumeRolloutByOperator(r.id, caller, body.reason);
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
    const reason = body.reason ?? 'no reason given';
    // The stop is kept until the resume, even when it holds nothing now: the next rollout to start is held (control-follow-up.ts).
    const { paused, stop } = ctx.docs.atomically(() => ({
      paused: ctx.engine.pauseAllRollouts(reason, caller),
      stop: beginFleetStop(ctx.docs, reason, caller, ctx.runtime.clock.now()),
    }));
    ctx.runtime.kick();
    // A rollout held by its own pause or by the evidence is not the stop's: `fleet resume` leaves it held, so it is listed apart.
    const holdOf = (r: RolloutState) => ctx.engine.state.releases.get(releaseKey(r.artifactKey, r.toVersion))?.hold ?? null;
    const heldOtherwise = paused.filter((r) => !isFleetStopHold(holdOf(r)));
    return {
      paused: paused.filter((r) => isFleetStopHold(holdOf(r))).map((r) => r.id),
      heldOtherwise: heldOtherwise.map((r) => ({ id: r.id, kind: holdOf(r)!.kind, reason: holdOf(r)!.reason })),
      fleetStop: { reason: stop.reason, caller: stop.caller, since: stop.since },
    };
  });

  app.post('/phasewise/fleet/resume', async (req) => {
    const caller = writer(req, 'Phasewise/fleet/resume/action');
    const body = parseBody(reasonBody, req.body ?? {});
    // `ended` says whether a stop was in effect: `resumed: []` alone reads the same for a stop that held nothing and for no stop.
    const ended = fleetStopView(ctx.docs);
    const resumed = ctx.docs.atomically(() => {
      const done = ctx.engine.resumeAllRollouts(caller, body.reason);
      endFleetStop(ctx.docs);
      return done;
    });
    ctx.runtime.kick();
    return { resumed: resumed.map((r) => r.id), ended };
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
    return withdraw(ctx, follower, { kind: 'extension', publisher: t.publisher, type: t.type }, version, body, caller);
  });

  // An OS image version: `latest` never stands for it again; with rollback, machines re-imaged to theirs before it.
  app.post('/phasewise/images/publishers/:publisher/offers/:offer/skus/:sku/versions/:version/withdraw', async (req) => {
    const caller = writer(req, 'Phasewise/releases/withdraw/action');
    const p = req.params as { publisher: string; offer: string; sku: string; version: string };
    const body = parseBody(withdrawBody, req.body ?? {});
    const image = ctx.images.catalog.platformImage(p.publisher, p.offer, p.sku);
    const ref: ImageRef | null = image ? { kind: 'platform', publisher: image.publisher, offer: image.offer, sku: image.sku, version: p.version } : null;
    const name = `${p.publisher}:${p.offer}:${p.sku}`.slice(0, 400);
    const version = publishedImageVersion(ctx, ref, p.version, name);
    return withdraw(ctx, follower, { kind: 'osImage', publisher: image!.publisher, offer: image!.offer, sku: image!.sku }, version, body, caller);
  });

  app.post('/phasewise/subscriptions/:sub/resourceGroups/:rg/galleries/:gallery/images/:image/versions/:version/withdraw', async (req) => {
    const caller = writer(req, 'Phasewise/releases/withdraw/action');
    const p = req.params as { sub: string; rg: string; gallery: string; image: string; version: string };
    const body = parseBody(withdrawBody, req.body ?? {});
    const g = ctx.images.catalog.gallery(p.sub, p.rg, p.gallery);
    const d = g?.images.find((x) => x.name.toLowerCase() === p.image.toLowerCase());
    const ref: ImageRef | null = g && d ? { kind: 'gallery', subscription: g.subscription, resourceGroup: g.resourceGroup, gallery: g.name, image: d.name, version: p.version } : null;
    const version = publishedImageVersion(ctx, ref, p.version, `${p.gallery}/${p.image}`.slice(0, 400));
    const artifact: Artifact = { kind: 'osImage', publisher: `gallery:${g!.subscription}/${g!.resourceGroup}/${g!.name}`, offer: d!.name, sku: '' };
    return withdraw(ctx, follower, artifact, version, body, caller);
  });
}

/** The catalog's spelling of a published image version; 404 when the image or the version is not there, 409 when withdrawn. */
function publishedImageVersion(ctx: ArmContext, ref: ImageRef | null, version: string, name: string): string {
  const record = ref ? ctx.images.catalog.publishedVersion(ref) : undefined;
  if (!ref || !record) throw notFound('VersionNotFound', `Version '${version.slice(0, 100)}' of image '${name}' is not published.`);
  if (ctx.images.catalog.isWithdrawn(ref, record.version)) throw conflict('VersionAlreadyWithdrawn', `Version ${record.version} of image ${name} is withdrawn already.`);
  return record.version;
}

function withdraw(ctx: ArmContext, follower: WithdrawalFollower | null, artifact: Artifact, version: string, body: { reason?: string | undefined; rollback: boolean }, caller: string) {
  const result = ctx.engine.withdrawVersion(artifact, version, { rollback: body.rollback, reason: body.reason ?? 'no reason given', caller });
  if (body.rollback && follower) follower.follow({ artifact, version, caller });
  ctx.runtime.kick();
  return {
    artifact, version, withdrawn: true, rollback: body.rollback, release: `${artifactKey(artifact)}@${version}`,
    cancelled: result.cancelled,
    rollbackRollouts: result.rollouts.map((r) => r.id),
    machinesOnVersion: result.onVersion,
    machinesInFlight: result.inFlight,
    machinesPlanned: result.planned,
    machinesWithoutEarlierVersion: result.noEarlierVersion.length,
  };
}
