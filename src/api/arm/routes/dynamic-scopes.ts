/**
 * Dynamic-scope configuration assignments (issue 16): an InGuestPatch configuration assigned to a
 * subscription or a resource group, with filters on resource type, resource group, OS, location and
 * tags. The machines are chosen when a run starts (src/api/arm/patch-schedules.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { DynamicScope } from '../../../model/patch-scope.js';
import type { ArmContext } from '../context.js';
import { mustHaveGroup, writer } from '../context.js';
import { badRequest, invalidParameter, notFound } from '../errors.js';
import { RESOURCE_NAME } from '../ids.js';
import type { DynamicAssignmentDoc } from '../patch-schedules.js';
import { locationName, parseBody } from '../validation.js';

const list = (item: z.ZodType<string>) => z.array(item).max(50, 'at most 50 entries').optional();
const filterSchema = z.object({
  resourceTypes: list(z.string().regex(/^(Microsoft\.Compute\/virtualMachines|Microsoft\.HybridCompute\/machines)$/i,
    'expected Microsoft.Compute/virtualMachines or Microsoft.HybridCompute/machines')),
  resourceGroups: list(z.string().min(1).max(90)),
  osTypes: list(z.string().regex(/^(Linux|Windows)$/i, 'expected Linux or Windows')),
  locations: list(locationName),
  tagSettings: z.object({
    tags: z.record(z.string().min(1).max(512), z.array(z.string().max(256)).max(50)).refine((t) => Object.keys(t).length <= 50, 'at most 50 tags').optional(),
    filterOperator: z.enum(['All', 'Any']).optional(),
  }).strict().optional(),
}).strict();
const body = z.object({
  location: locationName.optional(),
  properties: z.object({ maintenanceConfigurationId: z.string().min(1).max(1024), resourceId: z.string().optional(), filter: filterSchema.optional() }).strict(),
});
const CONFIG_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Maintenance\/maintenanceConfigurations\/([^/]+)\/?$/i;

type P = { sub: string; rg?: string; name: string };

export function registerDynamicScopeRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const idOf = (p: P) => `/subscriptions/${p.sub}${p.rg ? `/resourceGroups/${p.rg}` : ''}/providers/Microsoft.Maintenance/configurationAssignments/${p.name}`;
  const scopeOf = (req: FastifyRequest) => {
    const p = req.params as P;
    if (p.rg) mustHaveGroup(ctx, p.sub, p.rg);
    else if (!ctx.index.hasSubscription(p.sub)) throw notFound('SubscriptionNotFound', `The subscription '${p.sub}' could not be found.`);
    return p;
  };
  const view = (id: string, d: DynamicAssignmentDoc & { location: string }) => {
    const f = d.scope.filter;
    return {
      id, name: id.slice(id.lastIndexOf('/') + 1), type: 'Microsoft.Maintenance/configurationAssignments', location: d.location,
      properties: {
        maintenanceConfigurationId: d.maintenanceConfigurationId,
        resourceId: `/subscriptions/${d.scope.subscription}${d.scope.resourceGroup ? `/resourceGroups/${d.scope.resourceGroup}` : ''}`,
        filter: { resourceTypes: f.resourceTypes, resourceGroups: f.resourceGroups, osTypes: f.osTypes, locations: f.locations, tagSettings: { tags: f.tags, filterOperator: f.filterOperator } },
      },
    };
  };

  for (const base of ['/subscriptions/:sub', '/subscriptions/:sub/resourceGroups/:rg']) {
    const path = `${base}/providers/Microsoft.Maintenance/configurationAssignments`;
    app.put(`${path}/:name`, async (req, reply) => {
      writer(req, 'Microsoft.Maintenance/configurationAssignments/write');
      const p = scopeOf(req);
      if (!RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid configuration assignment name.`, 'configurationAssignmentName');
      const b = parseBody(body, req.body);
      const cfgId = b.properties.maintenanceConfigurationId;
      const cfg = CONFIG_ID.test(cfgId) ? ctx.docs.get<{ location: string; properties: { maintenanceScope: string; installPatches?: Record<string, unknown> } }>(cfgId) : undefined;
      if (!cfg || cfg.kind !== 'maintenanceConfiguration') throw invalidParameter('properties.maintenanceConfigurationId', `maintenance configuration '${cfgId.slice(0, 300)}' does not exist.`);
      if (cfg.body.properties.maintenanceScope !== 'InGuestPatch') {
        throw invalidParameter('properties.maintenanceConfigurationId',
          `only InGuestPatch configurations can be assigned by dynamic scope (this one's scope is ${cfg.body.properties.maintenanceScope}).`);
      }
      const f = b.properties.filter ?? {};
      const osTypes = (f.osTypes ?? []).map((o) => (o.toLowerCase() === 'windows' ? 'Windows' : 'Linux'));
      for (const [i, os] of osTypes.entries()) {
        const key = os === 'Windows' ? 'windowsParameters' : 'linuxParameters';
        if (!cfg.body.properties.installPatches?.[key]) throw invalidParameter(`properties.filter.osTypes[${i}]`, `the configuration has no ${key}: it cannot patch ${os} machines.`);
      }
      const scope: DynamicScope = {
        subscription: p.sub, resourceGroup: p.rg ?? null,
        filter: {
          resourceTypes: f.resourceTypes ?? [], resourceGroups: f.resourceGroups ?? [], osTypes, locations: f.locations ?? [],
          tags: f.tagSettings?.tags ?? {}, filterOperator: f.tagSettings?.filterOperator ?? 'Any',
        },
      };
      const id = idOf(p);
      const existing = ctx.docs.get(id);
      const doc = { location: b.location ?? cfg.body.location, maintenanceConfigurationId: cfg.id, scope };
      ctx.docs.put(existing?.id ?? id, p.rg ? `/subscriptions/${p.sub}/resourceGroups/${p.rg}` : `/subscriptions/${p.sub}`, 'dynamicScopeAssignment', doc);
      return reply.status(existing ? 200 : 201).send(view(existing?.id ?? id, doc));
    });
    app.get(`${path}/:name`, async (req) => {
      const p = scopeOf(req);
      const d = ctx.docs.get<DynamicAssignmentDoc & { location: string }>(idOf(p));
      if (!d || d.kind !== 'dynamicScopeAssignment') throw notFound('ResourceNotFound', `The configuration assignment '${p.name}' was not found.`);
      return view(d.id, d.body);
    });
    app.delete(`${path}/:name`, async (req, reply) => {
      writer(req, 'Microsoft.Maintenance/configurationAssignments/delete');
      const p = scopeOf(req);
      const d = ctx.docs.get<DynamicAssignmentDoc & { location: string }>(idOf(p));
      if (!d || d.kind !== 'dynamicScopeAssignment') return reply.status(204).send();
      ctx.docs.delete(d.id);
      return reply.status(200).send(view(d.id, d.body));
    });
  }
}
