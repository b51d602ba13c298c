/**
 * Operators' view of agents (Phasewise's own API, bearer tokens):
 *   PUT    /phasewise/enrollmentTokens/{name}  (contributor) {subscriptionId, resourceGroup, location, expiresInHours?}
 *          → 201 with the secret `token`, shown once; stored as its SHA-256 only
 *   GET    /phasewise/enrollmentTokens          names, scopes and expiries (never secrets)
 *   DELETE /phasewise/enrollmentTokens/{name}  (contributor)
 *   GET    /phasewise/agents                    enrolled agents, their machines and connection status
 *   DELETE /phasewise/agents/{agentId}          (contributor) revokes the credential; the machine stays
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ArmContext } from '../arm/context.js';
import { writer } from '../arm/context.js';
import { invalidParameter, notFound } from '../arm/errors.js';
import { locationName, parseBody, resourceGroupName } from '../arm/validation.js';
import type { DuplicateSighting } from './agent-instances.js';
import { agentServices } from './mtls.js';

const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const tokenBody = z.object({
  subscriptionId: z.string().min(1).max(128),
  resourceGroup: resourceGroupName,
  location: locationName,
  expiresInHours: z.number().int().min(1).max(8760).default(24),
}).strict();

export function registerAgentAdminRoutes(app: FastifyInstance, ctx: ArmContext): void {
  app.put('/phasewise/enrollmentTokens/:name', async (req, reply) => {
    const caller = writer(req, 'Phasewise/enrollmentTokens/write');
    const svc = agentServices(ctx);
    const { name } = req.params as { name: string };
    if (!TOKEN_NAME.test(name)) throw invalidParameter('name', `'${name}' is not a valid token name (letters, digits, '.', '-' and '_', up to 64).`);
    const body = parseBody(tokenBody, req.body);
    // A serve with an empty fleet (an agent-only lab) knows no subscription until it is configured: say where.
    if (!ctx.index.hasSubscription(body.subscriptionId)) {
      throw notFound('SubscriptionNotFound', `The subscription '${body.subscriptionId}' could not be found: a token's subscription is one of the fleet's `
        + 'or one listed in serve\'s configuration (`subscriptions`, or $PHASEWISE_SUBSCRIPTIONS).');
    }
    const now = svc.wallNow();
    const expiresAtMs = now + body.expiresInHours * 3_600_000;
    const created = svc.tokens.create(name, body, expiresAtMs, caller, now);
    return reply.status(201).send({
      name: created.name, token: created.token, subscriptionId: body.subscriptionId, resourceGroup: body.resourceGroup, location: body.location,
      expiresAt: new Date(expiresAtMs).toISOString(),
    });
  });
  app.get('/phasewise/enrollmentTokens', async () => ({
    value: agentServices(ctx).tokens.list().map((t) => ({
      name: t.name, subscriptionId: t.subscriptionId, resourceGroup: t.resourceGroup, location: t.location,
      expiresAt: new Date(t.expiresAtMs).toISOString(), createdBy: t.createdBy,
    })),
  }));
  app.delete('/phasewise/enrollmentTokens/:name', async (req, reply) => {
    writer(req, 'Phasewise/enrollmentTokens/delete');
    agentServices(ctx).tokens.delete((req.params as { name: string }).name);
    return reply.status(204).send();
  });

  app.get('/phasewise/agents', async () => {
    const svc = agentServices(ctx);
    const d = svc.driver;
    return {
      value: d.agents().map((a) => {
        const c = d.connection(a.machineId);
        const iso = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString() : null);
        return {
          agentId: a.agentId, resourceId: a.resourceId, status: c?.status ?? 'Disconnected', lastStatusChange: iso(c?.lastStatusChangeMs),
          lastReport: iso(c?.lastReportMs), enrolledAt: iso(a.enrolledAtMs), ...a.info,
          ...duplicateView(svc.instances?.duplicate(a.agentId) ?? null, iso),
        };
      }),
    };
  });
  app.delete('/phasewise/agents/:agentId', async (req, reply) => {
    writer(req, 'Phasewise/agents/delete');
    const { agentId } = req.params as { agentId: string };
    const d = agentServices(ctx).driver;
    if (!d.agent(agentId)) return reply.status(204).send();
    d.revoke(agentId);
    return reply.status(200).send();
  });
}

/** A second machine using the agent's identity, while it is being refused (agent-instances.ts). */
function duplicateView(s: DuplicateSighting | null, iso: (ms: number) => string | null): object {
  if (!s) return {};
  return { duplicateInstance: { seat: s.seat, holderSeat: s.holderSeat, firstRefused: iso(s.firstRefusedMs), lastRefused: iso(s.lastRefusedMs), refusedRequests: s.refused } };
}
