/**
 * Microsoft.HybridCompute: Arc machines (registered by PUT), their extensions (automatic upgrade on by
 * default, R3; one `status` in the instance view), and `upgradeExtensions`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Machine, OsType } from '../../../model/fleet.js';
import { compareVersions, majorOf, matchesPrefix } from '../../../model/version.js';
import { COLLECTIONS } from '../fleet-index.js';
import type { ArmContext } from '../context.js';
import { indexedPage, machineById, mustHaveGroup, mustHaveSubscription, resourceMissing, nowIso, page, startOperation, writer } from '../context.js';
import { badRequest, conflict } from '../errors.js';
import { sameLocation } from '../locations.js';
import { deleteExtension, extensionNotFound, extensionView, findByName, instancesOf, writeExtension } from '../extensions.js';
import type { ExtensionTarget } from '../extensions.js';
import { RESOURCE_NAME, arcMachineId, keyOf, resourceGroupId } from '../ids.js';
import { deleteMachine, ensureRegion } from '../machines.js';
import { locationName, parseBody, tags, versionPrefix } from '../validation.js';
import { agentProperties } from '../../agent/arm-views.js';
import { validatePatchSettings } from '../patch-settings.js';

const ARC_NAME = /^[a-zA-Z0-9-_.]{1,54}$/;
const machineBody = z.object({
  location: locationName,
  tags: tags.optional(),
  properties: z.object({ osType: z.string().regex(/^(linux|windows)$/i, "expected 'linux' or 'windows'").optional() }).passthrough().default({}),
}).passthrough();
const upgradeBody = z.object({ extensionTargets: z.record(z.string(), z.object({ targetVersion: versionPrefix }).strict()) }).strict();

interface ArcDoc { tags: Record<string, string>; properties: Record<string, unknown> }
type P = { sub: string; rg: string; name: string; ext?: string };

/** Registers a new Arc machine (ARM document and engine machine together), as a PUT or an agent's enrollment does. */
export function registerArcMachine(ctx: ArmContext, sub: string, rg: string, name: string, location: string, os: OsType, props: Record<string, unknown>, tags: Record<string, string>): Machine {
  const armId = arcMachineId(sub, rg, name);
  const m: Machine = {
    id: keyOf(armId), name, kind: 'arc', os, resourceGroup: rg,
    placement: { region: '', zone: null, setId: null, setKind: 'none', updateDomain: null, faultDomain: null, subscription: sub },
  };
  const stored = ctx.docs.atomically(() => {
    m.placement = { ...m.placement, region: ensureRegion(ctx, location, []) };
    ctx.docs.put(armId, resourceGroupId(sub, rg), 'arcMachine', { tags, properties: props });
    return ctx.engine.addMachine(m);
  });
  ctx.index.addMachine(stored);
  return stored;
}

export function registerHybridRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const base = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.HybridCompute/machines';

  const machineOf = (req: FastifyRequest) => {
    const p = req.params as P;
    const m = ctx.index.machine(arcMachineId(p.sub, p.rg, p.name));
    if (!m || m.kind !== 'arc') {
      throw resourceMissing(ctx, p.sub, p.rg, 'Microsoft.HybridCompute/machines', p.name);
    }
    return { p, m, armId: ctx.index.armIdOfMachine(m) };
  };

  const view = (armId: string, m: Machine) => {
    const doc = ctx.docs.get<ArcDoc>(armId)?.body;
    const time = nowIso(ctx);
    return {
      id: armId, name: m.name, type: 'Microsoft.HybridCompute/machines', location: m.placement.region, tags: doc?.tags ?? {},
      properties: {
        ...(doc?.properties ?? {}),
        osType: m.os, status: 'Connected', lastStatusChange: time, provisioningState: 'Succeeded', vmId: m.id,
        ...agentProperties(ctx, m),
        extensions: instancesOf(ctx, m.id).map((i) => (extensionView(ctx, armId, m, i, 'arc', true).properties as { instanceView: unknown }).instanceView),
      },
    };
  };

  app.put(`${base}/:name`, async (req, reply) => {
    const p = req.params as P;
    writer(req, 'Microsoft.HybridCompute/machines/write');
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!ARC_NAME.test(p.name) || !RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid machine name (letters, digits, '-', '_' and '.', up to 54 characters).`, 'machineName');
    const body = parseBody(machineBody, req.body);
    const armId = arcMachineId(p.sub, p.rg, p.name);
    const { provisioningState: _p, status: _s, extensions: _e, ...props } = body.properties as Record<string, unknown>;
    const existing = ctx.index.machine(armId);
    const os: OsType = existing?.os ?? (body.properties.osType?.toLowerCase() === 'windows' ? 'windows' : 'linux');
    validatePatchSettings(props.osProfile, os, 'arc', 'properties.osProfile');
    if (existing) {
      if (existing.kind !== 'arc') throw conflict('Conflict', `${armId} exists and is not an Arc machine.`);
      if (!sameLocation(existing.placement.region, body.location)) {
        throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the machine is in ${existing.placement.region}).`);
      }
      ctx.docs.put(ctx.index.armIdOfMachine(existing), resourceGroupId(p.sub, p.rg), 'arcMachine', { tags: body.tags ?? {}, properties: props });
      return reply.status(200).send(view(ctx.index.armIdOfMachine(existing), existing));
    }
    const stored = registerArcMachine(ctx, p.sub, p.rg, p.name, body.location, os, props, body.tags ?? {});
    return reply.status(201).send(view(armId, stored));
  });
  app.get(`${base}/:name`, async (req) => {
    const { m, armId } = machineOf(req);
    return view(armId, m);
  });
  app.get(base, async (req) => {
    const p = req.params as P;
    mustHaveGroup(ctx, p.sub, p.rg);
    const name = COLLECTIONS.arc(p.sub, p.rg);
    const collection = { name, all: () => ctx.index.machinesIn(name), keyOf: (m: Machine) => m.name, idOf: (m: Machine) => m.id, itemOf: machineById(ctx) };
    return indexedPage(ctx, req, collection, (m) => view(ctx.index.armIdOfMachine(m), m));
  });
  // The SDK's listBySubscription: every Arc machine of the subscription, by id (resource group, then name).
  app.get('/subscriptions/:sub/providers/Microsoft.HybridCompute/machines', async (req) => {
    const { sub } = req.params as P;
    mustHaveSubscription(ctx, sub);
    const name = COLLECTIONS.arc(sub);
    const collection = { name, all: () => ctx.index.machinesIn(name), keyOf: (m: Machine) => ctx.index.armIdOfMachine(m), idOf: (m: Machine) => m.id, itemOf: machineById(ctx) };
    return indexedPage(ctx, req, collection, (m) => view(ctx.index.armIdOfMachine(m), m));
  });
  app.delete(`${base}/:name`, async (req, reply) => {
    writer(req, 'Microsoft.HybridCompute/machines/delete');
    const p = req.params as P;
    const m = ctx.index.machine(arcMachineId(p.sub, p.rg, p.name));
    if (!m || m.kind !== 'arc') return reply.status(204).send();
    deleteMachine(ctx, m);
    // Done already, but with the operation headers a saved SDK poller (resumeFrom) can be resumed.
    startOperation(ctx, req, reply, p.sub, 'Microsoft.HybridCompute', m.placement.region, { kind: 'done' }, true);
    return reply.status(200).send();
  });

  // ---- extensions ----
  const target = (req: FastifyRequest): ExtensionTarget => {
    const { p, m, armId } = machineOf(req);
    return { machine: m, machineArmId: armId, sub: p.sub, provider: 'Microsoft.HybridCompute', flavor: 'arc' };
  };
  app.put(`${base}/:name/extensions/:ext`, async (req, reply) => writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.HybridCompute/machines/extensions/write'), false));
  app.patch(`${base}/:name/extensions/:ext`, async (req, reply) => writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.HybridCompute/machines/extensions/write'), true));
  app.get(`${base}/:name/extensions/:ext`, async (req) => {
    const t = target(req);
    const inst = findByName(ctx, t.machine.id, (req.params as P).ext!);
    if (!inst) throw extensionNotFound(t.machineArmId, (req.params as P).ext!);
    return extensionView(ctx, t.machineArmId, t.machine, inst, 'arc', true);
  });
  app.get(`${base}/:name/extensions`, async (req) => {
    const t = target(req);
    return page(ctx, req, instancesOf(ctx, t.machine.id).map((i) => extensionView(ctx, t.machineArmId, t.machine, i, 'arc', true)), (v) => String(v.name));
  });
  app.delete(`${base}/:name/extensions/:ext`, async (req, reply) =>
    deleteExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.HybridCompute/machines/extensions/delete')));

  // ---- upgradeExtensions: upgrade named extensions now, within their major version ----
  app.post(`${base}/:name/upgradeExtensions`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.HybridCompute/machines/upgradeExtensions/action');
    const t = target(req);
    const body = parseBody(upgradeBody, req.body);
    // Keys such as "__proto__" survive JSON.parse but not a record: every key sent must be one parsed.
    const sent = Object.keys((req.body as { extensionTargets: object }).extensionTargets);
    const lost = sent.find((k) => !Object.prototype.hasOwnProperty.call(body.extensionTargets, k));
    if (lost !== undefined) throw badRequest('InvalidParameter', `extensionTargets.${lost}: the machine has no extension ${lost}.`, `extensionTargets.${lost}`);
    if (sent.length === 0) throw badRequest('InvalidParameter', 'extensionTargets: name at least one extension to upgrade.', 'extensionTargets');
    const now = ctx.runtime.clock.now();
    const plans: Array<{ inst: ReturnType<typeof instancesOf>[number]; version: string }> = [];
    for (const [key, { targetVersion }] of Object.entries(body.extensionTargets)) {
      const where = `extensionTargets.${key}`;
      const inst = instancesOf(ctx, t.machine.id).find((i) => `${i.publisher}.${i.type}`.toLowerCase() === key.toLowerCase());
      if (!inst) throw badRequest('InvalidParameter', `${where}: the machine has no extension ${key}.`, where);
      const type = ctx.engine.state.catalog.getType(inst.publisher, inst.type)!;
      // The major first: asking for another major is refused as such, published or not.
      const askedMajor = Number(targetVersion.split('.')[0]);
      if (inst.installedVersion && askedMajor !== majorOf(inst.installedVersion)) throw majorChange(where, targetVersion, inst.installedVersion);
      let version: string | null = null;
      for (const v of ctx.engine.state.catalog.available(type, t.machine.os, t.machine.placement.region, now)) {
        if (matchesPrefix(v.version, targetVersion) && (version === null || compareVersions(v.version, version) > 0)) version = v.version;
      }
      if (!version) throw badRequest('ArtifactVersionNotFound', `${where}.targetVersion: no version of ${key} matching '${targetVersion}' is published for ${t.machine.os} in ${t.machine.placement.region}.`, `${where}.targetVersion`);
      if (inst.installedVersion && majorOf(version) !== majorOf(inst.installedVersion)) throw majorChange(where, version, inst.installedVersion);
      if (inst.status === 'Transitioning') throw conflict('OperationNotAllowed', `${where}: the extension is being changed right now; try again when it has finished.`);
      if (inst.installedVersion !== version) plans.push({ inst, version });
    }
    const ids = ctx.docs.atomically(() =>
      plans
        .map(
          ({ inst, version }) =>
            ctx.engine.manualUpgrade({
              artifact: { kind: 'extension', publisher: inst.publisher, type: inst.type },
              machineIds: [t.machine.id],
              toVersion: version,
              caller,
            })?.id,
        )
        .filter((x): x is string => typeof x === 'string'),
    );
    ctx.runtime.kick();
    startOperation(ctx, req, reply, t.sub, 'Microsoft.HybridCompute', t.machine.placement.region, { kind: 'rollouts', ids }, true);
    return reply.status(202).send();
  });
}

function majorChange(where: string, asked: string, installed: string) {
  const why = 'upgrades never cross a major version. Change typeHandlerVersion with a PUT of the extension instead.';
  return badRequest('MajorVersionChangeNotAllowed', `${where}.targetVersion: ${asked} is a different major version than the installed ${installed}; ${why}`, `${where}.targetVersion`);
}
