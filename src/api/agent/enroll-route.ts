/**
 * `POST /v1/enroll`: an enrollment token and the machine's self-signed certificate in, a client
 * certificate for the machine's key out. Without `resourceId` the machine is registered as an Arc
 * machine (exactly as a PUT of Microsoft.HybridCompute/machines would, or re-bound to an unbound Arc
 * machine of that name); with it, the agent binds to that existing VM, scale-set instance or Arc
 * machine. A machine already bound to an agent answers 409: revoke that agent first
 * (`DELETE /phasewise/agents/{agentId}`), then enroll again.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { EnrollResponse } from '../../protocol/agent-wire.js';
import type { ArmContext } from '../arm/context.js';
import { ArmError, badRequest, conflict, notFound } from '../arm/errors.js';
import { arcMachineId, resourceGroupId } from '../arm/ids.js';
import { registerArcMachine } from '../arm/routes/hybrid.js';
import { parseBody } from '../arm/validation.js';
import { AgentCertificateError, parseMachineCertificate, thumbprintOf } from './agent-ca.js';
import { agentServices } from './mtls.js';
import type { EnrollmentScope } from './enrollment-tokens.js';
import { enrollSchema } from './status-schema.js';

const ARC_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-_.]{0,53}$/;
const DAY_MS = 86_400_000;

/** An enrollment body: a certificate of at most 16 KiB and a few short fields (the ARM routes' 1 MiB is far more). */
export const ENROLL_BODY_BYTES = 64 * 1024;

export function registerEnrollRoute(app: FastifyInstance, ctx: ArmContext): void {
  const scopes = new WeakMap<FastifyRequest, EnrollmentScope>();
  app.post('/v1/enroll', {
    bodyLimit: ENROLL_BODY_BYTES,
    // The token before the body, as the certificate on the other agent paths: a caller without one never
    // has its body parsed (it was, up to 1 MiB, and learnt what was wrong with it before its 401).
    onRequest: async (req) => {
      const svc = agentServices(ctx);
      scopes.set(req, svc.tokens.check(req.headers.authorization, svc.wallNow()));
    },
  }, async (req, reply) => {
    const svc = agentServices(ctx);
    const now = svc.wallNow();
    const scope = scopes.get(req)!;
    const body = parseBody(enrollSchema, req.body);
    try {
      parseMachineCertificate(body.certificatePem);
    } catch (err) {
      if (err instanceof AgentCertificateError) throw badRequest('InvalidCertificate', err.message, 'certificatePem');
      throw err;
    }
    const agentId = randomUUID();
    const machine = body.resourceId !== undefined ? existingMachine(ctx, body.resourceId, scope) : arcMachineFor(ctx, body, scope);
    const resourceId = ctx.index.armIdOfMachine(machine);
    const bound = svc.driver.agentOfMachine(machine.id);
    if (bound) throw conflict('MachineAlreadyEnrolled', `${resourceId} is already bound to agent '${bound.agentId}'; revoke it first (DELETE /phasewise/agents/${bound.agentId}), then enroll again.`);
    const issued = svc.ca.issue(body.certificatePem, agentId, now, svc.certificateValidityDays * DAY_MS);
    svc.driver.bind({
      agentId, machineId: machine.id, resourceId, fingerprint: issued.fingerprint, machineCertPem: body.certificatePem,
      thumbprint: thumbprintOf(body.certificatePem), enrolledAtMs: now, revokedAtMs: null,
      info: { agentVersion: body.agentVersion, osName: body.osName, osVersion: body.osVersion, computerName: body.computerName },
    });
    svc.goalStates.invalidate(agentId);
    req.log.info({ agentId, resourceId }, 'agent enrolled');
    const res: EnrollResponse = {
      agentId, resourceId, clientCertificatePem: issued.pem, caCertificatePem: svc.ca.certPem,
      pollIntervalSeconds: svc.pollIntervalSeconds, statusIntervalSeconds: svc.statusIntervalSeconds,
    };
    return reply.status(201).send(res);
  });

  function existingMachine(c: ArmContext, resourceId: string, scope: EnrollmentScope) {
    const m = c.index.machine(resourceId);
    // Out of the token's subscription reads as absent: a token holder learns nothing of other subscriptions.
    if (!m || !inScope(scope, m.placement.subscription)) {
      throw notFound('ResourceNotFound', `resourceId: no VM, scale-set instance or Arc machine '${resourceId}' exists in the enrollment `
        + `token's subscription '${scope.subscriptionId}'; create it first, or enroll without resourceId to register an Arc machine.`);
    }
    return m;
  }

  /**
   * An enrollment token speaks for one subscription, as an Arc onboarding service principal is scoped:
   * a machine bound by it receives its extensions' protected settings, so it never reaches another's.
   */
  function inScope(scope: EnrollmentScope, subscription: string): boolean {
    return subscription.toLowerCase() === scope.subscriptionId.toLowerCase();
  }

  function arcMachineFor(c: ArmContext, body: z.infer<typeof enrollSchema>, scope: EnrollmentScope) {
    const sub = body.subscriptionId ?? scope.subscriptionId;
    if (!inScope(scope, sub)) {
      throw new ArmError(403, 'AuthorizationFailed', `subscriptionId: the enrollment token is for subscription '${scope.subscriptionId}'; `
        + `it cannot enroll machines in '${sub}'. Use a token of that subscription.`, 'subscriptionId');
    }
    const rg = body.resourceGroup ?? scope.resourceGroup;
    const location = body.location ?? scope.location;
    const name = body.name ?? body.computerName.split('.')[0]!;
    if (!ARC_NAME.test(name)) {
      throw badRequest('InvalidParameter', `name: '${name}' is not a valid machine name (letters, digits, '-', '_' and '.', up to 54 characters); pass one explicitly.`, 'name');
    }
    if (!c.index.hasSubscription(sub)) throw notFound('SubscriptionNotFound', `The subscription '${sub}' could not be found.`);
    const armId = arcMachineId(sub, rg, name);
    const existing = c.index.machine(armId);
    if (existing) {
      if (existing.kind !== 'arc') throw conflict('Conflict', `${armId} exists and is not an Arc machine.`);
      return existing; // re-connect: an unbound Arc machine of that name is taken over (bound ones answer 409)
    }
    if (!c.index.hasGroup(sub, rg) && !c.docs.get(resourceGroupId(sub, rg))) {
      // The token names the group; it is created in the token's location as ARM would on first use.
      c.docs.put(resourceGroupId(sub, rg), `/subscriptions/${sub}`, 'resourceGroup', { location, tags: {} });
      c.index.addGroup(sub, rg);
    }
    const os = /windows/i.test(body.osName) ? 'windows' : 'linux';
    return registerArcMachine(c, sub, rg, name, location, os, { osName: body.osName, osVersion: body.osVersion, agentVersion: body.agentVersion }, {});
  }
}
