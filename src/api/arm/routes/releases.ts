/**
 * A release held fleet-wide (docs/engine.md, "A release judged fleet-wide, early"): read its evidence
 * and hold, hold it, resume it. Changes need the `contributor` role; reads any role.
 *
 *   GET  /phasewise/releases/{publisher}/{type}/versions/{version}
 *   POST /phasewise/releases/{publisher}/{type}/versions/{version}/hold     body { "reason": "…" }
 *   POST /phasewise/releases/{publisher}/{type}/versions/{version}/resume   body { "reason"? }
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isoOf } from '../../../engine/clock.js';
import type { ReleaseState } from '../../../engine/state.js';
import { FLEET_STOP } from '../../../engine/rollouts/operator-controls.js';
import type { Artifact } from '../../../model/artifact.js';
import type { ArmContext } from '../context.js';
import { writer } from '../context.js';
import { conflict, notFound } from '../errors.js';
import { operatorReason, parseBody } from '../validation.js';

const PATH = '/phasewise/releases/:publisher/:type/versions/:version';

// The fleet-wide stop's holds are known by this start of their reason: a hand-made hold worded so would be lifted by `fleet resume`.
const holdBody = z.object({
  reason: operatorReason.refine((r) => !r.startsWith(FLEET_STOP), `may not start with '${FLEET_STOP}': the fleet-wide stop's holds are named so, and fleet resume lifts them`),
}).strict();
/** A resumption's reason is optional; it is logged as a hold's is. */
const resumeBody = z.object({ reason: operatorReason.optional() }).strict();

interface Params { publisher: string; type: string; version: string }

/** The release the path names: its type and version must be in the catalog (404 otherwise). */
function releaseOf(ctx: ArmContext, req: FastifyRequest): { artifact: Artifact; version: string } {
  const { publisher, type, version } = req.params as Params;
  const t = ctx.engine.state.catalog.getType(publisher, type);
  const v = t?.versions.find((x) => x.version === version);
  if (!t || !v) throw notFound('ReleaseNotFound', `Version '${version}' of '${publisher}.${type}' is not published.`);
  return { artifact: { kind: 'extension', publisher: t.publisher, type: t.type }, version: v.version };
}

function record(artifact: Artifact, version: string, rel: ReleaseState | undefined): Record<string, unknown> {
  const hold = rel?.hold ?? null;
  return {
    artifact, version, held: hold !== null,
    hold: hold ? { kind: hold.kind, reason: hold.reason, caller: hold.caller, since: isoOf(hold.sinceMs), evidence: hold.evidence } : null,
    evidence: {
      successes: rel?.successes ?? 0, failures: rel?.failures ?? 0, statistic: Math.round((rel?.llr ?? 0) * 100) / 100,
      quarantined: rel?.quarantinedCount ?? 0,
    },
  };
}

export function registerReleaseRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get(PATH, async (req) => {
    const { artifact, version } = releaseOf(ctx, req);
    return record(artifact, version, ctx.engine.release(artifact, version));
  });

  app.post(`${PATH}/hold`, async (req) => {
    const caller = writer(req, 'Phasewise/releases/hold/action');
    const { artifact, version } = releaseOf(ctx, req);
    const body = parseBody(holdBody, req.body ?? {});
    if (ctx.engine.release(artifact, version)?.hold) throw conflict('ReleaseAlreadyHeld', `Release ${version} is already held; resume it first.`);
    const rel = ctx.engine.holdRelease(artifact, version, body.reason, caller);
    ctx.runtime.kick();
    return record(artifact, version, rel);
  });

  app.post(`${PATH}/resume`, async (req) => {
    const caller = writer(req, 'Phasewise/releases/resume/action');
    const { artifact, version } = releaseOf(ctx, req);
    const body = parseBody(resumeBody, req.body ?? {});
    if (!ctx.engine.release(artifact, version)?.hold) throw conflict('ReleaseNotHeld', `Release ${version} is not held; only a held release can be resumed.`);
    const rel = ctx.engine.resumeRelease(artifact, version, caller, body.reason);
    ctx.runtime.kick();
    return record(artifact, version, rel);
  });
}
