/**
 * The API of a replica that does not lead: health checks and the command route answered here, writes
 * queued as commands (write-path.ts), reads forwarded to the leader (forward.ts). The agent channel and
 * package uploads are forwarded too (the leader's process holds the agents' connections and the files):
 * an agent's client certificate is checked here against the shared agent CA, and its fingerprint
 * vouched for to the leader (src/api/agent/forwarded-identity.ts).
 */
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { closeStalledBody } from '../../api/agent/body-idle.js';
import type { Authenticator } from '../../api/arm/auth.js';
import { ArmError } from '../../api/arm/errors.js';
import { isAgentPath, PACKAGE_PATH, toArmError } from '../../api/arm/server.js';
import { answerExpectations, ARM_HTTP_SERVER_OPTIONS, armRequestOptions, hostHeaderError } from '../../api/arm/http-errors.js';
import { forwardToLeader } from './forward.js';
import type { HealthView } from './health-routes.js';
import { registerHealthRoutes } from './health-routes.js';
import type { Endpoint } from './registry.js';
import { isWrite, registerCommandRoute, takeWrite } from './write-path.js';
import type { SnapshotReads } from './snapshot-reads.js';
import type { WritePath } from './write-path.js';

export interface FollowerOptions {
  /** With the agent CA: agents' client certificates are checked here, then vouched for to the leader. */
  https: { cert: string; key: string; ca: string; requestCert: true; rejectUnauthorized: false };
  /** The headers that vouch for an agent's certificate fingerprint (forwarded-identity.ts). */
  vouch: (method: string, url: string, fingerprint: string, body: string | null) => Record<string, string>;
  maxBodyBytes: number;
  logLevel: string;
  auth: Authenticator;
  writes: WritePath;
  /** The leader's address now, or null while none leads (or this replica is taking over). */
  leader: () => Promise<Endpoint | null>;
  health: () => HealthView;
  /** The read model: reads it can answer are answered here, from the store. */
  reads: SnapshotReads | null;
}

export function buildFollowerServer(opts: FollowerOptions): FastifyInstance {
  const app = Fastify({
    // The same limits and ARM-shaped errors below the routes as the leader's API (src/api/arm/server.ts).
    https: { ...opts.https, ...ARM_HTTP_SERVER_OPTIONS },
    logger: { level: opts.logLevel },
    bodyLimit: opts.maxBodyBytes,
    ...armRequestOptions(),
  });
  answerExpectations(app.server);
  // Bodies are kept as sent: the leader's API parses and checks them, with its own limits.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  // Package uploads stay a stream, passed on to the leader as they come.
  app.addContentTypeParser(['application/zip', 'application/octet-stream'], (_req, payload, done) => done(null, payload));
  const authenticate = (req: FastifyRequest) => opts.auth.authenticate(req.headers.authorization);

  app.setErrorHandler((err, req, reply) => {
    const arm = toArmError(err) ?? new ArmError(503, 'ServiceUnavailable', 'This replica could not take the request now; retry later.');
    if (arm.status === 503) reply.header('retry-after', String(opts.writes.retryAfterSeconds));
    if (arm.status >= 500) req.log.warn({ err }, 'request not taken');
    return reply.status(arm.status).type('application/json').send(arm.body());
  });
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-ms-request-id', req.id);
    const noHost = hostHeaderError(req.raw);
    if (noHost) {
      reply.header('connection', 'close');
      throw noHost;
    }
    // This replica reads every body itself before it queues or forwards it: the leader's bound on a body
    // that stops arriving holds here too (without it, one held its connection for ever).
    closeStalledBody(req.raw);
  });
  registerHealthRoutes(app, opts.health);
  registerCommandRoute(app, opts.writes, authenticate);

  app.all('/*', async (req, reply) => {
    // The agent channel and package uploads run in the leader's process; other writes become commands.
    const direct = isAgentPath(req.url) || PACKAGE_PATH.test(req.url);
    if (isWrite(req.method) && !direct) {
      const principal = authenticate(req);
      if (req.body !== undefined && typeof req.body !== 'string') throw new ArmError(415, 'UnsupportedMediaType', 'Request bodies must be JSON (Content-Type: application/json).');
      return takeWrite(opts.writes, req, reply, req.body ?? '', principal);
    }
    if (!direct && (await opts.reads?.answer(req, reply))) return reply;
    // Reads (open ones too: the dashboard, /metrics) are the leader's to answer.
    const leader = await opts.leader();
    if (!leader) throw new ArmError(503, 'ServiceUnavailable', 'No replica leads the engine right now (a takeover is under way); retry shortly.');
    const sock = req.raw.socket as TLSSocket;
    const cert = sock.authorized ? sock.getPeerCertificate() : null;
    const body = (req.body as string | Readable | undefined) ?? null;
    // The proof signs the body sent (forwarded-identity.ts); a streamed package upload is a publisher's, by token.
    const headers = cert?.fingerprint256 && (body === null || typeof body === 'string') ? opts.vouch(req.method, req.url, cert.fingerprint256, body) : {};
    await forwardToLeader(req, reply, leader, { headers, body });
    return reply;
  });
  return app;
}
