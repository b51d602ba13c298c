/**
 * How any replica answers a write: queue it as a command, wait for the leader's response, or answer
 * 202 Accepted with the command's address when none comes in time. Also `GET /phasewise/commands/{id}`,
 * which any replica answers from the database.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import type { Principal, Role } from '../../api/arm/auth.js';
import { baseUrlFor } from '../../api/arm/context.js';
import { ArmError } from '../../api/arm/errors.js';
import { acceptedResponse, INTERNAL_HEADER, PRINCIPAL_HEADER, QueueFull, requestHeaders, responseOf, submit } from './api-commands.js';
import type { ApiRequest, ApiResponse, CommandSeal, ResponseWaiter } from './api-commands.js';


/** How long a replica holds a write's connection for the leader's response before answering 202. */
export const WAIT_FOR_RESPONSE_MS = 20_000;

export interface WritePath {
  client: pg.Client;
  waiter: ResponseWaiter;
  seal: CommandSeal;
  publicUrl: string | null;
  retryAfterSeconds: number;
  /** Called once a command is queued (the leader's own runner looks at once). */
  queued?: () => void;
  /** Called with the commit version that holds a write this replica answered (its reads wait for it). */
  applied?: (version: number) => void;
}

export function isWrite(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

/** Queues the request and answers with the leader's response (or 202). */
export async function takeWrite(path: WritePath, req: FastifyRequest, reply: FastifyReply, body: string, principal: Principal): Promise<FastifyReply> {
  const command: ApiRequest = {
    method: req.method, url: req.url, headers: requestHeaders(req.headers), body,
    principal: { name: principal.name, roles: [...principal.roles] } as unknown as Principal,
  };
  let id: number;
  try {
    id = await submit(path.client, path.seal, command);
  } catch (err) {
    if (err instanceof QueueFull) throw new ArmError(503, 'ServiceUnavailable', `Too many writes wait for the engine's leader (${err.message}); nothing was stored; retry later.`);
    throw new ArmError(503, 'ServiceUnavailable', `The write could not be stored (${(err as Error).message}); nothing was applied; retry later.`);
  }
  path.queued?.();
  const done = await path.waiter.wait(id, WAIT_FOR_RESPONSE_MS);
  if (done?.version !== undefined) path.applied?.(done.version);
  return send(reply, done ?? acceptedResponse(id, baseUrlFor(path.publicUrl, req.headers.host), path.retryAfterSeconds));
}

export function send(reply: FastifyReply, r: ApiResponse): FastifyReply {
  reply.status(r.status);
  for (const [k, v] of Object.entries(r.headers)) reply.header(k, v);
  return reply.send(r.body);
}

/** The principal of a request the command runner injected (it bears this process's secret), else null. */
export function injectedPrincipal(secret: string): (req: FastifyRequest) => Principal | null {
  const expected = Buffer.from(secret);
  return (req) => {
    const given = req.headers[INTERNAL_HEADER];
    if (typeof given !== 'string' || given.length !== expected.length || !timingSafeEqual(Buffer.from(given), expected)) return null;
    const p = JSON.parse(String(req.headers[PRINCIPAL_HEADER])) as { name: string; roles: Role[] };
    return { name: p.name, roles: new Set(p.roles) };
  };
}

/**
 * `GET /phasewise/commands/{id}`: 202 while queued, then the response the write got; only to the caller
 * that sent the write (to anyone else it is not found: a response may hold a secret, such as a new
 * enrollment token, and ids are sequential).
 */
export function registerCommandRoute(app: FastifyInstance, path: WritePath, authenticate: (req: FastifyRequest) => Principal): void {
  app.get('/phasewise/commands/:id', async (req, reply) => {
    const principal = authenticate(req);
    const raw = (req.params as { id: string }).id;
    if (!/^\d{1,15}$/.test(raw)) throw new ArmError(400, 'InvalidParameter', `'${raw.slice(0, 40)}' is not a command id (a whole number).`, 'id');
    const id = Number(raw);
    let state;
    try {
      state = await responseOf(path.client, path.seal, id, principal.name);
    } catch (err) {
      throw new ArmError(503, 'ServiceUnavailable', `The database cannot be read now (${(err as Error).message}); retry later.`);
    }
    if (!state.found) throw new ArmError(404, 'NotFound', `No queued write ${id}.`);
    return send(reply, state.response ?? acceptedResponse(id, baseUrlFor(path.publicUrl, req.headers.host), path.retryAfterSeconds));
  });
}
