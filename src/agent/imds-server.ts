/**
 * Scheduled events on the machine (R83): an IMDS-shaped `/metadata/scheduledevents` on loopback.
 * GET answers `{DocumentIncarnation, Events}` from the goal state; POST `{"StartRequests":[{"EventId"}]}`
 * approves events, forwarded to the server. Like IMDS, a request without `Metadata: true` is a 400.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GoalState } from '../protocol/agent-wire.js';

const MAX_BODY = 16 * 1024;
const MAX_START_REQUESTS = 100;

export interface ImdsOptions {
  port: number;
  events: () => GoalState['scheduledEvents'];
  /** Sends the approval to the server; rejects with a sentence on failure. */
  approve: (eventIds: string[]) => Promise<void>;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const error = (message: string) => ({ error: message });

/** The event ids of a StartRequests body, or a sentence saying what is wrong with it. */
export function parseStartRequests(text: string, known: Set<string>): string[] | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'the body is not JSON';
  }
  const reqs = (body as { StartRequests?: unknown })?.StartRequests;
  if (!Array.isArray(reqs) || reqs.length === 0) return 'the body needs StartRequests: [{"EventId": "…"}]';
  if (reqs.length > MAX_START_REQUESTS) return `at most ${MAX_START_REQUESTS} StartRequests`;
  const ids: string[] = [];
  for (const r of reqs) {
    const id = (r as { EventId?: unknown })?.EventId;
    if (typeof id !== 'string' || id.length === 0 || id.length > 128) return 'every StartRequest needs an EventId';
    if (!known.has(id)) return `unknown EventId ${JSON.stringify(id)}`;
    ids.push(id);
  }
  return ids;
}

/** Connections served at once: a workload asks now and then; more are closed as they arrive. */
export const MAX_CONNECTIONS = 32;

export class ImdsServer {
  private server: http.Server | null = null;

  constructor(private readonly opts: ImdsOptions) {}

  async start(): Promise<number> {
    // A client that goes away mid-body (or past requestTimeout) makes reading the request throw; unhandled,
    // that rejection ended the agent: any local process could stop it with one cut POST.
    const server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    // Any local process may connect: without a bound, a few hundred idle connections used up the agent's file
    // descriptors (journal, policy, handler commands all failed with EMFILE). Further connections are closed at once.
    server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, '127.0.0.1', () => resolve());
    });
    // After listening, an error is one accept failing (EMFILE): that connection is lost, the agent goes on.
    server.on('error', () => undefined);
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metadata/scheduledevents') return send(res, 404, error('not found; this agent serves /metadata/scheduledevents only'));
    if (String(req.headers.metadata ?? '').toLowerCase() !== 'true') return send(res, 400, error('Bad request. Required metadata header not specified'));
    if (req.method === 'GET') return send(res, 200, this.opts.events());
    if (req.method !== 'POST') return send(res, 405, error(`${req.method} is not allowed`));
    let text = '';
    let tooBig = false;
    req.setEncoding('utf8');
    for await (const chunk of req) {
      text += chunk as string;
      if (text.length > MAX_BODY) {
        tooBig = true;
        break;
      }
    }
    if (tooBig) return send(res, 413, error(`the body is larger than ${MAX_BODY} bytes`));
    const ids = parseStartRequests(text, new Set(this.opts.events().Events.map((e) => e.EventId)));
    if (typeof ids === 'string') return send(res, 400, error(ids));
    try {
      await this.opts.approve(ids);
    } catch (err) {
      return send(res, 502, error(`the approval could not be sent to the control plane: ${(err as Error).message}`));
    }
    send(res, 200, {});
  }

  stop(): Promise<void> {
    const s = this.server;
    if (!s) return Promise.resolve();
    s.closeAllConnections();
    return new Promise((r) => s.close(() => r()));
  }
}
