/**
 * The ARM-compatible HTTP surface: routing (case-insensitive, as ARM), authentication, ARM error
 * bodies for every failure, request ids, and the route modules under routes/.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import Fastify, { LogController } from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { FleetError } from '../../engine/engine.js';
import { EngineHaltedError } from '../../engine/core/errors.js';
import { ImageCatalogError } from '../../catalog/images.js';
import type { ArmContext } from './context.js';
import { apiVersionOf, unreadSkipTokenError } from './context.js';
import { requireRole } from './auth.js';
import type { Principal } from './auth.js';
import { ArmError, badRequest } from './errors.js';
import { answerExpectations, ARM_HTTP_SERVER_OPTIONS, armRequestOptions, hostHeaderError } from './http-errors.js';
import { parseLimitedJson } from './json-limits.js';
import { bodyEncodingProblem } from './body-encoding.js';
import { isOpenPath } from './open-paths.js';
import { duplicateParameterError } from './query-parameters.js';
import { API_SECURITY_HEADERS } from './security-headers.js';
import { trackQuietConnections } from './quiet-connections.js';
import { registerPreconditions } from './preconditions.js';
import { registerActivityLogRoutes } from './routes/activity-log.js';
import { registerCatalogRoutes } from './routes/catalog.js';
import { registerFeatureRoutes } from './routes/features.js';
import { registerHybridRoutes } from './routes/hybrid.js';
import { registerPatchRoutes } from './routes/patches.js';
import { registerDynamicScopeRoutes } from './routes/dynamic-scopes.js';
import { registerResourceHealthRoutes } from './routes/resource-health.js';
import { registerImagePublisherRoutes } from './routes/image-publisher.js';
import { registerImageRoutes } from './routes/images.js';
import { registerMaintenanceRoutes } from './routes/maintenance/index.js';
import { registerOperationRoutes } from './routes/operations.js';
import { registerPublisherRoutes } from './routes/publisher.js';
import { registerReleaseRoutes } from './routes/releases.js';
import { registerResourceGroupRoutes } from './routes/resource-groups.js';
import { registerScaleSetRoutes } from './routes/scale-sets/index.js';
import { registerVirtualMachineRoutes } from './routes/virtual-machines.js';
import { AllowedMethods } from './allowed-methods.js';
import { lingerOnClose } from './linger.js';
import { AgentFastPath } from '../agent/agent-fast-path.js';
import { closeStalledBody } from '../agent/body-idle.js';
import { registerAgentAdminRoutes } from '../agent/admin-routes.js';
import { RAW_BODY, registerAgentRoutes } from '../agent/agent-routes.js';
import { registerEnrollRoute } from '../agent/enroll-route.js';
import { registerPackageRoutes } from '../agent/package-routes.js';
import { parseAgentJson } from '../agent/status-schema.js';

export const PACKAGE_PATH = /^\/phasewise\/publishers\/[^/?]+\/extensionTypes\/[^/?]+\/versions\/[^/?]+\/package\/?(\?|$)/i;

/**
 * An answer given before the request's body has all arrived (a 401 judged on the headers, a bad
 * api-version) closes the connection after it. Kept alive, Node read and threw away the rest of the
 * body, however long its Content-Length: a caller without a token could have the server take in
 * gigabytes, where one with a token was cut at `maxBodyBytes`.
 */
export function closeIfBodyUnread(req: FastifyRequest, reply: FastifyReply): void {
  if (req.raw.complete) return;
  reply.header('connection', 'close');
  lingerOnClose(req.raw.socket); // the client still sending gets the answer, not a reset (linger.ts)
}

/**
 * A path naming one resource (not a list): `/subscriptions/{s}[/resourceGroups/{rg}]/providers/{namespace}`
 * then type and name pairs (a child's, an extension resource's `…/providers/{ns}/{type}/{name}` too).
 */
export function isResourceIdPath(url: string): boolean {
  return /^\/subscriptions\/[^/?]+(\/resourcegroups\/[^/?]+)?\/providers\/[^/?]+(\/[^/?]+\/[^/?]+)+\/?(\?|$)/i.test(url);
}

/** `/v1/…`: the agent channel. */
export function isAgentPath(url: string): boolean {
  return url.startsWith('/v1/') || url.startsWith('/V1/');
}

export interface ArmServerOptions {
  /** With `ca`, clients are asked for a certificate (agents' mTLS); those without one still connect. */
  https?: { cert: string; key: string; ca?: string; requestCert?: boolean; rejectUnauthorized?: boolean };
  maxBodyBytes: number;
  logger: FastifyServerOptions['logger'];
  /**
   * Replicas (src/server/replicas/): the principal of a request this process injected itself (a queued
   * write, authenticated by the replica that took it), or null for a request from the network.
   */
  injectedPrincipal?: (req: FastifyRequest) => Principal | null;
  /** Replicas: runs before every handler; may answer the request itself (a write taken as a command). */
  beforeHandler?: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  /** Replicas' read snapshots: a request no route takes is answered with UNROUTED_HEADER (it is the leader's to answer). */
  markUnrouted?: boolean;
}

export const UNROUTED_HEADER = 'x-phasewise-unrouted';

/** Fastify's own 4xx errors, as ARM codes. */
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'RequestEntityTooLarge'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UnsupportedMediaType'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'InvalidRequestContent'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'InvalidRequestContent'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'InvalidRequestContent'],
  FST_ERR_BAD_URL: [400, 'InvalidRequestUri'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'InvalidRequestUri'],
};

/** The image catalog's errors: what is missing is a 404, a changed immutable record or a full quota a 409, the rest a 400. */
const IMAGE_STATUS: Partial<Record<ImageCatalogError['code'], [number, string]>> = {
  Conflict: [409, 'Conflict'], QuotaExceeded: [409, 'QuotaExceeded'],
  InvalidVersion: [400, 'InvalidParameter'], InvalidReplication: [400, 'InvalidParameter'], UnsupportedReference: [400, 'InvalidParameter'],
};

const FLEET_STATUS: Record<string, number> = { Conflict: 409, NotFound: 404, VersionNotFound: 400, InvalidFleet: 400 };

/** SQLite's codes for a store that cannot write now (full disk, I/O error, busy): retry later, nothing changed. */
const STORE_UNAVAILABLE = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|READONLY|CANTOPEN)/;

export function toArmError(err: unknown): ArmError | null {
  if (err instanceof ArmError) return err;
  if (err instanceof EngineHaltedError) return new ArmError(503, 'ServiceUnavailable', `${err.message}; retry later`);
  const storeCode = (err as { code?: unknown; cause?: { code?: unknown } }).cause?.code ?? (err as { code?: unknown }).code;
  if (typeof storeCode === 'string' && STORE_UNAVAILABLE.test(storeCode)) {
    return new ArmError(503, 'ServiceUnavailable', `The store cannot write now (${storeCode}); nothing of this request was applied; retry later.`);
  }
  if (err instanceof FleetError) return new ArmError(FLEET_STATUS[err.code] ?? 400, err.code === 'Conflict' ? 'OperationNotAllowed' : err.code, err.message);
  if (err instanceof ImageCatalogError) {
    const [status, code] = IMAGE_STATUS[err.code] ?? [404, err.code];
    return new ArmError(status, code, err.message);
  }
  const fe = err as FastifyError;
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  // Fastify's own 415 says only "Unsupported Media Type" (a body with an empty or unreadable Content-Type).
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ArmError(415, 'UnsupportedMediaType', 'Request bodies must be JSON (Content-Type: application/json).');
  if (mapped) return new ArmError(mapped[0], mapped[1], fe.message);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new ArmError(fe.statusCode, 'BadRequest', fe.message);
  return null;
}

/** The lean handler of each server built here that has an agent channel (metrics observe it). */
const fastPaths = new WeakMap<FastifyInstance, AgentFastPath>();

export function agentFastPathOf(app: FastifyInstance): AgentFastPath | undefined {
  return fastPaths.get(app);
}

/**
 * Fastify's own "listening" line, for a server built with `https`: the TLS server comes from our
 * serverFactory, so Fastify does not know it and would print http://.
 */
export function httpsListenText(address: string): string {
  return `Server listening at ${address.replace(/^http:\/\//, 'https://')}`;
}

export function buildArmServer(ctx: ArmContext, opts: ArmServerOptions): FastifyInstance {
  let fast: AgentFastPath | null = null;
  const https = opts.https;
  const app = Fastify({
    // The agent channel's hot requests are answered before Fastify (src/api/agent/agent-fast-path.ts)
    // on the same TLS server; everything else goes to Fastify's router. The server's settings are
    // Fastify's own defaults.
    ...(https ? {
      serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
        // Node's own default is 16 KiB too; set here so the documented limit cannot drift.
        const server = createServer({ ...https, ...ARM_HTTP_SERVER_OPTIONS }, (req, res) => {
          if (fast !== null && fast.handle(req, res)) return;
          closeStalledBody(req); // a body that stops arriving closes its connection (body-idle.ts)
          handler(req, res);
        });
        answerExpectations(server);
        server.keepAliveTimeout = 72_000;
        server.requestTimeout = 0;
        server.setTimeout(0);
        return server;
      },
    } : {}),
    logger: opts.logger,
    // Request logs come from the metrics hook at debug level (src/api/metrics/metrics-routes.ts).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.maxBodyBytes,
    ...armRequestOptions(),
  });

  const connections = trackQuietConnections(app.server);
  app.addHook('preClose', async () => connections.closeQuiet());

  // JSON bodies; an empty body is allowed (ARM POST actions carry none).
  app.removeAllContentTypeParsers();
  // `application/merge-patch+json` is what a PATCH is (RFC 7396; TypeSpec's ARM templates declare it): taken on a
  // PATCH, read as JSON; it was a 415. On another method it names a semantics the request does not have.
  app.addContentTypeParser(['application/json', 'text/json', 'application/merge-patch+json'], { parseAs: 'string' }, (req, body, done) => {
    if (req.method !== 'PATCH' && /^\s*application\/merge-patch\+json/i.test(req.headers['content-type'] ?? '')) {
      return done(new ArmError(415, 'UnsupportedMediaType', `Content-Type application/merge-patch+json is a PATCH's; a ${req.method} sends application/json.`), undefined);
    }
    const encoding = bodyEncodingProblem(req.headers, true);
    if (encoding) return done(encoding, undefined);
    const agent = isAgentPath(req.url);
    // A UTF-8 byte order mark before the JSON (PowerShell's `Set-Content -Encoding UTF8`, Notepad) is read
    // past, as ARM reads it; it was a 400 whose message showed an invisible character. The agent channel
    // stores its bodies as sent, so it keeps its own rules.
    const text = !agent && (body as string).charCodeAt(0) === 0xfeff ? (body as string).slice(1) : body as string;
    // Kept before anything is judged: a forwarded agent request's body is checked against its proof (mtls.ts).
    if (agent) (req as unknown as Record<symbol, string>)[RAW_BODY] = text;
    if (text.trim() === '') return done(null, undefined);
    try {
      if (agent) {
        // The agent channel's bounds too, in the same pass: a deep or key-heavy body never reaches JSON.parse.
        return done(null, parseAgentJson(text));
      }
      done(null, parseLimitedJson(text)); // depth, size and keys checked before JSON.parse (docs/api.md#limits)
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  // Packages: the body stays a stream; the package route caps and stores it without buffering.
  // Everywhere else these types are refused like any non-JSON body.
  app.addContentTypeParser(['application/zip', 'application/octet-stream'], (req, payload, done) => {
    if (PACKAGE_PATH.test(req.url)) return done(bodyEncodingProblem(req.headers, false), payload);
    done(new ArmError(415, 'UnsupportedMediaType', 'Request bodies must be JSON (Content-Type: application/json).'), undefined);
  });
  // Clients that send no or another content type with an empty body (POST actions) are fine too.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    if ((body as string).length === 0) return done(null, undefined);
    done(new ArmError(415, 'UnsupportedMediaType', 'Request bodies must be JSON (Content-Type: application/json).'), undefined);
  });

  app.decorateRequest('principal', null as never);
  app.addHook('onRequest', async (req, reply) => {
    reply.headers(API_SECURITY_HEADERS); // on every answer, errors included; a route may set its own cache-control
    reply.header('x-ms-request-id', req.id);
    const noHost = hostHeaderError(req.raw);
    if (noHost) {
      reply.header('connection', 'close');
      throw noHost;
    }
    // U+0000 in a name or id: SQLite would store it, PostgreSQL cannot (docs/api.md#limits).
    if (req.url.includes('%00') || req.url.includes('\0')) throw badRequest('InvalidRequestUri', 'The request URI holds the character U+0000 (%00), which no name or id may hold.');
    const duplicate = duplicateParameterError(req.url); // `?api-version=A&api-version=B`: which one was meant?
    if (duplicate) throw duplicate;
    // The agent channel authenticates by client certificate (src/api/agent/mtls.ts), not bearer tokens.
    if (isAgentPath(req.url)) return;
    if (isOpenPath(req.url)) return; // the dashboard's files and /metrics (its own token), src/api/arm/open-paths.ts
    const clientId = req.headers['x-ms-client-request-id'];
    if (typeof clientId === 'string') reply.header('x-ms-client-request-id', clientId.slice(0, 200));
    req.principal = opts.injectedPrincipal?.(req) ?? ctx.auth.authenticate(req.headers.authorization);
    if (req.method === 'GET' || req.method === 'HEAD') requireRole(req.principal, 'reader', `${req.method} ${req.routeOptions.url ?? req.url}`);
    // Phasewise's own routes (/phasewise/...) do not speak api-version.
    if (!req.url.toLowerCase().startsWith('/phasewise/')) apiVersionOf(req);
  });

  registerPreconditions(app); // If-Match / If-None-Match, judged before any handler (and before a replica forwards a write)
  if (opts.beforeHandler) app.addHook('preHandler', opts.beforeHandler);

  // HEAD of a resource's id is ARM's checkExistence: 204 or 404, nothing else in its spec (the GET's 200 was answered).
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.method !== 'HEAD' || reply.statusCode !== 200 || !isResourceIdPath(req.url)) return payload;
    reply.status(204).removeHeader('content-length').removeHeader('content-type');
    return '';
  });

  // A `$skiptoken` sent to a list that pages nothing (context.ts): a GET changes nothing, so judging the answer is safe.
  app.addHook('preSerialization', async (req, _reply, payload) => {
    const unread = unreadSkipTokenError(req, payload);
    if (unread) throw unread;
    return payload;
  });

  app.setErrorHandler((err, req, reply) => {
    closeIfBodyUnread(req, reply);
    const arm = toArmError(err);
    if (arm) {
      if (arm.status >= 500) req.log.error({ err }, 'request failed');
      if (arm.status === 503 || arm.status === 429) reply.header('retry-after', String(ctx.retryAfterSeconds));
      return reply.status(arm.status).type('application/json').send(arm.body());
    }
    req.log.error({ err }, 'unexpected error');
    const body = new ArmError(500, 'InternalServerError', 'The server hit an unexpected error; it is logged with this request id: ' + req.id).body();
    return reply.status(500).type('application/json').send(body);
  });
  // Every route's pattern and methods, for the 405 below (the hook sees the routes registered after it).
  const allowed = new AllowedMethods();
  app.addHook('onRoute', (route) => allowed.add(route.method, route.url));
  app.setNotFoundHandler((req, reply) => {
    closeIfBodyUnread(req, reply);
    if (opts.markUnrouted) reply.header(UNROUTED_HEADER, '1');
    const path = req.url.split('?')[0]!;
    // A routed path asked with a method it does not take: 405 with what it takes, not "nothing here".
    const methods = allowed.at(path);
    if (methods.length > 0) {
      const e = new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${req.method}'; ${path} takes ${methods.join(', ')}.`);
      return reply.status(405).header('allow', methods.join(', ')).type('application/json').send(e.body());
    }
    const e = new ArmError(404, 'NotFound', `No resource or operation at ${req.method} ${path}.`);
    return reply.status(404).type('application/json').send(e.body());
  });

  registerOperationRoutes(app, ctx);
  registerResourceGroupRoutes(app, ctx);
  registerVirtualMachineRoutes(app, ctx);
  registerScaleSetRoutes(app, ctx);
  registerHybridRoutes(app, ctx);
  registerPatchRoutes(app, ctx);
  registerDynamicScopeRoutes(app, ctx);
  registerResourceHealthRoutes(app, ctx);
  registerMaintenanceRoutes(app, ctx);
  registerCatalogRoutes(app, ctx);
  registerPublisherRoutes(app, ctx);
  registerReleaseRoutes(app, ctx);
  registerImageRoutes(app, ctx);
  registerImagePublisherRoutes(app, ctx);
  registerFeatureRoutes(app, ctx);
  registerActivityLogRoutes(app, ctx);
  if (ctx.agents) {
    const goalStates = ctx.agents.goalStates;
    registerEnrollRoute(app, ctx);
    registerAgentRoutes(app, ctx);
    registerPackageRoutes(app, ctx);
    registerAgentAdminRoutes(app, ctx);
    if (https) {
      fast = new AgentFastPath(ctx, app.log, toArmError);
      fastPaths.set(app, fast);
    }
    // Long polls end before the server waits for its requests to finish.
    app.addHook('preClose', async () => goalStates.close());
  }
  return app;
}
