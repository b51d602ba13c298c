/** Configuration assignments on a VM, scale set or Arc machine: put, read, list, delete; the engine follows those with a window. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ArmContext } from '../../context.js';
import { writer } from '../../context.js';
import { badRequest, invalidParameter, notFound } from '../../errors.js';
import { RESOURCE_NAME, keyOf } from '../../ids.js';
import { normalizeLocation } from '../../locations.js';
import { locationName, parseBody } from '../../validation.js';
import { CONFIG_ID } from './configuration.js';
import type { ConfigDoc } from './configuration.js';
import type { AssignmentDoc } from './reconcile.js';
import { assignmentProblem } from './compatibility.js';
import { TARGETS, assignable, resourceOf } from './targets.js';

const ASSIGNMENT_TYPE = 'Microsoft.Maintenance/configurationAssignments';

const assignmentBody = z.object({
  location: locationName.optional(),
  properties: z.object({ maintenanceConfigurationId: z.string().min(1), resourceId: z.string().optional() }),
});

export function registerAssignmentRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const assignmentView = (id: string, d: AssignmentDoc) => ({
    id, name: id.slice(id.lastIndexOf('/') + 1), type: ASSIGNMENT_TYPE, location: normalizeLocation(d.location),
    properties: { maintenanceConfigurationId: d.maintenanceConfigurationId, resourceId: d.resourceId },
  });

  for (const t of TARGETS) {
    const path = `/subscriptions/:sub/resourceGroups/:rg/providers/${t.provider}/${t.type}/:resourceName/providers/Microsoft.Maintenance/configurationAssignments`;
    const assignmentId = (resourceId: string, name: string) => `${resourceId}/providers/Microsoft.Maintenance/configurationAssignments/${name}`;
    const assignmentOf = (resourceId: string, name: string) => {
      const d = ctx.docs.get<AssignmentDoc>(assignmentId(resourceId, name));
      return d?.kind === 'configurationAssignment' ? d : undefined;
    };

    app.put(`${path}/:name`, async (req, reply) => {
      const caller = writer(req, 'Microsoft.Maintenance/configurationAssignments/write');
      const { p, resourceId, location, engineId, machines } = assignable(ctx, req, t);
      if (!RESOURCE_NAME.test(p.name!)) {
        throw badRequest('InvalidParameter', `'${p.name}' is not a valid configuration assignment name (letters, digits, '-', '_' and '.', up to 64 characters).`, 'configurationAssignmentName');
      }
      const body = parseBody(assignmentBody, req.body);
      const target = 'properties.maintenanceConfigurationId';
      const cfgId = body.properties.maintenanceConfigurationId;
      const cfg = CONFIG_ID.test(cfgId) ? ctx.docs.get<ConfigDoc>(cfgId) : undefined;
      if (!cfg || cfg.kind !== 'maintenanceConfiguration') {
        throw invalidParameter(target, `maintenance configuration '${cfgId}' does not exist; expected the id of an existing configuration` +
          ' (/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Maintenance/maintenanceConfigurations/{name})');
      }
      const machine = t.kind === 'scaleSet' ? null : machines()[0]!;
      const problem = assignmentProblem(cfg.body.properties, machine ? { kind: t.kind as 'vm' | 'arc', os: machine.os } : { kind: 'scaleSet' });
      if (problem) throw invalidParameter(target, problem);
      const existing = assignmentOf(resourceId, p.name!);
      const id = existing?.id ?? assignmentId(resourceId, p.name!);
      const stored: AssignmentDoc = { location: normalizeLocation(body.location ?? location), maintenanceConfigurationId: cfg.id, resourceId };
      ctx.docs.atomically(() => {
        ctx.docs.put(id, resourceId, 'configurationAssignment', stored);
        const previous = existing ? keyOf(existing.body.maintenanceConfigurationId) : null;
        const namedElsewhere = ctx.docs.children<AssignmentDoc>(resourceId, 'configurationAssignment').some((o) => o.id !== id && keyOf(o.body.maintenanceConfigurationId) === previous);
        if (previous !== null && previous !== keyOf(cfg.id) && !namedElsewhere) ctx.engine.unassignMaintenance(engineId, previous, caller);
        if (ctx.engine.state.maintenance.configs.has(keyOf(cfg.id))) ctx.engine.assignMaintenance(engineId, keyOf(cfg.id), caller);
      });
      return reply.status(existing ? 200 : 201).send(assignmentView(id, stored));
    });

    app.get(`${path}/:name`, async (req) => {
      const { p, resourceId } = resourceOf(ctx, req, t);
      const d = assignmentOf(resourceId, p.name!);
      if (!d) throw notFound('ResourceNotFound', `The configuration assignment '${p.name}' of '${resourceId}' was not found.`);
      return assignmentView(d.id, d.body);
    });

    app.delete(`${path}/:name`, async (req, reply) => {
      const caller = writer(req, 'Microsoft.Maintenance/configurationAssignments/delete');
      const { p, resourceId, engineId } = resourceOf(ctx, req, t);
      const d = assignmentOf(resourceId, p.name!);
      if (!d) return reply.status(204).send();
      ctx.docs.atomically(() => {
        ctx.docs.delete(d.id);
        // Another assignment of the resource may name the same configuration: it stays in force.
        const still = ctx.docs.children<AssignmentDoc>(resourceId, 'configurationAssignment').some((o) => keyOf(o.body.maintenanceConfigurationId) === keyOf(d.body.maintenanceConfigurationId));
        if (!still) ctx.engine.unassignMaintenance(engineId, keyOf(d.body.maintenanceConfigurationId), caller);
      });
      return reply.status(200).send(assignmentView(d.id, d.body));
    });

    app.get(path, async (req) => {
      const { resourceId } = resourceOf(ctx, req, t);
      return { value: ctx.docs.children<AssignmentDoc>(resourceId, 'configurationAssignment').map((d) => assignmentView(d.id, d.body)) };
    });
  }
}
