/**
 * A follower's requests for the leader (reads, the agent channel, package uploads): sent to the leader's
 * HTTPS address (from the replicas table), trusting only the certificate the leader registered there,
 * and the answer streamed back as it comes.
 */
import { request } from 'node:https';
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ArmError } from '../../api/arm/errors.js';
import type { Endpoint } from './registry.js';
import { INTERNAL_HEADERS } from './api-commands.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-connection']);
/** A leader that does not start answering within this is treated as gone. */
const ANSWER_TIMEOUT_MS = 10_000;

export interface Forwarded {
  /** Added to the request's headers (an agent's vouched identity). */
  headers?: Record<string, string>;
  /** The body: as received (a string), a stream (a package upload), or none. */
  body?: string | Readable | null;
}

/**
 * Where a forwarded request goes: always the leader's host and port, with the request-target as the client
 * sent it. Resolving the target against the leader's URL let `GET //host:port/x` (or the absolute form
 * `GET https://host:port/x`) name another address: any client, without a token, had the follower connect
 * wherever it said, and its 503 told a refused port from an open one.
 */
export function leaderTarget(requestTarget: string, leaderUrl: string): { hostname: string; port: string | number; path: string } {
  if (!requestTarget.startsWith('/')) {
    throw new ArmError(400, 'InvalidRequestUri', 'The request target must be a path (origin form, such as /subscriptions/…), not an absolute URL.');
  }
  const leader = new URL(leaderUrl);
  return { hostname: leader.hostname.replace(/^\[|\]$/g, ''), port: leader.port || 443, path: requestTarget };
}

export function forwardToLeader(req: FastifyRequest, reply: FastifyReply, leader: Endpoint, extra: Forwarded = {}): Promise<void> {
  const target = leaderTarget(req.url, leader.url);
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !INTERNAL_HEADERS.has(k)) headers[k] = v;
  Object.assign(headers, extra.headers ?? {});
  const body = extra.body ?? null;
  if (typeof body === 'string') headers['content-length'] = String(Buffer.byteLength(body));
  else if (body === null) delete headers['content-length'];
  return new Promise((resolve, reject) => {
    const out = request({
      protocol: 'https:', hostname: target.hostname, port: target.port, path: target.path,
      method: req.method, headers,
      // The leader's own certificate is the only one trusted; its name need not match the address used.
      ca: leader.cert, checkServerIdentity: () => undefined,
      timeout: ANSWER_TIMEOUT_MS,
    }, (res) => {
      out.setTimeout(0); // a long answer (a goal-state long poll, the dashboard's event stream) may idle
      reply.hijack();
      const outHeaders: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) outHeaders[k] = v;
      reply.raw.writeHead(res.statusCode ?? 502, outHeaders);
      res.pipe(reply.raw);
      res.on('end', () => resolve());
      res.on('error', () => resolve());
      reply.raw.on('close', () => res.destroy());
    });
    out.on('timeout', () => out.destroy(new Error('the leader did not answer in time')));
    out.on('error', (err) => {
      if (reply.sent || reply.raw.headersSent) return resolve();
      reject(new ArmError(503, 'ServiceUnavailable', `The engine's leader cannot be reached now (${err.message}); retry later.`));
    });
    if (body === null) out.end();
    else if (typeof body === 'string') out.end(body);
    else body.pipe(out);
  });
}
