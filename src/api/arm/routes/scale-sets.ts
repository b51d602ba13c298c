/**
 * Microsoft.Compute virtual machine scale sets: the model (upgrade policy, extension profile, image,
 * zones, capacity that creates instances), the instances with `latestModelApplied`, manual upgrade,
 * the model's extensions, the instances' extensions, and rolling upgrades (R81).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Machine, ScaleSet } from '../../../model/fleet.js';
import { DEFAULT_HEALTH_WINDOW_MS } from '../../../model/fleet.js';
import { withDefaults, validateRollingPolicy } from '../../../model/upgrade-policy.js';
import type { UpgradePolicyInput } from '../../../model/upgrade-policy.js';
import { installVersion } from '../../../catalog/catalog.js';
import { checkInstall, checkRemoveExtension, checkUpdate } from '../../../engine/fleet/extensions.js';
import { checkRemoveMachine } from '../../../engine/fleet/machines.js';
import type { ExtensionPatch, ExtensionSpec } from '../../../engine/engine.js';
import { getInstance } from '../../../engine/state.js';
import type { ArmContext } from '../context.js';
import { mustHaveGroup, resourceMissing, page, startOperation, writer } from '../context.js';
import { badRequest, conflict, notFound, invalidParameter } from '../errors.js';
import {
  deleteExtension, extensionNotFound, extensionView, findByName, instancesOf, wantsInstanceView,
  writeExtension,
} from '../extensions.js';
import type { ExtensionTarget } from '../extensions.js';
import { RESOURCE_NAME, keyOf, resourceGroupId, scaleSetId, scaleSetVmId } from '../ids.js';
import { ensureRegion, machineInstanceView, osOf } from '../machines.js';
import {
  extensionRollingUpgrade, cancelRollingUpgrade, imageBehind, latestRollingUpgrade, osImageOf,
  osRollingUpgrade, osUpgradeHistory, runningImageVersion,
} from '../rolling-upgrades.js';
import { followsLatest, parseImageReference, referenceInputOf } from '../../../model/image-reference.js';
import type { ImageReferenceInput } from '../../../model/image-reference.js';
import { checkAutomaticOSUpgrade, checkImageReference, sameReference } from '../scale-set-image.js';
import type { SetImage } from '../scale-set-image.js';
import { jsonObject, locationName, parseBody, settingsObject, tags, versionPrefix } from '../validation.js';
import { sealOsProfile } from '../write-only.js';
import { checkMachineSettings, jsonBytes } from '../settings-budget.js';

const isoDuration = z.string().regex(/^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/, 'expected an ISO 8601 duration such as PT5M');
const rollingPolicy = z.object({
  maxBatchInstancePercent: z.number().int().min(5).max(100),
  maxUnhealthyInstancePercent: z.number().int().min(5).max(100),
  maxUnhealthyUpgradedInstancePercent: z.number().int().min(0).max(100),
  pauseTimeBetweenBatches: isoDuration,
  enableCrossZoneUpgrade: z.boolean(),
  prioritizeUnhealthyInstances: z.boolean(),
  rollbackFailedInstancesOnPolicyBreach: z.boolean(),
  maxSurge: z.boolean(),
}).partial().strict();
const osPolicy = z.object({ enableAutomaticOSUpgrade: z.boolean(), disableAutomaticRollback: z.boolean(), useRollingUpgradePolicy: z.boolean(), osRollingUpgradeDeferral: z.boolean() }).partial().strict();
const approveBody = z.object({ instanceIds: z.array(z.string().min(1)).optional() });
const upgradePolicy = z.object({ mode: z.enum(['Automatic', 'Manual', 'Rolling']).optional(), rollingUpgradePolicy: rollingPolicy.optional(), automaticOSUpgradePolicy: osPolicy.optional() }).strict();
const modelExtension = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'expected an extension name'),
  properties: z.object({
    publisher: z.string().min(1), type: z.string().min(1), typeHandlerVersion: versionPrefix,
    autoUpgradeMinorVersion: z.boolean().optional(), enableAutomaticUpgrade: z.boolean().optional(), forceUpdateTag: z.string().optional(),
    settings: settingsObject.optional(), protectedSettings: settingsObject.optional(), provisionAfterExtensions: z.array(z.string()).optional(), suppressFailures: z.boolean().optional(),
  }).passthrough(),
}).passthrough();
const imageReference = z.object({ publisher: z.string().optional(), offer: z.string().optional(), sku: z.string().optional(), version: z.string().optional(), id: z.string().optional(), sharedGalleryImageId: z.string().optional(), communityGalleryImageId: z.string().optional() }).passthrough();
const vmProfile = z.object({
  storageProfile: z.object({ imageReference: imageReference.optional(), osDisk: z.object({ osType: z.enum(['Linux', 'Windows']).optional() }).passthrough().optional() }).passthrough().optional(),
  osProfile: z.object({}).passthrough().optional(),
  extensionProfile: z.object({ extensionsTimeBudget: isoDuration.optional(), extensions: z.array(modelExtension).max(50).optional() }).passthrough().optional(),
}).passthrough();
const vmssProps = z.object({
  upgradePolicy: upgradePolicy.optional(),
  virtualMachineProfile: vmProfile.optional(),
  platformFaultDomainCount: z.number().int().min(1).max(5).optional(),
  orchestrationMode: z.enum(['Uniform', 'Flexible']).optional(),
  singlePlacementGroup: z.boolean().optional(),
}).passthrough();
const sku = z.object({ name: z.string().optional(), tier: z.string().optional(), capacity: z.number().int().min(0).max(1000).optional() }).passthrough();
const putBody = z.object({ location: locationName, tags: tags.optional(), zones: z.array(z.string().regex(/^\d$/, 'expected a zone number such as "1"')).max(3).optional(), sku: sku.optional(), properties: vmssProps.default({}) }).passthrough();
const patchBody = z.object({ tags: tags.optional(), sku: sku.optional(), properties: vmssProps.optional() }).passthrough();

const manualUpgradeBody = z.object({ instanceIds: z.array(z.string().min(1)).min(1) }).strict();
const modelExtensionBody = z.object({ properties: jsonObject.optional() }).passthrough();

type ModelExtension = z.infer<typeof modelExtension>;

export interface ScaleSetDoc {
  tags: Record<string, string>;
  sku: { name: string; tier?: string; capacity: number };
  /** The model as the client sent it (protected settings removed; they are sealed in `sealed`). */
  properties: z.infer<typeof vmssProps>;
  /** Bumped on every change of the extension profile; an instance is up to date at the same number. */
  modelVersion: number;
  applied: Record<string, number>;
  nextInstanceId: number;
  sealed: Record<string, string>;
  /** The image as checked against the catalog (absent on documents written before the image catalog). */
  image?: SetImage | null;
}

type P = { sub: string; rg: string; name: string; iid?: string; ext?: string };

export function registerScaleSetRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const base = '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/virtualMachineScaleSets';

  const setOf = (req: FastifyRequest) => {
    const p = req.params as P;
    const armId = scaleSetId(p.sub, p.rg, p.name);
    const set = ctx.index.scaleSet(armId);
    if (!set) {
      throw resourceMissing(ctx, p.sub, p.rg, 'Microsoft.Compute/virtualMachineScaleSets', p.name);
    }
    return { p, armId: ctx.index.armIdOfSet(set), set, doc: docOf(ctx, set) };
  };
  const instanceOf = (req: FastifyRequest) => {
    const s = setOf(req);
    const iid = (req.params as P).iid!;
    const m = ctx.index.members(s.set.id).find((x) => ctx.index.instanceIdOf(x) === iid);
    if (!m) throw notFound('NotFound', `The scale set ${s.set.name} has no instance '${iid}'.`);
    return { ...s, m, vmArmId: scaleSetVmId(s.set.subscription, s.set.resourceGroup, s.set.name, iid) };
  };

  app.put(`${base}/:name`, async (req, reply) => {
    const p = req.params as P;
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/write');
    mustHaveGroup(ctx, p.sub, p.rg);
    if (!RESOURCE_NAME.test(p.name)) throw badRequest('InvalidParameter', `'${p.name}' is not a valid scale set name.`, 'vmScaleSetName');
    const body = parseBody(putBody, req.body);
    const existing = ctx.index.scaleSet(scaleSetId(p.sub, p.rg, p.name));
    if (existing) return updateSet(ctx, req, reply, existing, { ...body, properties: body.properties }, caller, true);
    return createSet(ctx, req, reply, p, body, caller);
  });
  app.patch(`${base}/:name`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/write');
    const { set } = setOf(req);
    const body = parseBody(patchBody, req.body);
    return updateSet(ctx, req, reply, set, body, caller, false);
  });
  app.get(`${base}/:name`, async (req) => {
    const { set } = setOf(req);
    return setView(ctx, set);
  });
  app.get(base, async (req) => {
    const p = req.params as P;
    mustHaveGroup(ctx, p.sub, p.rg);
    const sets = [...ctx.engine.state.fleet.scaleSets.values()].filter((s) => s.subscription.toLowerCase() === p.sub.toLowerCase() && s.resourceGroup.toLowerCase() === p.rg.toLowerCase());
    return page(ctx, req, sets.map((s) => setView(ctx, s)));
  });
  app.delete(`${base}/:name`, async (req, reply) => {
    writer(req, 'Microsoft.Compute/virtualMachineScaleSets/delete');
    const p = req.params as P;
    const set = ctx.index.scaleSet(scaleSetId(p.sub, p.rg, p.name));
    if (!set) return reply.status(204).send();
    const members = ctx.index.members(set.id);
    for (const m of members) checkRemoveMachine(ctx.engine.state, m.id);
    ctx.docs.atomically(() => {
      for (const m of members) {
        ctx.docs.delete(ctx.index.armIdOfMachine(m));
        ctx.engine.removeMachine(m.id);
      }
      ctx.docs.delete(ctx.index.armIdOfSet(set));
      ctx.engine.removeScaleSet(set.id);
    });
    for (const m of members) ctx.index.removeMachine(m);
    ctx.index.removeSet(set);
    ctx.runtime.kick();
    return reply.status(200).send();
  });
  app.get(`${base}/:name/instanceView`, async (req) => {
    const { set } = setOf(req);
    const members = ctx.index.members(set.id);
    const byExt = new Map<string, Map<string, number>>();
    for (const m of members) for (const i of instancesOf(ctx, m.id)) {
      let counts = byExt.get(i.name);
      if (!counts) byExt.set(i.name, (counts = new Map()));
      const code = `ProvisioningState/${i.status.toLowerCase()}`;
      counts.set(code, (counts.get(code) ?? 0) + 1);
    }
    return {
      virtualMachine: { statusesSummary: members.length ? [{ code: 'ProvisioningState/succeeded', count: members.length }] : [] },
      extensions: [...byExt].map(([name, counts]) => ({ name, statusesSummary: [...counts].map(([code, count]) => ({ code, count })) })),
      statuses: [{ code: 'ProvisioningState/succeeded', level: 'Info', displayStatus: 'Provisioning succeeded' }],
    };
  });
  app.get(`${base}/:name/osUpgradeHistory`, async (req) => page(ctx, req, osUpgradeHistory(ctx, setOf(req).set)));

  // ---- instances ----
  app.get(`${base}/:name/virtualMachines`, async (req) => {
    const { set, doc } = setOf(req);
    const expand = wantsInstanceView(req);
    return page(ctx, req, ctx.index.members(set.id).map((m) => instanceView(ctx, set, doc, m, expand)));
  });
  app.get(`${base}/:name/virtualMachines/:iid`, async (req) => {
    const { set, doc, m } = instanceOf(req);
    return instanceView(ctx, set, doc, m, wantsInstanceView(req));
  });
  app.get(`${base}/:name/virtualMachines/:iid/instanceView`, async (req) => {
    const { m, vmArmId } = instanceOf(req);
    return machineInstanceView(ctx, vmArmId, m, 'vmssVm');
  });
  app.post(`${base}/:name/manualupgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/manualUpgrade/action');
    const { p, set, doc } = setOf(req);
    const body = parseBody(manualUpgradeBody, req.body);
    const members = new Map(ctx.index.members(set.id).map((m) => [ctx.index.instanceIdOf(m), m]));
    const unknown = body.instanceIds.filter((i) => !members.has(i));
    if (unknown.length) throw badRequest('InvalidParameter', `instanceIds: the scale set has no instance ${unknown.map((i) => `'${i}'`).join(', ')}.`, 'instanceIds');
    const machines = [...new Set(body.instanceIds)].map((i) => members.get(i)!);
    checkModelOn(ctx, modelExtensions(doc), machines);
    const touched = ctx.docs.atomically(() => {
      const t = machines.flatMap((m) => applyModel(ctx, doc, m, caller));
      ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
      return t;
    });
    ctx.runtime.kick();
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'instances', items: touched }, true);
    return reply.status(202).send();
  });

  // ---- the model's extensions ----
  app.put(`${base}/:name/extensions/:ext`, async (req, reply) => modelExtensionWrite(ctx, req, reply, setOf(req), false));
  app.patch(`${base}/:name/extensions/:ext`, async (req, reply) => modelExtensionWrite(ctx, req, reply, setOf(req), true));
  app.get(`${base}/:name/extensions/:ext`, async (req) => {
    const { set, doc } = setOf(req);
    const e = modelExtensions(doc).find((x) => x.name.toLowerCase() === (req.params as P).ext!.toLowerCase());
    if (!e) throw extensionNotFound(ctx.index.armIdOfSet(set), (req.params as P).ext!);
    return modelExtensionView(ctx, set, e);
  });
  app.get(`${base}/:name/extensions`, async (req) => {
    const { set, doc } = setOf(req);
    return page(ctx, req, modelExtensions(doc).map((e) => modelExtensionView(ctx, set, e)));
  });
  app.delete(`${base}/:name/extensions/:ext`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/extensions/delete');
    const { set, doc } = setOf(req);
    const name = (req.params as P).ext!.toLowerCase();
    const exts = modelExtensions(doc);
    if (!exts.some((e) => e.name.toLowerCase() === name)) return reply.status(204).send();
    const next = exts.filter((e) => e.name.toLowerCase() !== name);
    changeModel(ctx, set, doc, next, caller);
    return reply.status(200).send();
  });

  // ---- the instances' extensions ----
  const target = (req: FastifyRequest): ExtensionTarget => {
    const { p, m, vmArmId } = instanceOf(req);
    return { machine: m, machineArmId: vmArmId, sub: p.sub, provider: 'Microsoft.Compute', flavor: 'vmssVm' };
  };
  app.put(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req, reply) => writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/write'), false));
  app.patch(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req, reply) => writeExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/write'), true));
  app.get(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req) => {
    const t = target(req);
    const inst = findByName(ctx, t.machine.id, (req.params as P).ext!);
    if (!inst) throw extensionNotFound(t.machineArmId, (req.params as P).ext!);
    return extensionView(ctx, t.machineArmId, t.machine, inst, 'vmssVm', wantsInstanceView(req));
  });
  app.get(`${base}/:name/virtualMachines/:iid/extensions`, async (req) => {
    const t = target(req);
    return { value: instancesOf(ctx, t.machine.id).map((i) => extensionView(ctx, t.machineArmId, t.machine, i, 'vmssVm', wantsInstanceView(req))) };
  });
  app.delete(`${base}/:name/virtualMachines/:iid/extensions/:ext`, async (req, reply) =>
    deleteExtension(ctx, req, reply, target(req), (req.params as P).ext!, writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/delete')));

  // ---- rolling upgrades (R81) ----
  app.get(`${base}/:name/rollingUpgrades/latest`, async (req) => latestRollingUpgrade(ctx, setOf(req).set));
  app.post(`${base}/:name/extensionRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/extensionRollingUpgrade/action');
    const { p, set } = setOf(req);
    const force = String((req.query as Record<string, unknown>).forceExtensionUpgrade ?? (req.query as Record<string, unknown>).forceextensionupgrade ?? 'false').toLowerCase() === 'true';
    const ids = extensionRollingUpgrade(ctx, set, caller, force);
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'rollouts', ids }, true);
    return reply.status(202).send();
  });
  app.post(`${base}/:name/osRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/osRollingUpgrade/action');
    const { p, set, doc } = setOf(req);
    const ids = osRollingUpgrade(ctx, set, doc.properties.virtualMachineProfile?.storageProfile?.imageReference, caller);
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'rollouts', ids }, true);
    return reply.status(202).send();
  });
  // R83: the workload approves announced (or deferred) re-images: of the listed instances, or of all.
  app.post(`${base}/:name/approveRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/approveRollingUpgrade/action');
    const { p, set } = setOf(req);
    const body = parseBody(approveBody, req.body ?? {});
    const byInstanceId = new Map(ctx.index.members(set.id).map((m) => [ctx.index.instanceIdOf(m), m]));
    const wanted = body.instanceIds ?? [...byInstanceId.keys()];
    const ids = wanted.map((iid, i) => {
      const m = byInstanceId.get(iid);
      if (!m) throw invalidParameter(`instanceIds[${i}]`, `scale set '${set.name}' has no instance '${iid}'`);
      return m.id;
    });
    ctx.engine.approveReimages(ids, caller);
    ctx.runtime.kick();
    startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    return reply.status(202).send();
  });
  app.post(`${base}/:name/virtualMachines/:iid/approveRollingUpgrade`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/approveRollingUpgrade/action');
    const { set, m } = instanceOf(req);
    ctx.engine.approveReimages([m.id], caller);
    ctx.runtime.kick();
    startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    return reply.status(202).send();
  });
  app.post(`${base}/:name/rollingUpgrades/cancel`, async (req, reply) => {
    const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades/cancel/action');
    const { set } = setOf(req);
    ctx.docs.atomically(() => {
      cancelRollingUpgrade(ctx, set, caller);
      // The reference's answer: 202 and the operation headers; the cancel is done when it leaves.
      startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'done' }, true);
    });
    return reply.status(202).send();
  });
}

// ---- the model ----

function docOf(ctx: ArmContext, set: ScaleSet): ScaleSetDoc {
  const doc = ctx.docs.get<ScaleSetDoc>(ctx.index.armIdOfSet(set))?.body;
  if (doc) return doc;
  // A set of the configured fleet: its model is what its instances have.
  const first = ctx.index.members(set.id)[0];
  const extensions: ModelExtension[] = first ? instancesOf(ctx, first.id).map((i) => ({ name: i.name, properties: { publisher: i.publisher, type: i.type, typeHandlerVersion: i.typeHandlerVersion, autoUpgradeMinorVersion: i.autoUpgradeMinorVersion, enableAutomaticUpgrade: i.enableAutomaticUpgrade, settings: { ...i.settings } } })) : [];
  // The image the engine follows reads (and survives a PATCH) as if a client had sent it.
  const imageReference = set.image ? { ...referenceInputOf(set.image) } as Record<string, string> : undefined;
  const osDisk = { osType: first?.os === 'windows' ? 'Windows' as const : 'Linux' as const };
  return {
    tags: {}, sku: { name: 'Standard_D2s_v5', capacity: ctx.engine.state.fleet.setSizes.get(set.id) ?? 0 },
    properties: { upgradePolicy: set.upgradePolicy, virtualMachineProfile: { storageProfile: { ...(imageReference ? { imageReference } : {}), osDisk }, extensionProfile: { extensions } } },
    ...(set.image ? { image: { exactVersion: null, managed: true, followsLatest: followsLatest(set.image) } } : {}),
    modelVersion: 0, applied: {}, sealed: {},
    // Past the largest instance id in use, whatever ids the configured fleet gave its instances.
    nextInstanceId: ctx.index.members(set.id).reduce((n, m) => Math.max(n, (Number.parseInt(ctx.index.instanceIdOf(m), 10) || 0) + 1), 0),
  };
}

const modelExtensions = (doc: ScaleSetDoc): ModelExtension[] => doc.properties.virtualMachineProfile?.extensionProfile?.extensions ?? [];

function checkModel(ctx: ArmContext, exts: readonly ModelExtension[], machine: { os: Machine['os']; region: string }, sealed: Record<string, string> = {}): void {
  // Each instance gets every extension of the model: together within the machine's settings budget.
  let total = 0;
  for (const e of exts) {
    const kept = sealed[e.name.toLowerCase()];
    total += jsonBytes(e.properties.settings) + (e.properties.protectedSettings !== undefined ? jsonBytes(e.properties.protectedSettings) : kept ? jsonBytes(ctx.secrets.open(kept)) : 0);
  }
  checkMachineSettings(total, 'properties.virtualMachineProfile.extensionProfile.extensions', 'each instance of the scale set');
  const names = new Set<string>();
  const types = new Set<string>();
  exts.forEach((e, i) => {
    const where = `properties.virtualMachineProfile.extensionProfile.extensions[${i}]`;
    if (names.has(e.name.toLowerCase())) throw badRequest('InvalidParameter', `${where}.name: the name '${e.name}' is used twice.`, `${where}.name`);
    names.add(e.name.toLowerCase());
    const key = `${e.properties.publisher}.${e.properties.type}`.toLowerCase();
    if (types.has(key)) throw badRequest('InvalidParameter', `${where}.properties.type: ${e.properties.publisher}.${e.properties.type} appears twice.`, `${where}.properties.type`);
    types.add(key);
    if (!ctx.engine.state.catalog.getType(e.properties.publisher, e.properties.type)) throw badRequest('ArtifactNotFound', `${where}.properties.type: extension type ${e.properties.publisher}.${e.properties.type} is not published in the catalog.`, `${where}.properties.type`);
    const v = installVersion(ctx.engine.state.catalog, { publisher: e.properties.publisher, type: e.properties.type, typeHandlerVersion: e.properties.typeHandlerVersion, autoUpgradeMinorVersion: e.properties.autoUpgradeMinorVersion ?? false }, machine, ctx.runtime.clock.now());
    if (!v) throw badRequest('ArtifactVersionNotFound', `${where}.properties.typeHandlerVersion: no version of ${e.properties.publisher}.${e.properties.type} matching '${e.properties.typeHandlerVersion}' is published for ${machine.os} in ${machine.region}.`, `${where}.properties.typeHandlerVersion`);
  });
}

/** Seals the model's write-only osProfile secrets (adminPassword, customData) out of the document. */
function sealProfile(ctx: ArmContext, doc: ScaleSetDoc): void {
  const vmp = doc.properties.virtualMachineProfile;
  if (!vmp) return;
  const { props, sealed } = sealOsProfile(ctx.secrets, vmp as Record<string, unknown>);
  if (!sealed) return;
  doc.properties.virtualMachineProfile = props as typeof vmp;
  doc.sealed['$osProfile'] = sealed; // '$' cannot start an extension name
}

/** Seals protected settings out of the model the document keeps. */
function sealModel(ctx: ArmContext, doc: ScaleSetDoc, exts: ModelExtension[]): ModelExtension[] {
  return exts.map((e) => {
    const { protectedSettings, ...props } = e.properties;
    if (protectedSettings !== undefined) doc.sealed[e.name.toLowerCase()] = ctx.secrets.seal(protectedSettings);
    return { ...e, properties: props };
  });
}

type ModelOp =
  | { kind: 'remove'; artifactKey: string }
  | { kind: 'update'; artifactKey: string; spec: ExtensionPatch }
  | { kind: 'install'; spec: ExtensionSpec }
  | { kind: 'keep'; artifactKey: string };

/** What bringing one instance to a model would change, extension by extension. */
function modelOps(ctx: ArmContext, model: readonly ModelExtension[], m: Machine): ModelOp[] {
  const ops: ModelOp[] = [];
  const wanted = new Set(model.map((e) => e.name.toLowerCase()));
  for (const inst of instancesOf(ctx, m.id)) if (!wanted.has(inst.name.toLowerCase())) ops.push({ kind: 'remove', artifactKey: inst.artifactKey });
  for (const e of model) {
    const pr = e.properties;
    const have = findByName(ctx, m.id, e.name);
    const spec = { typeHandlerVersion: pr.typeHandlerVersion, autoUpgradeMinorVersion: pr.autoUpgradeMinorVersion ?? false, enableAutomaticUpgrade: pr.enableAutomaticUpgrade ?? false, settings: pr.settings ?? {} };
    if (!have) ops.push({ kind: 'install', spec: { name: e.name, publisher: pr.publisher, type: pr.type, ...spec } });
    else if (have.typeHandlerVersion !== spec.typeHandlerVersion || have.autoUpgradeMinorVersion !== spec.autoUpgradeMinorVersion || have.enableAutomaticUpgrade !== spec.enableAutomaticUpgrade || JSON.stringify(have.settings) !== JSON.stringify(spec.settings)) ops.push({ kind: 'update', artifactKey: have.artifactKey, spec });
    else ops.push({ kind: 'keep', artifactKey: have.artifactKey });
  }
  return ops;
}

/**
 * Checks, before anything changes, that the engine will take every change a model brings to these
 * machines: a set-wide change is all or nothing (a 409 for one busy instance changes none).
 */
function checkModelOn(ctx: ArmContext, model: readonly ModelExtension[], machines: readonly Machine[]): void {
  const state = ctx.engine.state;
  const now = ctx.runtime.clock.now();
  for (const m of machines) {
    for (const op of modelOps(ctx, model, m)) {
      if (op.kind === 'remove') checkRemoveExtension(state, m.id, op.artifactKey);
      else if (op.kind === 'update') checkUpdate(state, m.id, op.artifactKey, op.spec, now);
      else if (op.kind === 'install') checkInstall(state, m.id, op.spec, now);
    }
  }
}

/** Brings one instance's extensions to the set's model; returns the instances that now transition. */
function applyModel(ctx: ArmContext, doc: ScaleSetDoc, m: Machine, caller: string): Array<{ machineId: string; artifactKey: string }> {
  const touched: Array<{ machineId: string; artifactKey: string }> = [];
  for (const op of modelOps(ctx, modelExtensions(doc), m)) {
    if (op.kind === 'remove') {
      ctx.engine.removeExtension(m.id, op.artifactKey, caller);
      continue;
    }
    const inst = op.kind === 'install' ? ctx.engine.installExtension(m.id, op.spec, caller)
      : op.kind === 'update' ? ctx.engine.updateExtension(m.id, op.artifactKey, op.spec, caller)
        : getInstance(ctx.engine.state.fleet, op.artifactKey, m.id)!;
    if (inst.status === 'Transitioning') touched.push({ machineId: m.id, artifactKey: inst.artifactKey });
  }
  doc.applied[ctx.index.instanceIdOf(m)] = doc.modelVersion;
  return touched;
}

function addInstances(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, os: Machine['os'], count: number, caller: string): { machines: Machine[]; touched: Array<{ machineId: string; artifactKey: string }> } {
  const machines: Machine[] = [];
  const touched: Array<{ machineId: string; artifactKey: string }> = [];
  for (let k = 0; k < count; k++) {
    const n = doc.nextInstanceId++;
    const iid = String(n);
    const m: Machine = {
      id: keyOf(scaleSetVmId(set.subscription, set.resourceGroup, set.name, iid)), name: `${set.name}_${iid}`, kind: 'scaleSetInstance', os, resourceGroup: set.resourceGroup, instanceId: iid,
      // Instances spread over zones, update domains and fault domains round-robin, as Azure places them.
      placement: { region: set.region, zone: set.zones.length ? set.zones[n % set.zones.length]! : null, setId: set.id, setKind: 'scaleSet', updateDomain: n % set.updateDomainCount, faultDomain: n % set.faultDomainCount, subscription: set.subscription },
    };
    const stored = ctx.engine.addMachine(m);
    ctx.index.addMachine(stored);
    machines.push(stored);
    touched.push(...applyModel(ctx, doc, stored, caller));
  }
  return { machines, touched };
}

function policyOf(input: z.infer<typeof upgradePolicy> | undefined, previous?: UpgradePolicyInput) {
  const merged: UpgradePolicyInput = {
    mode: input?.mode ?? previous?.mode ?? 'Manual',
    rollingUpgradePolicy: { ...(previous?.rollingUpgradePolicy ?? {}), ...(input?.rollingUpgradePolicy ?? {}) },
    automaticOSUpgradePolicy: { ...(previous?.automaticOSUpgradePolicy ?? {}), ...(input?.automaticOSUpgradePolicy ?? {}) },
  };
  const policy = withDefaults(merged);
  const problems = validateRollingPolicy(policy.rollingUpgradePolicy);
  if (problems.length) throw badRequest('InvalidParameter', `properties.upgradePolicy.rollingUpgradePolicy: ${problems.join('; ')}`, 'properties.upgradePolicy.rollingUpgradePolicy');
  return policy;
}

type VmProfile = z.infer<typeof vmProfile>;

const imageReferenceOf = (vmp: VmProfile | undefined) => vmp?.storageProfile?.imageReference;

/** `exactVersion` is read-only: a client that sends back what it read does not get to set it. */
function dropExactVersion(vmp: VmProfile | undefined): void {
  const ref = vmp?.storageProfile?.imageReference as Record<string, unknown> | undefined;
  if (ref) delete ref.exactVersion;
}

/**
 * The set's image after an update: checked again only when the reference changes (a version, once
 * resolved, stays the set's exactVersion until the instances move). A body's storageProfile replaces
 * the stored one, as the merge below does.
 */
function imageAfter(ctx: ArmContext, doc: ScaleSetDoc, vmp: VmProfile | undefined, region: string): SetImage | null {
  dropExactVersion(vmp);
  const before = imageReferenceOf(doc.properties.virtualMachineProfile);
  const after = vmp?.storageProfile ? imageReferenceOf(vmp) : before;
  if (doc.image !== undefined && sameReference(before, after)) return doc.image;
  if (doc.image === undefined && sameReference(before, after)) {
    // A set stored before the image catalog: its image is whatever the catalog makes of it now, or unmanaged.
    try {
      return checkImageReference(ctx, after, region);
    } catch {
      return { exactVersion: null, managed: false, followsLatest: false };
    }
  }
  return checkImageReference(ctx, after, region);
}

/** The engine follows the set's image only when the catalog holds it (R60). */
function engineImage(image: SetImage | null, ref: ImageReferenceInput | undefined): Pick<ScaleSet, 'image'> {
  return image?.managed && ref ? { image: parseImageReference(ref) } : {};
}

function createSet(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, p: P, body: z.infer<typeof putBody>, caller: string) {
  const policy = policyOf(body.properties.upgradePolicy);
  const os = osOf(body.properties.virtualMachineProfile as Parameters<typeof osOf>[0]);
  const zones = [...new Set(body.zones ?? [])].sort();
  const regionName = [...ctx.engine.state.fleet.regions.keys()].find((r) => r.toLowerCase() === body.location.toLowerCase()) ?? body.location.toLowerCase();
  const exts = body.properties.virtualMachineProfile?.extensionProfile?.extensions ?? [];
  checkModel(ctx, exts, { os, region: regionName });
  dropExactVersion(body.properties.virtualMachineProfile);
  const image = checkImageReference(ctx, imageReferenceOf(body.properties.virtualMachineProfile), regionName);
  checkAutomaticOSUpgrade(policy.automaticOSUpgradePolicy, image);
  const armId = scaleSetId(p.sub, p.rg, p.name);
  const capacity = body.sku?.capacity ?? 0;
  const doc: ScaleSetDoc = { tags: body.tags ?? {}, sku: { name: body.sku?.name ?? 'Standard_D2s_v5', ...(body.sku?.tier ? { tier: body.sku.tier } : {}), capacity }, properties: body.properties, modelVersion: 1, applied: {}, nextInstanceId: 0, sealed: {}, image };
  sealProfile(ctx, doc);
  const sealedExts = sealModel(ctx, doc, exts);
  if (doc.properties.virtualMachineProfile?.extensionProfile) doc.properties.virtualMachineProfile.extensionProfile.extensions = sealedExts;
  const touched = ctx.docs.atomically(() => {
    const region = ensureRegion(ctx, body.location, zones);
    const set: ScaleSet = {
      id: keyOf(armId), name: p.name, region, subscription: p.sub, resourceGroup: p.rg, zones,
      updateDomainCount: 5, faultDomainCount: body.properties.platformFaultDomainCount ?? 5, upgradePolicy: policy,
      healthGracePeriodMs: DEFAULT_HEALTH_WINDOW_MS,
      hasApplicationHealth: exts.some((e) => /applicationhealth/i.test(e.properties.type)),
      ...engineImage(image, imageReferenceOf(body.properties.virtualMachineProfile)),
    };
    ctx.engine.putScaleSet(set);
    ctx.index.addSet(set);
    const { touched } = addInstances(ctx, set, doc, os, capacity, caller);
    ctx.docs.put(armId, resourceGroupId(p.sub, p.rg), 'scaleSet', doc);
    return touched;
  });
  ctx.runtime.kick();
  const set = ctx.index.scaleSet(armId)!;
  startOperation(ctx, req, reply, p.sub, 'Microsoft.Compute', set.region, { kind: 'instances', items: touched }, false);
  return reply.status(201).send(setView(ctx, set, 'Creating'));
}

function updateSet(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, set: ScaleSet, body: z.infer<typeof patchBody> & { location?: string; zones?: string[] }, caller: string, replace: boolean) {
  const doc = docOf(ctx, set);
  if (body.location && body.location.toLowerCase() !== set.region.toLowerCase()) throw conflict('PropertyChangeNotAllowed', `Changing property 'location' is not allowed (the scale set is in ${set.region}).`);
  if (body.zones && [...new Set(body.zones)].sort().join(',') !== set.zones.join(',')) throw conflict('PropertyChangeNotAllowed', "Changing property 'zones' is not allowed.");
  const policy = policyOf(body.properties?.upgradePolicy, replace ? undefined : set.upgradePolicy);
  const members = ctx.index.members(set.id);
  const os = members[0]?.os ?? osOf(doc.properties.virtualMachineProfile as Parameters<typeof osOf>[0]);
  const newExts = body.properties?.virtualMachineProfile?.extensionProfile?.extensions;
  if (newExts) checkModel(ctx, newExts, { os, region: set.region }, doc.sealed);
  const image = imageAfter(ctx, doc, body.properties?.virtualMachineProfile, set.region);
  checkAutomaticOSUpgrade(policy.automaticOSUpgradePolicy, image);
  const capacity = body.sku?.capacity ?? doc.sku.capacity;
  const removing = members.length > capacity ? members.slice(capacity) : [];
  const { image: _old, ...rest } = set;
  const refAfter = body.properties?.virtualMachineProfile?.storageProfile ? imageReferenceOf(body.properties.virtualMachineProfile) : imageReferenceOf(doc.properties.virtualMachineProfile);
  const updated: ScaleSet = { ...rest, upgradePolicy: policy, ...engineImage(image, refAfter) };
  for (const m of removing) checkRemoveMachine(ctx.engine.state, m.id);
  if (newExts && policy.mode !== 'Manual') checkModelOn(ctx, newExts, members.slice(0, capacity));
  const touched = ctx.docs.atomically(() => {
    if (body.tags) doc.tags = body.tags;
    doc.image = image;
    if (body.sku) doc.sku = { ...doc.sku, ...body.sku, capacity } as ScaleSetDoc['sku'];
    if (body.properties) {
      const { virtualMachineProfile, ...rest } = body.properties;
      doc.properties = { ...doc.properties, ...rest, upgradePolicy: policy };
      if (virtualMachineProfile) {
        doc.properties.virtualMachineProfile = { ...doc.properties.virtualMachineProfile, ...virtualMachineProfile, extensionProfile: doc.properties.virtualMachineProfile?.extensionProfile ?? {} };
        sealProfile(ctx, doc);
      }
    }
    ctx.engine.putScaleSet(updated);
    for (const m of removing) {
      ctx.engine.removeMachine(m.id);
      ctx.index.removeMachine(m);
    }
    let t: Array<{ machineId: string; artifactKey: string }> = [];
    if (newExts) t = changeModelIn(ctx, updated, doc, newExts, caller);
    if (capacity > members.length) t.push(...addInstances(ctx, updated, doc, os, capacity - members.length, caller).touched);
    ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
    return t;
  });
  ctx.runtime.kick();
  const stored = ctx.engine.state.fleet.scaleSets.get(set.id)!;
  if (touched.length) startOperation(ctx, req, reply, set.subscription, 'Microsoft.Compute', set.region, { kind: 'instances', items: touched }, false);
  return reply.status(200).send(setView(ctx, stored, touched.length ? 'Updating' : 'Succeeded'));
}

/** A new extension profile: Automatic and Rolling sets apply it to every instance now, Manual ones on manualupgrade. */
function changeModelIn(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, exts: ModelExtension[], caller: string): Array<{ machineId: string; artifactKey: string }> {
  const sealed = sealModel(ctx, doc, exts);
  doc.properties.virtualMachineProfile = { ...(doc.properties.virtualMachineProfile ?? {}), extensionProfile: { ...(doc.properties.virtualMachineProfile?.extensionProfile ?? {}), extensions: sealed } };
  doc.modelVersion++;
  if (set.upgradePolicy.mode === 'Manual') return [];
  return ctx.index.members(set.id).flatMap((m) => applyModel(ctx, doc, m, caller));
}

function changeModel(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, exts: ModelExtension[], caller: string) {
  if (set.upgradePolicy.mode !== 'Manual') checkModelOn(ctx, exts, ctx.index.members(set.id));
  const touched = ctx.docs.atomically(() => {
    const t = changeModelIn(ctx, set, doc, exts, caller);
    ctx.docs.put(ctx.index.armIdOfSet(set), resourceGroupId(set.subscription, set.resourceGroup), 'scaleSet', doc);
    return t;
  });
  ctx.runtime.kick();
  return touched;
}

function modelExtensionWrite(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply, s: { p: P; set: ScaleSet; doc: ScaleSetDoc }, patch: boolean) {
  const caller = writer(req, 'Microsoft.Compute/virtualMachineScaleSets/extensions/write');
  const name = s.p.ext!;
  const exts = modelExtensions(s.doc);
  const i = exts.findIndex((e) => e.name.toLowerCase() === name.toLowerCase());
  if (patch && i < 0) throw extensionNotFound(ctx.index.armIdOfSet(s.set), name);
  // The body's shape first (properties must be an object), then the merged extension as a whole.
  const body = parseBody(modelExtensionBody, req.body);
  if (!patch && !body.properties) throw badRequest('InvalidParameter', 'properties: required', 'properties');
  const merged = parseBody(modelExtension, { name: i >= 0 ? exts[i]!.name : name, properties: { ...(patch && i >= 0 ? exts[i]!.properties : {}), ...(body.properties ?? {}) } });
  // Nothing changed: the model (and every instance's latestModelApplied) stays as it is.
  if (i >= 0 && JSON.stringify(merged) === JSON.stringify(exts[i])) {
    reply.status(200);
    return modelExtensionView(ctx, s.set, exts[i]!);
  }
  const next = [...exts];
  if (i >= 0) next[i] = merged;
  else next.push(merged);
  const members = ctx.index.members(s.set.id);
  checkModel(ctx, next, { os: members[0]?.os ?? osOf(s.doc.properties.virtualMachineProfile as Parameters<typeof osOf>[0]), region: s.set.region }, s.doc.sealed);
  const touched = changeModel(ctx, s.set, s.doc, next, caller);
  if (touched.length) startOperation(ctx, req, reply, s.set.subscription, 'Microsoft.Compute', s.set.region, { kind: 'instances', items: touched }, false);
  reply.status(i >= 0 ? 200 : 201);
  return modelExtensionView(ctx, s.set, modelExtensions(s.doc).find((e) => e.name.toLowerCase() === name.toLowerCase())!);
}

function modelExtensionView(ctx: ArmContext, set: ScaleSet, e: ModelExtension) {
  const { protectedSettings: _ps, ...props } = e.properties;
  const members = ctx.index.members(set.id);
  const transitioning = members.some((m) => findByName(ctx, m.id, e.name)?.status === 'Transitioning');
  return { id: `${ctx.index.armIdOfSet(set)}/extensions/${e.name}`, name: e.name, type: 'Microsoft.Compute/virtualMachineScaleSets/extensions', properties: { ...props, provisioningState: transitioning ? 'Updating' : 'Succeeded' } };
}

function setView(ctx: ArmContext, set: ScaleSet, provisioningState = 'Succeeded') {
  const doc = docOf(ctx, set);
  const exts = modelExtensions(doc).map((e) => {
    const { protectedSettings: _ps, ...props } = e.properties;
    return { name: e.name, properties: props };
  });
  const vmp = doc.properties.virtualMachineProfile ?? {};
  const sp = vmp.storageProfile;
  // Azure's read-only exactVersion: the image the set's instances run now (the engine's, once it manages the image).
  const exactVersion = runningImageVersion(ctx, set) ?? doc.image?.exactVersion;
  const storageProfile = sp?.imageReference && exactVersion ? { ...sp, imageReference: { ...sp.imageReference, exactVersion } } : sp;
  return {
    id: ctx.index.armIdOfSet(set), name: set.name, type: 'Microsoft.Compute/virtualMachineScaleSets', location: set.region,
    ...(set.zones.length ? { zones: set.zones } : {}),
    tags: doc.tags,
    sku: { ...doc.sku, capacity: ctx.index.members(set.id).length },
    properties: {
      ...doc.properties,
      upgradePolicy: set.upgradePolicy,
      virtualMachineProfile: { ...vmp, ...(storageProfile ? { storageProfile } : {}), extensionProfile: { ...(vmp.extensionProfile ?? {}), extensions: exts } },
      platformFaultDomainCount: set.faultDomainCount,
      orchestrationMode: doc.properties.orchestrationMode ?? 'Uniform',
      uniqueId: set.id,
      provisioningState,
    },
  };
}

function instanceView(ctx: ArmContext, set: ScaleSet, doc: ScaleSetDoc, m: Machine, expand: boolean) {
  const iid = ctx.index.instanceIdOf(m);
  const armId = scaleSetVmId(set.subscription, set.resourceGroup, set.name, iid);
  const exts = instancesOf(ctx, m.id);
  // Sets of the configured fleet have no recorded model history: their instances are on the model.
  // R50: an instance whose OS image is behind the newest its reference stands for is not on the latest model either.
  const osBehind = imageBehind(ctx, set, m);
  const applied = (doc.modelVersion === 0 || doc.applied[iid] === doc.modelVersion) && !osBehind;
  return {
    id: armId, name: `${set.name}_${iid}`, type: 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines', location: set.region, instanceId: iid,
    ...(m.placement.zone ? { zones: [m.placement.zone] } : {}),
    sku: { name: doc.sku.name, ...(doc.sku.tier ? { tier: doc.sku.tier } : {}) },
    properties: {
      latestModelApplied: applied,
      modelDefinitionApplied: 'VirtualMachineScaleSet',
      provisioningState: exts.some((e) => e.status === 'Transitioning') ? 'Updating' : exts.some((e) => e.status === 'Failed') ? 'Failed' : 'Succeeded',
      storageProfile: { osDisk: { osType: m.os === 'windows' ? 'Windows' : 'Linux' }, ...osImageOf(ctx, set, m) },
      ...(expand ? { instanceView: machineInstanceView(ctx, armId, m, 'vmssVm') } : {}),
    },
    resources: exts.map((i) => extensionView(ctx, armId, m, i, 'vmssVm', false)),
  };
}

