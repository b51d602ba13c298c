/**
 * GET /phasewise/stream: server-sent events for live pages. The engine's events are coalesced into at
 * most two messages a second, each saying what changed (the last seq, counts per type, the rollouts
 * touched, at most 50), never the events themselves: a million-machine rollout stays a trickle. The
 * page reads it with fetch (so it can send its bearer token) and reloads the view it shows.
 */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../api/arm/context.js';
import { ArmError } from '../api/arm/errors.js';
import { API_SECURITY_HEADERS } from '../api/arm/security-headers.js';
import type { EngineEvent } from '../model/events.js';

const FLUSH_MS = 500;
const HEARTBEAT_MS = 15_000;
export const MAX_STREAM_CLIENTS = 100;
const MAX_CLIENTS = MAX_STREAM_CLIENTS;
const MAX_ROLLOUTS = 50;
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * Bytes a stream may have waiting in this process for a client that does not read (its socket's own
 * buffers full) before it is closed: messages are small and the page reconnects, so a client this far
 * behind is gone or stuck, and without the bound each such stream would hold memory for as long as it stays open.
 */
export const MAX_STREAM_BACKLOG_BYTES = 256 * 1024;

/** Writes to a client's stream, or ends the stream (false) when the client has left too much unread. */
export function writeOrEnd(res: NodeJS.WritableStream & { writableLength: number; destroy(): void }, text: string, maxBacklog = MAX_STREAM_BACKLOG_BYTES): boolean {
  if (res.writableLength + Buffer.byteLength(text) > maxBacklog) {
    res.destroy();
    return false;
  }
  res.write(text);
  return true;
}

export function registerStream(app: FastifyInstance, ctx: ArmContext): void {
  const clients = new Set<(text: string) => void>();
  let pending: { lastSeq: number; types: Record<string, number>; rollouts: Set<string> } | null = null;
  let timer: NodeJS.Timeout | null = null;

  const flush = () => {
    timer = null;
    if (!pending) return;
    const msg = { lastSeq: pending.lastSeq, types: pending.types, rollouts: [...pending.rollouts] };
    pending = null;
    const text = `event: changed\ndata: ${JSON.stringify(msg)}\n\n`;
    for (const send of clients) send(text);
  };

  ctx.engine.onEvents((events: readonly EngineEvent[]) => {
    if (clients.size === 0 || events.length === 0) return;
    pending ??= { lastSeq: 0, types: {}, rollouts: new Set() };
    for (const e of events) {
      pending.lastSeq = e.seq;
      pending.types[e.type] = (pending.types[e.type] ?? 0) + 1;
      if ('rolloutId' in e && pending.rollouts.size < MAX_ROLLOUTS) pending.rollouts.add(e.rolloutId);
    }
    timer ??= setTimeout(flush, FLUSH_MS);
  });

  // A write that makes no engine event (a fleet-wide stop on a quiet fleet, a maintenance configuration, a
  // token) changes what pages show all the same: announced as `write`, so another operator's page sees it.
  // Agents' own calls (/v1/…: status reports, enrollment) are not operators' writes and would keep pages reloading.
  app.addHook('onResponse', async (req, reply) => {
    if (clients.size === 0 || !WRITES.has(req.method) || reply.statusCode >= 400 || req.url.startsWith('/v1/')) return;
    pending ??= { lastSeq: ctx.engine.state.eventSeq, types: {}, rollouts: new Set() };
    pending.types.write = (pending.types.write ?? 0) + 1;
    timer ??= setTimeout(flush, FLUSH_MS);
  });

  const heartbeat = setInterval(() => {
    for (const send of clients) send(': keep-alive\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  app.addHook('onClose', async () => {
    clearInterval(heartbeat);
    if (timer) clearTimeout(timer);
  });
  // Streams never end by themselves: close them before the server waits for its requests.
  const closers = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of closers) close();
  });

  app.get('/phasewise/stream', async (req, reply) => {
    // A limit of this server's, not a fault: 429 with Retry-After, as ARM throttles.
    if (clients.size >= MAX_CLIENTS) throw new ArmError(429, 'TooManyStreams', `At most ${MAX_CLIENTS} live streams at once; try again later.`);
    // A HEAD has no body, and Node sends a bodiless answer's headers only when it ends: held open as a
    // stream, it answered nothing, ever, and kept one of the streams' places. It gets the headers alone.
    if (req.method === 'HEAD') return reply.type('text/event-stream; charset=utf-8').send();
    reply.hijack();
    const res = reply.raw;
    // Hijacked: the headers the API's hook set on the reply are not sent, so they are written here.
    res.writeHead(200, { ...API_SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no' });
    res.write(`event: hello\ndata: ${JSON.stringify({ lastSeq: ctx.engine.state.eventSeq })}\n\n`);
    const forget = () => {
      clients.delete(send);
      closers.delete(close);
    };
    const send = (text: string) => {
      if (!writeOrEnd(res, text)) forget();
    };
    const close = () => {
      forget();
      res.end();
    };
    clients.add(send);
    closers.add(close);
    req.raw.on('close', forget);
  });
}
