/** Maintenance configurations over ARM: create or replace, patch, read, list (group and subscription), delete. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DEFAULT_EXPIRATION } from '../../../../schedule/window.js';
import type { ArmContext } from '../../context.js';
import { mustHaveGroup, page, resourceMissing, writer } from '../../context.js';
import { badRequest, conflict, notFound } from '../../errors.js';
import { normalizeLocation, sameLocation } from '../../locations.js';
import { RESOURCE_NAME, keyOf, providerId, resourceGroupId } from '../../ids.js';
import type { DynamicAssignmentDoc } from '../../patch-schedules.js';
import { parseBody } from '../../validation.js';
import { CONFIG_TYPE, configPatch, engineConfigOf, validateConfiguration } from './configuration.js';
import type { ConfigDoc } from './configuration.js';
import { assignmentProblem, dynamicScopeProblem } from './compatibility.js';
import { syncAssignments } from './reconcile.js';
import type { AssignmentDoc } from './reconcile.js';

export function registerConfigurationRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const provider = '/providers/Microsoft.Maintenance/maintenanceConfigurations';
  const base = `/subscriptions/:sub/resourceGroups/:rg${provider}`;

  const configView = (id: string, d: ConfigDoc) => {
    const p = d.properties;
    return {
      id, name: id.slice(id.lastIndexOf('/') + 1), type: CONFIG_TYPE, location: normalizeLocation(d.location), tags: d.tags ?? {},
      properties: {
        namespace: p.namespace ?? 'Microsoft.Maintenance',
        extensionProperties: p.extensionProperties ?? {},
        maintenanceScope: p.maintenanceScope,
        ...(p.maintenanceWindow ? { maintenanceWindow: { ...p.maintenanceWindow, expirationDateTime: p.maintenanceWindow.expirationDateTime || DEFAULT_EXPIRATION } } : {}),
        visibility: p.visibility ?? 'Custom',
        ...(p.installPatches ? { installPatches: p.installPatches } : {}),
      },
    };
  };

  const configOf = (req: FastifyRequest) => {
    const p = req.params as { sub: string; rg: string; name: string };
    const id = providerId(p.sub, p.rg, 'Microsoft.Maintenance', 'maintenanceConfigurations', p.name);
    const doc = ctx.docs.get<ConfigDoc>(id);
    return { p, id, doc: doc?.kind === 'maintenanceConfiguration' ? doc : undefined };
  };

  /** Assignments that point at a configuration, whose resource still exists (stale ones are dropped). */
  const assignmentsOf = (configId: string) => {
    const out: string[] = [];
    for (const a of ctx.docs.ofKind<AssignmentDoc>('configurationAssignment')) {
      if (keyOf(a.body.maintenanceConfigurationId) !== keyOf(configId)) continue;
      if (ctx.index.machine(a.body.resourceId) || ctx.index.scaleSet(a.body.resourceId)) out.push(a.id);
      else ctx.docs.delete(a.id);
    }
    return out;
  };

  /**
   * A configuration that changes must still suit every resource and dynamic scope it is assigned to, as
   * the assignment routes would check them now (409, nothing changed): otherwise a change of scope or of
   * installPatches would leave assignments those routes refuse.
   */
  const mustSuitAssignments = (configId: string, cfg: ConfigDoc) => {
    const problems: string[] = [];
    for (const a of ctx.docs.ofKind<AssignmentDoc>('configurationAssignment')) {
      if (keyOf(a.body.maintenanceConfigurationId) !== keyOf(configId)) continue;
      const m = ctx.index.machine(a.body.resourceId);
      const resource = m ? { kind: m.kind === 'arc' ? 'arc' as const : 'vm' as const, os: m.os } : ctx.index.scaleSet(a.body.resourceId) ? { kind: 'scaleSet' as const } : null;
      const problem = resource && assignmentProblem(cfg.properties, resource);
      if (problem) problems.push(`${a.id}: ${problem}`);
    }
    for (const d of ctx.docs.ofKind<DynamicAssignmentDoc>('dynamicScopeAssignment')) {
      if (keyOf(d.body.maintenanceConfigurationId) !== keyOf(configId)) continue;
      const problem = dynamicScopeProblem(cfg.properties, d.body.scope.filter.osTypes);
      if (problem) problems.push(`${d.id}: ${problem}`);
    }
    if (problems.length > 0) {
      const shown = problems.slice(0, 3).join('; ') + (problems.length > 3 ? `; and ${problems.length - 3} more` : '');
      throw conflict('MaintenanceConfigurationInUse', `The change would not suit the configuration's assignments; change or delete them first: ${shown}.`);
    }
  };

  const write = (req: FastifyRequest, caller: string, id: string, body: ConfigDoc, existing: { id: string; body: ConfigDoc } | undefined) => {
    const p = req.params as { sub: string; rg: string };
    if (existing && !sameLocation(existing.body.location, body.location)) {
      throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the configuration is in ${existing.body.location}).`);
    }
    // In ARM's short form, as every resource answers it (`East US 2` is `eastus2`).
    const stored: ConfigDoc = { location: normalizeLocation(body.location), tags: body.tags ?? {}, properties: body.properties };
    const docId = existing?.id ?? id;
    if (existing) mustSuitAssignments(docId, stored);
    const spec = engineConfigOf(docId, stored);
    ctx.docs.atomically(() => {
      ctx.docs.put(docId, resourceGroupId(p.sub, p.rg), 'maintenanceConfiguration', stored);
      if (spec) {
        ctx.engine.putMaintenanceConfiguration(spec, caller);
        syncAssignments(ctx, docId, caller); // a configuration that just gained a window confines what it is assigned to
      } else ctx.engine.deleteMaintenanceConfiguration(keyOf(docId), caller);
    });
    return configView(docId, stored);
  };

  app.put(`${base}/:name`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Maintenance/maintenanceConfigurations/write');
    const { p, id, doc } = configOf(req);
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!RESOURCE_NAME.test(p.name)) {
      throw badRequest('InvalidParameter', `'${p.name}' is not a valid maintenance configuration name (letters, digits, '-', '_' and '.', up to 64 characters).`, 'resourceName');
    }
    const body = validateConfiguration(req.body);
    return reply.status(doc ? 200 : 201).send(write(req, caller, id, body, doc));
  });

  app.patch(`${base}/:name`, async (req) => {
    const caller = writer(req, 'Microsoft.Maintenance/maintenanceConfigurations/write');
    const { p, id, doc } = configOf(req);
    if (!doc) throw resourceMissing(ctx, p.sub, p.rg, CONFIG_TYPE, p.name);
    const patch = parseBody(configPatch, req.body);
    const old = doc.body;
    const { maintenanceWindow: windowPatch, ...propsPatch } = patch.properties ?? {};
    const merged = {
      location: patch.location ?? old.location,
      tags: patch.tags ?? old.tags ?? {},
      properties: {
        ...old.properties,
        ...propsPatch,
        ...(windowPatch || old.properties.maintenanceWindow ? { maintenanceWindow: { ...old.properties.maintenanceWindow, ...windowPatch } } : {}),
      },
    };
    // Stored tags are kept as they are when the PATCH sends none: tags stored before their rules (docs/api.md#tags)
    // do not make an unrelated change a 400.
    const checked = validateConfiguration({ ...merged, tags: patch.tags ?? {} });
    return write(req, caller, id, { ...checked, tags: merged.tags }, doc);
  });

  app.get(`${base}/:name`, async (req) => {
    const { p, doc } = configOf(req);
    if (!doc) throw resourceMissing(ctx, p.sub, p.rg, CONFIG_TYPE, p.name);
    return configView(doc.id, doc.body);
  });

  app.delete(`${base}/:name`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Maintenance/maintenanceConfigurations/delete');
    const { p, doc } = configOf(req);
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!doc) return reply.status(204).send();
    const inUse = [...assignmentsOf(doc.id),
      ...ctx.docs.ofKind<{ maintenanceConfigurationId: string }>('dynamicScopeAssignment').filter((d) => keyOf(d.body.maintenanceConfigurationId) === keyOf(doc.id)).map((d) => d.id)];
    if (inUse.length > 0) {
      const shown = inUse.slice(0, 5).join(', ') + (inUse.length > 5 ? ` and ${inUse.length - 5} more` : '');
      throw conflict('MaintenanceConfigurationInUse', `Maintenance configuration '${p.name}' is assigned to ${inUse.length} resource(s); delete the assignments first: ${shown}.`);
    }
    ctx.docs.atomically(() => {
      ctx.docs.delete(doc.id);
      ctx.engine.deleteMaintenanceConfiguration(keyOf(doc.id), caller);
    });
    return reply.status(200).send(configView(doc.id, doc.body));
  });

  app.get(base, async (req) => {
    const p = req.params as { sub: string; rg: string };
    mustHaveGroup(ctx, p.sub, p.rg);
    const docs = ctx.docs.children<ConfigDoc>(resourceGroupId(p.sub, p.rg), 'maintenanceConfiguration');
    return page(ctx, req, docs, (d) => d.id.slice(d.id.lastIndexOf('/') + 1), (d) => configView(d.id, d.body));
  });

  app.get(`/subscriptions/:sub${provider}`, async (req) => {
    const { sub } = req.params as { sub: string };
    if (!ctx.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
    // Paged by id (resource group, then name) like the other subscription-wide lists.
    return page(ctx, req, ctx.docs.under<ConfigDoc>(`/subscriptions/${sub}`, 'maintenanceConfiguration'), (d) => d.id, (d) => configView(d.id, d.body));
  });
}
