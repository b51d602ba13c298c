/**
 * The agent channel (paths and types in src/protocol/agent-wire.ts) as Fastify routes: goal state with
 * ETag and long poll, status reports (bounded, validated, answered after a group commit), and
 * scheduled-event approval (R83). Every route authenticates the agent by its client certificate. The two
 * hot requests are usually answered before Fastify by the lean handler (agent-fast-path.ts); these routes
 * serve the rest (and those two when the URL takes a form the lean handler leaves to the router).
 */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../arm/context.js';
import { queryOf } from '../arm/context.js';
import { ArmError, badRequest, invalidParameter } from '../arm/errors.js';
import { parseBody } from '../arm/validation.js';
import { checkStatusReport, commitStatusReport, goalStateAfterWait, parseWait, STATUS_RETRY_AFTER_SECONDS } from './agent-channel.js';
import { agentServices, authenticateAgent, RAW_BODY } from './mtls.js';
import { scheduledEventsSchema } from './status-schema.js';
import { AGENT_SEAT_HEADER, LIMITS } from '../../protocol/agent-wire.js';

type P = { agentId: string };

export { RAW_BODY };

export function registerAgentRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.get('/v1/agents/:agentId/goalstate', async (req, reply) => {
    const { agentId } = req.params as P;
    authenticateAgent(ctx, req, agentId);
    const svc = agentServices(ctx);
    // Names in any casing (`?Wait=30`), as ARM reads query parameters (queryOf).
    const wait = parseWait(queryOf(req).wait);
    // The response's 'close' fires when the client goes away before the answer (the request's does not).
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    const answer = await goalStateAfterWait(svc, agentId, req.headers['if-none-match'], wait, gone.signal);
    reply.raw.off('close', onClose);
    reply.header('etag', answer.etag).header('cache-control', 'no-cache');
    if (answer.status === 304) return reply.status(304).send();
    return reply.status(200).type('application/json').send(answer.body);
  });

  app.put('/v1/agents/:agentId/status', { bodyLimit: LIMITS.statusReportBytes }, async (req, reply) => {
    const { agentId } = req.params as P;
    authenticateAgent(ctx, req, agentId);
    const svc = agentServices(ctx);
    const raw = (req as unknown as Record<symbol, string | undefined>)[RAW_BODY];
    if (raw === undefined) throw badRequest('InvalidRequestContent', 'The status report must be a JSON body (Content-Type: application/json).');
    const report = checkStatusReport(req.body);
    try {
      await commitStatusReport(svc, agentId, report, raw, (err) => req.log.error({ err }, 'status commit failed'));
    } catch (err) {
      if (err instanceof ArmError && err.status === 503) reply.header('retry-after', String(STATUS_RETRY_AFTER_SECONDS));
      throw err;
    }
    return reply.status(204).send();
  });

  // The agent is stopping: its copy of the identity lets go (agent-instances.ts), so after a reboot the
  // machine's next boot is not refused for the lease. Authenticated like any agent request (the seat checked).
  app.delete('/v1/agents/:agentId/seat', async (req, reply) => {
    const { agentId } = req.params as P;
    authenticateAgent(ctx, req, agentId);
    agentServices(ctx).instances?.release(agentId, req.headers[AGENT_SEAT_HEADER]);
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
    const ids = body.StartRequests.map((s) => s.EventId);
    const reboots = svc.goalStates.approveReboots(agentId, ids);
    // Re-images: the same approval as ARM's approveRollingUpgrade; platform patch installations start now.
    // The caller recorded is the machine.
    if (reboots < ids.length) ctx.engine.approveMachineNotices([agent.machineId], agent.resourceId);
    ctx.runtime.kick();
    return reply.status(204).send();
  });
}
