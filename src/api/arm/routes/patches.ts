/**
 * Guest OS patching on demand (issue 16): `assessPatches` and `installPatches` on VMs
 * (Microsoft.Compute) and Arc machines (Microsoft.HybridCompute). Both are long-running: 202 with
 * `Azure-AsyncOperation` and `Location`; the machine's driver does the work, and the monitor answers
 * with the result once it is done, as the Compute SDK expects.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Machine } from '../../../model/fleet.js';
import type { PatchAssessment, PatchInstallation } from '../../../model/patches.js';
import type { ArmContext } from '../context.js';
import { apiVersionOf, baseUrlOf, nowIso, resourceMissing, writer } from '../context.js';
import { conflict } from '../errors.js';
import { arcMachineId, vmId } from '../ids.js';
import { setOperationHeaders } from '../operations.js';
import { effectivePatchSettings } from '../patch-settings.js';
import { parseInstallRequest } from '../patch-requests.js';
import { arcAssessmentView, arcInstallationView, computeAssessmentView, computeInstallationView } from '../patch-views.js';
import { installFinished, installStarted, saveAssessment } from '../patch-records.js';

type P = { sub: string; rg: string; name: string };

/** How long an assessment may take, and how late after its budget a machine's answer may come, on the engine's clock. */
const ASSESSMENT_BUDGET_MS = 60 * 60_000;
const ANSWER_GRACE_MS = 30 * 60_000;
type Flavor = 'vm' | 'arc';

const PROVIDER: Record<Flavor, string> = { vm: 'Microsoft.Compute', arc: 'Microsoft.HybridCompute' };
const TYPE: Record<Flavor, string> = { vm: 'Microsoft.Compute/virtualMachines', arc: 'Microsoft.HybridCompute/machines' };

export function registerPatchRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const machineOf = (req: FastifyRequest, flavor: Flavor) => {
    const p = req.params as P;
    const armId = flavor === 'vm' ? vmId(p.sub, p.rg, p.name) : arcMachineId(p.sub, p.rg, p.name);
    const m = ctx.index.machine(armId);
    if (!m || m.kind !== flavor) throw resourceMissing(ctx, p.sub, p.rg, TYPE[flavor], p.name);
    return { p, m, armId: ctx.index.armIdOfMachine(m) };
  };

  /** Starts the work, answers 202 with the operation's URLs, and finishes the operation when the work ends. */
  const run = <T>(req: FastifyRequest, reply: FastifyReply, sub: string, m: Machine, budgetMs: number, work: () => Promise<T>, view: (r: T, activityId: string) => unknown) => {
    const patches = ctx.patches;
    if (!patches) throw conflict('OperationNotAllowed', 'This server cannot reach the machines to patch them.');
    const deadline = new Date(ctx.runtime.clock.now() + budgetMs + ANSWER_GRACE_MS).toISOString();
    const path = ctx.ops.begin(sub, PROVIDER[m.kind === 'arc' ? 'arc' : 'vm'], m.placement.region, nowIso(ctx), deadline);
    const activityId = path.split('/').pop()!;
    setOperationHeaders(reply, baseUrlOf(ctx, req), path, apiVersionOf(req), ctx.retryAfterSeconds, true);
    // The driver may answer at once or much later (a real machine); the operation reports either.
    let started: Promise<T>;
    try {
      started = work();
    } catch (e) {
      started = Promise.reject(e);
    }
    started.then(
      (r) => ctx.ops.finish(path, nowIso(ctx), { result: view(r, activityId) }),
      (e: unknown) => ctx.ops.finish(path, nowIso(ctx), { error: { code: 'PatchOperationFailed', message: e instanceof Error ? e.message : String(e) } }),
    );
    return reply.status(202).send();
  };

  for (const flavor of ['vm', 'arc'] as const) {
    const base = flavor === 'vm'
      ? '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/virtualMachines/:name'
      : '/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.HybridCompute/machines/:name';

    app.post(`${base}/assessPatches`, async (req, reply) => {
      writer(req, `${TYPE[flavor]}/assessPatches/action`);
      const { p, m, armId } = machineOf(req, flavor);
      const target = { machineId: m.id, os: m.os };
      return run<PatchAssessment>(req, reply, p.sub, m, ASSESSMENT_BUDGET_MS, () => ctx.patches!.assessPatches(target), (r, id) => {
        saveAssessment(ctx, armId, r, id, nowIso(ctx));
        return flavor === 'vm' ? computeAssessmentView(r, id) : arcAssessmentView(r, id, m.os, nowIso(ctx));
      });
    });

    app.post(`${base}/installPatches`, async (req, reply) => {
      writer(req, `${TYPE[flavor]}/installPatches/action`);
      const { p, m, armId } = machineOf(req, flavor);
      const request = parseInstallRequest(req.body, m.os, randomUUID());
      const doc = ctx.docs.get<{ properties?: { osProfile?: unknown } }>(armId)?.body;
      const settings = effectivePatchSettings(doc?.properties?.osProfile, m.os, flavor);
      if (m.os === 'windows' && settings.patchMode === 'AutomaticByOS') {
        // Windows Update installs on its own schedule in this mode; Azure refuses on-demand installation.
        throw conflict('OperationNotAllowed',
          "installPatches is not allowed: the machine's patchMode is AutomaticByOS (properties.osProfile.windowsConfiguration.patchSettings.patchMode); set Manual or AutomaticByPlatform.");
      }
      const target = { machineId: m.id, os: m.os };
      const runId = `ondemand-${request.key}`;
      const caller = req.principal.name;
      let started: ReturnType<typeof installStarted> | undefined;
      ctx.engine.recordPatchEvents((now) => {
        started = installStarted(m, '', runId, now, { start: now, end: now + request.maximumDurationMs }, request.rebootSetting, `installPatches by ${caller}`);
        return started.events;
      });
      return run<PatchInstallation>(req, reply, p.sub, m, request.maximumDurationMs, () => ctx.patches!.installPatches(target, request), (r, id) => {
        if (ctx.index.machine(armId)) ctx.engine.recordPatchEvents(installFinished(ctx, m, armId, '', runId, r, started?.notBeforeMs ?? null, nowIso(ctx), id));
        return flavor === 'vm' ? computeInstallationView(r, id) : arcInstallationView(r, id, m.os, nowIso(ctx));
      });
    });
  }
}
