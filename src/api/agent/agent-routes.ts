/**
 * The agent channel (paths and types in src/protocol/agent-wire.ts): goal state with ETag and long
 * poll, status reports (bounded, validated, answered after a group commit), and scheduled-event
 * approval (R83). Every route authenticates the agent by its client certificate.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { StatusReport } from '../../protocol/agent-wire.js';
import { LIMITS, LONG_POLL_MAX_SECONDS } from '../../protocol/agent-wire.js';
import type { ArmContext } from '../arm/context.js';
import { ArmError, badRequest, invalidParameter } from '../arm/errors.js';
import { parseBody } from '../arm/validation.js';
import { agentServices, authenticateAgent } from './mtls.js';
import { scheduledEventsSchema, statusReportSchema } from './status-schema.js';

type P = { agentId: string };

/** The raw JSON text of an agent request, kept by the content parser (stored as sent, not re-serialised). */
export const RAW_BODY = Symbol('rawBody');

export function registerAgentRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get('/v1/agents/:agentId/goalstate', async (req, reply) => {
    const { agentId } = req.params as P;
    authenticateAgent(ctx, req, agentId);
    const svc = agentServices(ctx);
    const wait = waitSeconds(req);
    let gs = svc.goalStates.current(agentId)!;
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && wait > 0 && matches(inm, gs.etag)) {
      // The response's 'close' fires when the client goes away before the answer (the request's does not).
      const gone = new AbortController();
      const onClose = () => gone.abort();
      reply.raw.once('close', onClose);
      await svc.goalStates.wait(agentId, gs.etag, wait * 1000, gone.signal);
      reply.raw.off('close', onClose);
      gs = svc.goalStates.current(agentId)!;
    }
    reply.header('etag', gs.etag).header('cache-control', 'no-cache');
    if (inm !== undefined && matches(inm, gs.etag)) return reply.status(304).send();
    return reply.status(200).type('application/json').send(gs.body);
  });

  app.put('/v1/agents/:agentId/status', { bodyLimit: LIMITS.statusReportBytes }, async (req, reply) => {
    const { agentId } = req.params as P;
    authenticateAgent(ctx, req, agentId);
    const svc = agentServices(ctx);
    const raw = (req as unknown as Record<symbol, string | undefined>)[RAW_BODY];
    if (raw === undefined) throw badRequest('InvalidRequestContent', 'The status report must be a JSON body (Content-Type: application/json).');
    const report = parseBody(statusReportSchema, req.body) as StatusReport;
    try {
      await svc.status.write(agentId, report, raw, svc.wallNow());
    } catch (err) {
      req.log.error({ err }, 'status commit failed');
      reply.header('retry-after', '5');
      throw new ArmError(503, 'ServiceUnavailable', 'The status report could not be committed; send it again later.');
    }
    return reply.status(204).send();
  });

  app.post('/v1/agents/:agentId/scheduledevents', async (req, reply) => {
    const { agentId } = req.params as P;
    const agent = authenticateAgent(ctx, req, agentId);
    const svc = agentServices(ctx);
    const body = parseBody(scheduledEventsSchema, req.body);
    const known = new Set(svc.goalStates.current(agentId)!.events.map((e) => e.EventId.toLowerCase()));
    body.StartRequests.forEach((s, i) => {
      if (!known.has(s.EventId.toLowerCase())) throw invalidParameter(`StartRequests[${i}].EventId`, `'${s.EventId}' is not a scheduled event of this machine (it may have started already).`);
    });
    // The same approval as ARM's approveRollingUpgrade; the caller recorded is the machine.
    ctx.engine.approveReimages([agent.machineId], agent.resourceId);
    ctx.runtime.kick();
    return reply.status(204).send();
  });
}

function waitSeconds(req: FastifyRequest): number {
  const v = (req.query as Record<string, unknown>).wait;
  if (v === undefined) return 0;
  const text = String(v);
  if (!/^\d{1,4}$/.test(text) || Number(text) > LONG_POLL_MAX_SECONDS) throw invalidParameter('wait', `'${text}' is not a whole number of seconds from 0 to ${LONG_POLL_MAX_SECONDS}.`);
  return Number(text);
}

/** If-None-Match: one ETag, a list, or `*`; weak ones compare by their value. */
function matches(header: string, etag: string): boolean {
  if (header === etag) return true;
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v === etag || v === `W/${etag}`;
  });
}
