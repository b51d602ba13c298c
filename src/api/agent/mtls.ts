/**
 * Agent authentication by client certificate (mTLS). The TLS layer asks every client for a
 * certificate but lets those without one in (ARM clients use bearer tokens); agent routes then
 * require a certificate that chains to the agent CA and whose fingerprint is an active agent's.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import type { AgentRecord } from '../../drivers/agent/agent-store.js';
import type { ArmContext } from '../arm/context.js';
import { ArmError } from '../arm/errors.js';
import { AGENT_SEAT_HEADER } from './agent-instances.js';
import { bodyDigest } from './forwarded-identity.js';
import type { AgentServices } from './services.js';

/** The raw JSON text of an agent request, kept by the content parser (stored as sent, not re-serialised). */
export const RAW_BODY = Symbol('rawBody');

/** The body digest a forwarding replica signed, for each request authenticated by its proof. */
const signedDigests = new WeakMap<IncomingMessage, string>();

/** One certificate per connection: read it once (keep-alive connections carry many requests). */
const fingerprints = new WeakMap<object, string | null>();

function peerFingerprint(sock: TLSSocket): string | null {
  let fp = fingerprints.get(sock);
  if (fp === undefined) {
    fp = null;
    if (sock.authorized) {
      const cert = sock.getPeerCertificate();
      if (cert && typeof cert.fingerprint256 === 'string') fp = cert.fingerprint256;
    }
    fingerprints.set(sock, fp);
  }
  return fp;
}

export function agentServices(ctx: ArmContext): AgentServices {
  if (!ctx.agents) throw new ArmError(404, 'NotFound', 'The agent API is not enabled on this server.');
  return ctx.agents;
}

/**
 * The agent a request's certificate belongs to: 401 without a valid one, 403 when `agentId` is another
 * agent's. An agent whose machine was deleted loses its credential here (revoked, 401).
 */
export function authenticateAgent(ctx: ArmContext, req: FastifyRequest, agentId?: string): AgentRecord {
  const agent = authenticateAgentRequest(ctx, req.raw, agentId);
  // Routed requests have their body read by now (the content parser keeps agent bodies as text).
  checkForwardedBody(req.raw, (req as unknown as Record<symbol, string | undefined>)[RAW_BODY]);
  return agent;
}

/**
 * A request another replica vouched for must carry the body that replica signed: 401 otherwise (a body
 * changed on the way, or a proof copied onto another request). Requests with their own certificate pass.
 */
export function checkForwardedBody(req: IncomingMessage, body: string | Buffer | undefined): void {
  const signed = signedDigests.get(req);
  if (signed !== undefined && bodyDigest(body) !== signed) {
    throw new ArmError(401, 'AuthenticationFailed', 'The body of this forwarded agent request is not the one the forwarding replica signed.');
  }
}

/**
 * The same, from the raw request (the lean agent handler has no Fastify request). Its connection's
 * certificate, or, on a replica that leads, the fingerprint another replica vouched for (forwarded-identity.ts).
 */
export function authenticateAgentRequest(ctx: ArmContext, req: IncomingMessage, agentId?: string): AgentRecord {
  const svc = agentServices(ctx);
  let fp = peerFingerprint(req.socket as TLSSocket);
  if (fp === null) {
    const vouched = svc.vouchedIdentity?.(req) ?? null;
    if (vouched) signedDigests.set(req, vouched.bodyDigest);
    fp = vouched?.fingerprint ?? null;
  }
  if (!fp) throw new ArmError(401, 'AuthenticationFailed', 'Agent requests need the client certificate issued at enrollment (mTLS).');
  const agent = svc.driver.agentByFingerprint(fp);
  if (!agent) throw new ArmError(401, 'InvalidClientCertificate', 'The client certificate belongs to no enrolled agent (unknown or revoked); enroll again.');
  if (!ctx.engine.state.fleet.machines.has(agent.machineId)) {
    svc.driver.revoke(agent.agentId);
    throw new ArmError(401, 'CredentialRevoked', `The machine ${agent.resourceId} was deleted; its agent credential is revoked.`);
  }
  if (agentId !== undefined && agentId !== agent.agentId) {
    throw new ArmError(403, 'AuthorizationFailed', `The client certificate of agent '${agent.agentId}' does not authorize access to agent '${agentId}'.`);
  }
  // A second machine with a copy of this agent's credential is refused while the first is in contact.
  svc.instances?.check(agent.agentId, req.headers[AGENT_SEAT_HEADER]);
  return agent;
}
