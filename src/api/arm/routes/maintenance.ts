/**
 * Microsoft.Maintenance (azure-api.md §8): maintenance configurations and their assignments to virtual
 * machines, scale sets and Arc machines, with full validation of the window (R70) and of the per-scope
 * limits (R71). Configurations with a window and their assignments are handed to the engine, which
 * confines automatic upgrades of the scope to them (docs/api-maintenance.md). The ARM document and the
 * engine's copy change in one transaction.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { checkScopeLimits, MAINTENANCE_SCOPES } from '../../../schedule/limits.js';
import type { MaintenanceScope } from '../../../schedule/limits.js';
import { DEFAULT_EXPIRATION, parseMaintenanceWindow } from '../../../schedule/window.js';
import type { ArmContext } from '../context.js';
import { mustHaveGroup, resourceMissing, writer } from '../context.js';
import { ArmError, badRequest, conflict, invalidParameter, notFound } from '../errors.js';
import type { ArmErrorDetail } from '../errors.js';
import { RESOURCE_NAME, arcMachineId, keyOf, providerId, resourceGroupId, scaleSetId, vmId } from '../ids.js';
import { jsonObject, locationName, parseBody, tags } from '../validation.js';
import type { HostUpdate, MaintenanceConfigSpec } from '../../../model/maintenance.js';
import { parseScheduledPatches } from '../patch-requests.js';

const CONFIG_TYPE = 'Microsoft.Maintenance/maintenanceConfigurations';
const ASSIGNMENT_TYPE = 'Microsoft.Maintenance/configurationAssignments';
/** Scopes whose configurations must carry a window (their updates only run inside one). */
const WINDOW_REQUIRED: ReadonlySet<MaintenanceScope> = new Set(['OSImage', 'Extension', 'InGuestPatch']);

const windowSchema = z.object({
  startDateTime: z.string(),
  expirationDateTime: z.string().nullable().optional(),
  duration: z.string(),
  timeZone: z.string(),
  recurEvery: z.string(),
});

const configProperties = z.object({
  namespace: z.string().optional(),
  extensionProperties: z.record(z.string(), z.string()).optional(),
  maintenanceScope: z.enum(MAINTENANCE_SCOPES),
  maintenanceWindow: windowSchema.optional(),
  visibility: z.enum(['Custom', 'Public']).optional(),
  installPatches: jsonObject.optional(),
});

const configBody = z.object({ location: locationName, tags: tags.optional(), properties: configProperties });
const configPatch = z.object({
  location: locationName.optional(),
  tags: tags.optional(),
  properties: z.object({
    namespace: z.string().optional(),
    extensionProperties: z.record(z.string(), z.string()).optional(),
    maintenanceScope: z.enum(MAINTENANCE_SCOPES).optional(),
    maintenanceWindow: windowSchema.partial().optional(),
    visibility: z.enum(['Custom', 'Public']).optional(),
    installPatches: jsonObject.optional(),
  }).optional(),
});

const assignmentBody = z.object({
  location: locationName.optional(),
  properties: z.object({ maintenanceConfigurationId: z.string().min(1), resourceId: z.string().optional() }),
});

type ConfigDoc = z.infer<typeof configBody>;

/** Phasewise's own switch in `extensionProperties`: may critical releases bypass the windows (R72)? */
const BYPASS_KEY = 'emergencybypass';
// A Map, not an object literal: a value such as 'constructor' must not find an inherited property.
const BYPASS_VALUES: ReadonlyMap<string, boolean> = new Map([['allow', true], ['deny', false]]);

function emergencyBypassOf(d: ConfigDoc): boolean {
  for (const [k, v] of Object.entries(d.properties.extensionProperties ?? {})) if (k.toLowerCase() === BYPASS_KEY) return BYPASS_VALUES.get(v.toLowerCase()) ?? false;
  return false;
}

/** The engine's view of a configuration: null for those without a window (nothing to confine to). */
export function engineConfigOf(id: string, d: ConfigDoc): MaintenanceConfigSpec | null {
  const w = d.properties.maintenanceWindow;
  if (!w) return null;
  return {
    id: keyOf(id),
    scope: d.properties.maintenanceScope,
    window: { startDateTime: w.startDateTime, expirationDateTime: w.expirationDateTime ?? null, duration: w.duration, timeZone: w.timeZone, recurEvery: w.recurEvery },
    emergencyBypass: emergencyBypassOf(d),
  };
}
interface AssignmentDoc { location: string; maintenanceConfigurationId: string; resourceId: string }

/** The resource types configurations can be assigned to. */
const TARGETS = [
  { provider: 'Microsoft.Compute', type: 'virtualMachines', kind: 'vm' },
  { provider: 'Microsoft.Compute', type: 'virtualMachineScaleSets', kind: 'scaleSet' },
  { provider: 'Microsoft.HybridCompute', type: 'machines', kind: 'arc' },
] as const;
type Target = (typeof TARGETS)[number];

const CONFIG_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Maintenance\/maintenanceConfigurations\/([^/]+)\/?$/i;

/**
 * Validates a configuration body (schema, then the window, then the scope's limits). Throws the ARM error
 * of the first problem, every problem of the same stage in details.
 */
export function validateConfiguration(raw: unknown): ConfigDoc {
  const body = parseBody(configBody, raw);
  for (const [k, v] of Object.entries(body.properties.extensionProperties ?? {})) {
    if (k.toLowerCase() === BYPASS_KEY && !BYPASS_VALUES.has(v.toLowerCase())) {
      throw invalidParameter(`properties.extensionProperties.${k}`, `'${v}' is not a valid value; expected Allow (critical security releases may start outside the windows, R72) or Deny`);
    }
  }
  const { maintenanceScope: scope, maintenanceWindow: spec } = body.properties;
  if (spec === undefined) {
    if (WINDOW_REQUIRED.has(scope)) throw invalidParameter('properties.maintenanceWindow', `${scope} configurations need a maintenance window; expected {startDateTime, duration, timeZone, recurEvery}`);
    checkInstallPatches(body);
    return body;
  }
  const parsed = parseMaintenanceWindow(spec);
  if (!parsed.ok) {
    throw fromDetails(parsed.errors.map((e) => {
      const target = `properties.maintenanceWindow.${e.field}`;
      return { code: 'InvalidParameter', target, message: `properties.maintenanceWindow.${e.message}` };
    }));
  }
  const violations = checkScopeLimits(scope, parsed.window);
  if (violations.length > 0) {
    throw fromDetails(violations.map((v) => {
      const target = `properties.maintenanceWindow.${v.field}`;
      const text = v.message.startsWith(`${v.field}: `) ? v.message.slice(v.field.length + 2) : v.message;
      return { code: 'InvalidParameter', target, message: `${target}: ${text} (limit ${v.limit} of scope ${v.scope})` };
    }));
  }
  checkInstallPatches(body);
  return body;
}

/** `installPatches` belongs to InGuestPatch configurations, which need it (issue 16, R75). */
function checkInstallPatches(body: ConfigDoc): void {
  const ip = body.properties.installPatches;
  if (body.properties.maintenanceScope === 'InGuestPatch') parseScheduledPatches(ip);
  else if (ip !== undefined) throw invalidParameter('properties.installPatches', `only InGuestPatch configurations install patches (this one's scope is ${body.properties.maintenanceScope}).`);
}

/** The engine target (machine or set id) an assignment's resource id stands for, if it still exists. */
function engineTargetOf(ctx: ArmContext, resourceId: string): string | null {
  return ctx.index.machine(resourceId)?.id ?? ctx.index.scaleSet(resourceId)?.id ?? null;
}

/** Hands the engine every assignment of a configuration it does not hold yet. */
function syncAssignments(ctx: ArmContext, configDocId: string, caller: string): void {
  const key = keyOf(configDocId);
  if (!ctx.engine.state.maintenance.configs.has(key)) return;
  for (const a of ctx.docs.ofKind<AssignmentDoc>('configurationAssignment')) {
    if (keyOf(a.body.maintenanceConfigurationId) !== key) continue;
    const target = engineTargetOf(ctx, a.body.resourceId);
    if (target !== null && !ctx.engine.state.maintenance.assignments.get(target)?.has(key)) ctx.engine.assignMaintenance(target, key, caller);
  }
}

/**
 * At start-up: the engine holds what the documents say (a data directory written before the engine
 * enforced windows has the documents only).
 */
export function reconcileMaintenance(ctx: ArmContext, caller: string): void {
  ctx.docs.atomically(() => {
    for (const d of ctx.docs.ofKind<ConfigDoc>('maintenanceConfiguration')) {
      const spec = engineConfigOf(d.id, d.body);
      if (spec && !ctx.engine.state.maintenance.configs.has(spec.id)) ctx.engine.putMaintenanceConfiguration(spec, caller);
      if (spec) syncAssignments(ctx, d.id, caller);
    }
  });
}

function fromDetails(details: ArmErrorDetail[]) {
  const first = details[0]!;
  return badRequest('InvalidParameter', first.message, first.target, details);
}

export function registerMaintenanceRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const provider = '/providers/Microsoft.Maintenance/maintenanceConfigurations';
  const base = `/subscriptions/:sub/resourceGroups/:rg${provider}`;

  const configView = (id: string, d: ConfigDoc) => {
    const p = d.properties;
    return {
      id, name: id.slice(id.lastIndexOf('/') + 1), type: CONFIG_TYPE, location: d.location, tags: d.tags ?? {},
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

  const write = (req: FastifyRequest, caller: string, id: string, body: ConfigDoc, existing: { id: string; body: ConfigDoc } | undefined) => {
    const p = req.params as { sub: string; rg: string };
    if (existing && existing.body.location.toLowerCase() !== body.location.toLowerCase()) {
      throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the configuration is in ${existing.body.location}).`);
    }
    const stored: ConfigDoc = { location: body.location, tags: body.tags ?? {}, properties: body.properties };
    const docId = existing?.id ?? id;
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
    if (!RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid maintenance configuration name (letters, digits, '-', '_' and '.', up to 64 characters).`, 'resourceName');
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
    return write(req, caller, id, validateConfiguration(merged), doc);
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
    return { value: ctx.docs.children<ConfigDoc>(resourceGroupId(p.sub, p.rg), 'maintenanceConfiguration').map((d) => configView(d.id, d.body)) };
  });

  app.get(`/subscriptions/:sub${provider}`, async (req) => {
    const { sub } = req.params as { sub: string };
    if (!ctx.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
    const prefix = keyOf(`/subscriptions/${sub}`) + '/';
    return { value: ctx.docs.ofKind<ConfigDoc>('maintenanceConfiguration').filter((d) => keyOf(d.id).startsWith(prefix)).map((d) => configView(d.id, d.body)) };
  });

  // Configuration assignments on a resource.
  const assignmentView = (id: string, d: AssignmentDoc) => ({
    id, name: id.slice(id.lastIndexOf('/') + 1), type: ASSIGNMENT_TYPE, location: d.location,
    properties: { maintenanceConfigurationId: d.maintenanceConfigurationId, resourceId: d.resourceId },
  });

  for (const t of TARGETS) {
    const path = `/subscriptions/:sub/resourceGroups/:rg/providers/${t.provider}/${t.type}/:resourceName/providers/Microsoft.Maintenance/configurationAssignments`;
    type AP = { sub: string; rg: string; resourceName: string; name?: string };

    /** The resource's ARM id (its stored casing) and location; 404 when it does not exist. */
    const resourceOf = (req: FastifyRequest, target: Target) => {
      const p = req.params as AP;
      if (target.kind === 'scaleSet') {
        const s = ctx.index.scaleSet(scaleSetId(p.sub, p.rg, p.resourceName));
        if (!s) throw resourceMissing(ctx, p.sub, p.rg, `${target.provider}/${target.type}`, p.resourceName);
        return { p, resourceId: ctx.index.armIdOfSet(s), location: s.region, engineId: s.id, machines: () => ctx.index.members(s.id) };
      }
      const m = ctx.index.machine(target.kind === 'arc' ? arcMachineId(p.sub, p.rg, p.resourceName) : vmId(p.sub, p.rg, p.resourceName));
      if (!m || (target.kind === 'arc') !== (m.kind === 'arc')) throw resourceMissing(ctx, p.sub, p.rg, `${target.provider}/${target.type}`, p.resourceName);
      return { p, resourceId: ctx.index.armIdOfMachine(m), location: m.placement.region, engineId: m.id, machines: () => [m] };
    };
    /**
     * The resource an assignment is written for: one that does not exist is bad input naming
     * `resourceId` (a missing resource group or subscription is still a 404, as for any resource).
     */
    const assignable = (req: FastifyRequest, target: Target) => {
      try {
        return resourceOf(req, target);
      } catch (err) {
        if (!(err instanceof ArmError) || err.code !== 'ResourceNotFound') throw err;
        const p = req.params as AP;
        const id = `/subscriptions/${p.sub}/resourceGroups/${p.rg}/providers/${target.provider}/${target.type}/${p.resourceName}`;
        throw invalidParameter('resourceId', `resourceId: the ${target.type === 'machines' ? 'Arc machine' : target.type === 'virtualMachines' ? 'virtual machine' : 'virtual machine scale set'} '${id}' does not exist; a configuration can only be assigned to an existing resource`);
      }
    };
    const assignmentId = (resourceId: string, name: string) => `${resourceId}/providers/Microsoft.Maintenance/configurationAssignments/${name}`;
    const assignmentOf = (resourceId: string, name: string) => {
      const d = ctx.docs.get<AssignmentDoc>(assignmentId(resourceId, name));
      return d?.kind === 'configurationAssignment' ? d : undefined;
    };

    app.put(`${path}/:name`, async (req, reply) => {
      const caller = writer(req, 'Microsoft.Maintenance/configurationAssignments/write');
      const { p, resourceId, location, engineId, machines } = assignable(req, t);
      if (!RESOURCE_NAME.test(p.name!)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid configuration assignment name (letters, digits, '-', '_' and '.', up to 64 characters).`, 'configurationAssignmentName');
      const body = parseBody(assignmentBody, req.body);
      const target = 'properties.maintenanceConfigurationId';
      const cfgId = body.properties.maintenanceConfigurationId;
      const cfg = CONFIG_ID.test(cfgId) ? ctx.docs.get<ConfigDoc>(cfgId) : undefined;
      if (!cfg || cfg.kind !== 'maintenanceConfiguration') {
        throw invalidParameter(target, `maintenance configuration '${cfgId}' does not exist; expected the id of an existing configuration (/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Maintenance/maintenanceConfigurations/{name})`);
      }
      const scope = cfg.body.properties.maintenanceScope;
      if (scope === 'OSImage' && t.kind !== 'scaleSet') {
        throw invalidParameter(target, `an OSImage configuration can only be assigned to a virtual machine scale set, not to ${t.provider}/${t.type}`);
      }
      if (scope === 'InGuestPatch') {
        // Scheduled patching is for VMs and Arc machines, and the schedule must name the machine's OS.
        if (t.kind === 'scaleSet') throw invalidParameter(target, 'an InGuestPatch configuration can only be assigned to a virtual machine or an Arc machine, not to a scale set');
        const os = machines()[0]!.os;
        const key = os === 'windows' ? 'windowsParameters' : 'linuxParameters';
        const ip = cfg.body.properties.installPatches as Record<string, unknown> | undefined;
        if (!ip?.[key]) throw invalidParameter(target, `the configuration has no installPatches.${key}: it cannot patch this ${os === 'windows' ? 'Windows' : 'Linux'} machine`);
      }
      const existing = assignmentOf(resourceId, p.name!);
      const id = existing?.id ?? assignmentId(resourceId, p.name!);
      const stored: AssignmentDoc = { location: body.location ?? location, maintenanceConfigurationId: cfg.id, resourceId };
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
      const { p, resourceId } = resourceOf(req, t);
      const d = assignmentOf(resourceId, p.name!);
      if (!d) throw notFound('ResourceNotFound', `The configuration assignment '${p.name}' of '${resourceId}' was not found.`);
      return assignmentView(d.id, d.body);
    });

    app.delete(`${path}/:name`, async (req, reply) => {
      const caller = writer(req, 'Microsoft.Maintenance/configurationAssignments/delete');
      const { p, resourceId, engineId } = resourceOf(req, t);
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
      const { resourceId } = resourceOf(req, t);
      return { value: ctx.docs.children<AssignmentDoc>(resourceId, 'configurationAssignment').map((d) => assignmentView(d.id, d.body)) };
    });

    // R73: pending updates of the resource, applying them all now, and the status of that application.
    const resourceBase = `/subscriptions/:sub/resourceGroups/:rg/providers/${t.provider}/${t.type}/:resourceName/providers/Microsoft.Maintenance`;

    app.get(`${resourceBase}/updates`, async (req) => {
      const { resourceId, machines } = resourceOf(req, t);
      const members = machines();
      return { value: updatesView(ctx, resourceId, members.map((m) => m.id)) };
    });

    app.put(`${resourceBase}/applyUpdates/:name`, async (req, reply) => {
      const caller = writer(req, 'Microsoft.Maintenance/applyUpdates/write');
      const { p, resourceId, machines } = resourceOf(req, t);
      if (!RESOURCE_NAME.test(p.name!)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid apply-update name.`, 'applyUpdateName');
      const id = `${resourceId}/providers/Microsoft.Maintenance/applyUpdates/${p.name}`;
      const existing = ctx.docs.get<ApplyUpdateDoc>(id);
      const ids = machines().map((m) => m.id);
      const stored = ctx.docs.atomically(() => {
        const applied = ctx.engine.applyUpdates(ids, caller);
        const doc: ApplyUpdateDoc = { resourceId, rolloutIds: applied.rollouts.map((r) => r.id), hostApplied: applied.hostApplied, at: new Date(ctx.runtime.clock.now()).toISOString() };
        ctx.docs.put(id, resourceId, 'applyUpdate', doc);
        return doc;
      });
      return reply.status(existing?.kind === 'applyUpdate' ? 200 : 201).send(applyUpdateView(ctx, id, stored));
    });

    app.get(`${resourceBase}/applyUpdates/:name`, async (req) => {
      const { p, resourceId } = resourceOf(req, t);
      const id = `${resourceId}/providers/Microsoft.Maintenance/applyUpdates/${p.name}`;
      const d = ctx.docs.get<ApplyUpdateDoc>(id);
      if (!d || d.kind !== 'applyUpdate') throw notFound('ResourceNotFound', `The apply update '${p.name}' of '${resourceId}' was not found.`);
      return applyUpdateView(ctx, d.id, d.body);
    });
  }

  // The platform's host updates (R73), published like extension versions (publisher role).
  app.put('/phasewise/hostUpdates/:id', async (req, reply) => {
    const caller = writer(req, 'Phasewise/hostUpdates/write', 'publisher');
    const { id } = req.params as { id: string };
    if (!RESOURCE_NAME.test(id)) throw badRequest('InvalidParameter', `'${id}' is not a valid host update name (letters, digits, '-', '_' and '.').`, 'id');
    const body = parseBody(hostUpdateBody, req.body ?? {});
    const existing = ctx.engine.state.maintenance.hostUpdates.find((u) => u.id === id);
    if (existing) throw conflict('HostUpdateExists', `Host update '${id}' was already published at ${new Date(existing.publishedAtMs).toISOString()}; host updates are immutable.`);
    for (const [i, r] of (body.regions ?? []).entries()) if (!ctx.engine.state.fleet.regions.has(r)) throw invalidParameter(`regions[${i}]`, `unknown region '${r}'`);
    const u = ctx.engine.publishHostUpdate({ id, regions: body.regions ?? null, impactType: body.impactType ?? 'Freeze', impactDurationSec: body.impactDurationInSec ?? 30 }, caller);
    return reply.status(201).send(hostUpdateView(u));
  });

  app.get('/phasewise/hostUpdates', async () => ({ value: ctx.engine.state.maintenance.hostUpdates.map(hostUpdateView) }));
}

const hostUpdateBody = z.object({
  regions: z.array(z.string().min(1)).optional(),
  impactType: z.enum(['None', 'Freeze', 'Restart', 'Redeploy']).optional(),
  impactDurationInSec: z.number().int().min(0).max(86_400).optional(),
});

function hostUpdateView(u: HostUpdate) {
  return { name: u.id, regions: u.regions, impactType: u.impactType, impactDurationInSec: u.impactDurationSec, publishedAt: new Date(u.publishedAtMs).toISOString() };
}

interface ApplyUpdateDoc { resourceId: string; rolloutIds: string[]; hostApplied: number; at: string }

/** InProgress while a rollout it started runs; Completed after (also when nothing was pending). */
function applyUpdateView(ctx: ArmContext, id: string, d: ApplyUpdateDoc) {
  const running = d.rolloutIds.some((r) => ctx.engine.state.rollouts.get(r)?.status === 'running');
  const ended = d.rolloutIds.map((r) => ctx.engine.state.rollouts.get(r)).filter((r) => r !== undefined && r.status !== 'running');
  const last = Math.max(Date.parse(d.at), ...ended.map((r) => r!.endedAtMs ?? 0));
  return {
    id, name: id.slice(id.lastIndexOf('/') + 1), type: 'Microsoft.Maintenance/applyUpdates',
    properties: { status: running ? 'InProgress' : 'Completed', resourceId: d.resourceId, lastUpdateTime: new Date(last).toISOString() },
  };
}

/** Azure's Update objects for what waits for the resource's machines, one per scope (the earliest notBefore). */
function updatesView(ctx: ArmContext, resourceId: string, machineIds: string[]) {
  const byScope = new Map<string, { maintenanceScope: string; impactType: string; status: string; impactDurationInSec: number; notBefore: string; properties: { resourceId: string } }>();
  for (const u of ctx.engine.pendingUpdates(machineIds)) {
    const prev = byScope.get(u.scope);
    const notBefore = new Date(u.notBeforeMs).toISOString();
    if (!prev) byScope.set(u.scope, { maintenanceScope: u.scope, impactType: u.impactType, status: u.status, impactDurationInSec: u.impactDurationSec, notBefore, properties: { resourceId } });
    else {
      if (notBefore < prev.notBefore) prev.notBefore = notBefore;
      if (u.status === 'InProgress') prev.status = 'InProgress';
      prev.impactDurationInSec = Math.max(prev.impactDurationInSec, u.impactDurationSec);
    }
  }
  return [...byScope.values()];
}
