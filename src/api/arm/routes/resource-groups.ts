/** Subscriptions and resource groups: enough for the managed resources to live in them. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ArmContext } from '../context.js';
import { page, writer } from '../context.js';
import { badRequest, conflict, notFound } from '../errors.js';
import { normalizeLocation, sameLocation } from '../locations.js';
import { keyOf, resourceGroupId, resourceGroupNameProblem } from '../ids.js';
import { locationName, parseBody, tags } from '../validation.js';

const groupBody = z.object({ location: locationName, tags: tags.optional(), properties: z.object({}).passthrough().optional(), managedBy: z.string().optional() }).passthrough();

interface GroupDoc { location: string; tags: Record<string, string> }

export function registerResourceGroupRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const mustSub = (sub: string) => {
    if (!ctx.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
  };
  /** `id` as created (a request in other casing answers the stored one: ids are case-insensitive). */
  const view = (id: string, d: GroupDoc | undefined) => ({
    id, name: id.slice(id.lastIndexOf('/') + 1), type: 'Microsoft.Resources/resourceGroups',
    location: normalizeLocation(d?.location ?? 'global'), tags: d?.tags ?? {}, properties: { provisioningState: 'Succeeded' },
  });

  app.get('/subscriptions/:sub', async (req) => {
    const { sub } = req.params as { sub: string };
    mustSub(sub);
    return { id: `/subscriptions/${sub}`, subscriptionId: sub, displayName: sub, state: 'Enabled' };
  });

  app.get('/subscriptions/:sub/resourcegroups/:rg', async (req, reply) => {
    const { sub, rg } = req.params as { sub: string; rg: string };
    mustSub(sub);
    const doc = ctx.docs.get<GroupDoc>(resourceGroupId(sub, rg));
    if (!doc && !ctx.index.hasGroup(sub, rg)) throw notFound('ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
    // checkExistence (HEAD, served by this route): ARM answers 204 or 404, and the SDKs' spec accepts nothing else.
    if (req.method === 'HEAD') return reply.status(204).send();
    return view(doc?.id ?? resourceGroupId(sub, rg), doc?.body);
  });

  app.put('/subscriptions/:sub/resourcegroups/:rg', async (req, reply) => {
    const { sub, rg } = req.params as { sub: string; rg: string };
    writer(req, 'Microsoft.Resources/subscriptions/resourceGroups/write');
    mustSub(sub);
    const problem = resourceGroupNameProblem(rg);
    if (problem) throw badRequest('InvalidResourceGroup', problem);
    const body = parseBody(groupBody, req.body);
    const id = resourceGroupId(sub, rg);
    const existing = ctx.docs.get<GroupDoc>(id);
    const known = existing !== undefined || ctx.index.hasGroup(sub, rg);
    if (existing && !sameLocation(existing.body.location, body.location)) {
      throw conflict('InvalidResourceGroupLocation', `Resource group '${rg}' already exists in location '${existing.body.location}'.`);
    }
    // In ARM's short form (`East US 2` is `eastus2`): kept as sent, it was answered so, and a replace in another spelling rewrote it.
    const stored: GroupDoc = { location: normalizeLocation(body.location), tags: body.tags ?? {} };
    ctx.docs.put(existing?.id ?? id, `/subscriptions/${sub}`, 'resourceGroup', stored);
    ctx.index.addGroup(sub, rg);
    return reply.status(known ? 200 : 201).send(view(existing?.id ?? id, stored));
  });

  app.get('/subscriptions/:sub/resourcegroups', async (req) => {
    const { sub } = req.params as { sub: string };
    mustSub(sub);
    // The groups created here, and those of the fleet's machines and sets that were never created here (a
    // scenario's): each answers a GET, so each is listed.
    const docs: Array<{ id: string; body: GroupDoc | undefined }> = ctx.docs.children<GroupDoc>(`/subscriptions/${sub}`, 'resourceGroup');
    const listed = new Set(docs.map((d) => keyOf(d.id)));
    for (const [key, g] of ctx.index.groupsOf(sub)) if (!listed.has(key)) docs.push({ id: resourceGroupId(g.subscription, g.resourceGroup), body: undefined });
    return page(ctx, req, docs, (d) => d.id.slice(d.id.lastIndexOf('/') + 1), (d) => view(d.id, d.body));
  });
}
