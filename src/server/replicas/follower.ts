/**
 * The API of a replica that does not lead: health checks and the command route answered here, writes
 * queued as commands (write-path.ts), reads forwarded to the leader (forward-read.ts). The agent channel
 * and package uploads need the leader's own process (client certificates, streamed files): they get 503
 * with Retry-After until this replica leads or the caller reaches the leader.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../../api/arm/auth.js';
import { ArmError } from '../../api/arm/errors.js';
import { isAgentPath, PACKAGE_PATH, toArmError } from '../../api/arm/server.js';
import { MAX_PATH_SEGMENT } from '../../api/arm/http-errors.js';
import { forwardRead } from './forward-read.js';
import type { HealthView } from './health-routes.js';
import { registerHealthRoutes } from './health-routes.js';
import type { Endpoint } from './registry.js';
import { isWrite, registerCommandRoute, takeWrite } from './write-path.js';
import type { WritePath } from './write-path.js';

export interface FollowerOptions {
  https: { cert: string; key: string };
  maxBodyBytes: number;
  logLevel: string;
  auth: Authenticator;
  writes: WritePath;
  /** The leader's address now, or null while none leads (or this replica is taking over). */
  leader: () => Promise<Endpoint | null>;
  health: () => HealthView;
}

export function buildFollowerServer(opts: FollowerOptions): FastifyInstance {
  const app = Fastify({
    https: opts.https,
    logger: { level: opts.logLevel },
    bodyLimit: opts.maxBodyBytes,
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: MAX_PATH_SEGMENT },
    genReqId: () => randomUUID(),
    requestIdHeader: false,
  });
  // Bodies are kept as sent: the leader's API parses and checks them, with its own limits.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  const authenticate = (req: FastifyRequest) => opts.auth.authenticate(req.headers.authorization);

  app.setErrorHandler((err, req, reply) => {
    const arm = toArmError(err) ?? new ArmError(503, 'ServiceUnavailable', 'This replica could not take the request now; retry later.');
    if (arm.status === 503) reply.header('retry-after', String(opts.writes.retryAfterSeconds));
    if (arm.status >= 500) req.log.warn({ err }, 'request not taken');
    return reply.status(arm.status).type('application/json').send(arm.body());
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-ms-request-id', req.id);
  });
  registerHealthRoutes(app, opts.health);
  registerCommandRoute(app, opts.writes, (req) => void authenticate(req));

  app.all('/*', async (req, reply) => {
    if (isAgentPath(req.url) || PACKAGE_PATH.test(req.url)) {
      throw new ArmError(503, 'NotLeader', 'This replica does not run the engine; agents and package uploads are served by the leader. Retry (another replica may answer).');
    }
    if (isWrite(req.method)) {
      const principal = authenticate(req);
      return takeWrite(opts.writes, req, reply, typeof req.body === 'string' ? req.body : '', principal);
    }
    // Reads (open ones too: the dashboard, /metrics) are the leader's to answer.
    const leader = await opts.leader();
    if (!leader) throw new ArmError(503, 'ServiceUnavailable', 'No replica leads the engine right now (a takeover is under way); retry shortly.');
    await forwardRead(req, reply, leader);
    return reply;
  });
  return app;
}
