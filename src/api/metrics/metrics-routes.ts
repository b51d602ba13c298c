/**
 * GET /metrics (Prometheus text format) and the per-request hook that feeds the latency histogram and
 * writes the request log. Without `metricsToken` the endpoint is open (as Prometheus scrapes usually
 * are, behind the network's own walls); with one, only `Authorization: Bearer <metricsToken>` reads it.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ArmError } from '../arm/errors.js';
import { agentFastPathOf } from '../arm/server.js';
import type { FleetMetrics } from './fleet-metrics.js';

export interface MetricsRouteOptions {
  /** A separate token for scrapers; null leaves /metrics open. */
  token: string | null;
}

function sameToken(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.{1,512})$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function registerMetrics(app: FastifyInstance, metrics: FleetMetrics, opts: MetricsRouteOptions): void {
  // The route pattern, never the raw URL: ids in paths would make a series per resource.
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.observeRequest(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    // Request logs at debug: at the default level the console tells the rollouts' story instead.
    req.log.debug({ method: req.method, url: req.url.slice(0, 300), statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  // The agent channel's hot requests, answered before Fastify's hooks run (src/api/agent/agent-fast-path.ts).
  const observers = new Map<string, (seconds: number) => void>();
  agentFastPathOf(app)?.observe((method, url, route, status, ms) => {
    const key = `${method} ${route} ${status}`;
    let observe = observers.get(key);
    if (!observe) observers.set(key, (observe = metrics.requestObserver(method, route, status)));
    observe(ms / 1000);
    if (app.log.level === 'debug' || app.log.level === 'trace') app.log.debug({ method, url: url.slice(0, 300), statusCode: status, ms: Math.round(ms) }, 'request');
  });

  app.get('/metrics', async (req, reply) => {
    if (opts.token !== null && !sameToken(req.headers.authorization, opts.token)) {
      throw new ArmError(401, 'AuthenticationFailed', 'The metrics endpoint needs the metrics token: Authorization: Bearer <metricsToken>.');
    }
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.registry.render());
  });
}
