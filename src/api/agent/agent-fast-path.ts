/**
 * The lean handler in front of Fastify for the agent channel's two hot requests, `GET
 * /v1/agents/{id}/goalstate` and `PUT /v1/agents/{id}/status`: every agent sends them every few seconds,
 * and Fastify's routing, hooks and body collection cost about as much as the work itself
 * (docs/benchmarks.md#agent-check-ins). Same TLS server, same client-certificate authentication, same
 * answers and ARM errors (agent-channel.ts holds what both do). A URL in any other form (percent
 * escapes, a trailing slash, other query parameters) is left to the Fastify routes.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LIMITS } from '../../protocol/agent-wire.js';
import type { ArmContext } from '../arm/context.js';
import { bodyEncodingProblem } from '../arm/body-encoding.js';
import { ArmError } from '../arm/errors.js';
import { goalStateAfterWait, goalStateAnswer, parseWait, readStatusReport, STATUS_RETRY_AFTER_SECONDS, submitStatusReport } from './agent-channel.js';
import type { GoalStateAnswer } from './agent-channel.js';
import { agentServices, authenticateAgentRequest, checkForwardedBody } from './mtls.js';
import { AGENT_BODY_IDLE_MS } from './body-idle.js';

const GOAL_STATE = /^\/v1\/agents\/([A-Za-z0-9._~-]{1,128})\/goalstate(?:\?wait=(\d{1,4}))?$/i;
const STATUS = /^\/v1\/agents\/([A-Za-z0-9._~-]{1,128})\/status$/i;
/** The route patterns, as Fastify names them in metrics. */
export const GOAL_STATE_ROUTE = '/v1/agents/:agentId/goalstate';
export const STATUS_ROUTE = '/v1/agents/:agentId/status';

/** Told about every request the lean handler answered (metrics and the debug request log). */
export type RequestObserver = (method: string, url: string, route: string, status: number, ms: number) => void;

interface Log {
  error: (obj: object, msg: string) => void;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * Request ids in a GUID's shape: a random prefix per process and a counter (a randomUUID per request
 * cost a few per cent of a status report).
 */
const ID_PREFIX = randomUUID().slice(0, 24);
let nextId = 0;
const requestId = (): string => ID_PREFIX + (nextId++).toString(16).padStart(12, '0');

export class AgentFastPath {
  private observer: RequestObserver | null = null;

  constructor(
    private readonly ctx: ArmContext,
    private readonly log: Log,
    /** The server's mapping of errors to ARM errors (src/api/arm/server.ts), so both paths answer alike. */
    private readonly toArmError: (err: unknown) => ArmError | null,
  ) {}

  observe(fn: RequestObserver): void {
    this.observer = fn;
  }

  /** Answers the request when it is one of the two hot ones; false leaves it to Fastify. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url!;
    // Cheap first: '/v…' or '/V…'.
    if (url.charCodeAt(0) !== 0x2f || (url.charCodeAt(1) | 0x20) !== 0x76 || !this.ctx.agents) return false;
    if (req.method === 'GET') {
      const m = GOAL_STATE.exec(url);
      if (!m) return false;
      this.poll(req, res, m[1]!, m[2]);
      return true;
    }
    if (req.method === 'PUT') {
      const m = STATUS.exec(url);
      if (!m) return false;
      this.status(req, res, m[1]!);
      return true;
    }
    return false;
  }

  private poll(req: IncomingMessage, res: ServerResponse, agentId: string, wait: string | undefined): void {
    const t0 = performance.now();
    const id = requestId();
    try {
      authenticateAgentRequest(this.ctx, req, agentId);
      checkForwardedBody(req, undefined); // a goal-state read has no body
      const svc = agentServices(this.ctx);
      const seconds = parseWait(wait);
      const inm = req.headers['if-none-match'];
      if (seconds === 0) return this.sendGoalState(req, res, id, t0, goalStateAnswer(svc, agentId, inm));
      // The response's 'close' fires when the client goes away before the answer.
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.once('close', onClose);
      goalStateAfterWait(svc, agentId, inm, seconds, gone.signal).then(
        (answer) => {
          res.off('close', onClose);
          if (!res.destroyed) this.sendGoalState(req, res, id, t0, answer);
        },
        (err: unknown) => this.fail(req, res, id, t0, GOAL_STATE_ROUTE, err),
      );
    } catch (err) {
      this.fail(req, res, id, t0, GOAL_STATE_ROUTE, err);
    }
  }

  private sendGoalState(req: IncomingMessage, res: ServerResponse, id: string, t0: number, a: GoalStateAnswer): void {
    if (a.status === 304) {
      res.writeHead(304, ['x-ms-request-id', id, 'etag', a.etag, 'cache-control', 'no-cache']).end();
    } else {
      const body = a.body!;
      res.writeHead(200, ['x-ms-request-id', id, 'etag', a.etag, 'cache-control', 'no-cache', 'content-type', JSON_TYPE, 'content-length', String(Buffer.byteLength(body))]);
      res.end(body);
    }
    this.observer?.(req.method!, req.url!, GOAL_STATE_ROUTE, a.status, performance.now() - t0);
  }

  private status(req: IncomingMessage, res: ServerResponse, agentId: string): void {
    const t0 = performance.now();
    const id = requestId();
    let svc;
    try {
      // The certificate before the body: an unauthenticated client's body is never parsed.
      authenticateAgentRequest(this.ctx, req, agentId);
      svc = agentServices(this.ctx);
    } catch (err) {
      return this.fail(req, res, id, t0, STATUS_ROUTE, err);
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > LIMITS.statusReportBytes) return this.fail(req, res, id, t0, STATUS_ROUTE, tooLarge());
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const json = type === 'application/json' || type === 'text/json';
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    // The server has no request timeout (long polls, slow uploads, long ARM calls): a body that stops
    // arriving would hold its connection and buffer for ever, so a stalled report is cut here.
    let idle: NodeJS.Timeout | null = null;
    const stalled = () => {
      if (over) return;
      over = true;
      res.shouldKeepAlive = false; // the rest of the body would be read as the next request
      this.fail(req, res, id, t0, STATUS_ROUTE, new ArmError(408, 'RequestTimeout', `No byte of the status report arrived for ${STATUS_BODY_IDLE_MS / 1000} s; send it again.`));
    };
    const rearm = () => {
      if (idle) clearTimeout(idle);
      idle = over ? null : setTimeout(stalled, STATUS_BODY_IDLE_MS);
    };
    const disarm = () => {
      if (idle) clearTimeout(idle);
      idle = null;
    };
    rearm();
    req.on('close', disarm);
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      rearm();
      size += chunk.length;
      if (size > LIMITS.statusReportBytes) {
        over = true;
        disarm();
        this.fail(req, res, id, t0, STATUS_ROUTE, tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => {
      disarm();
      res.destroy();
    });
    req.on('end', () => {
      disarm();
      if (over) return;
      try {
        if (size > 0 && !json) throw new ArmError(415, 'UnsupportedMediaType', 'Request bodies must be JSON (Content-Type: application/json).');
        // As the router's JSON parser (src/api/arm/server.ts): a compressed body or another charset would be
        // read, and stored, as something other than what was sent.
        const encoding = json ? bodyEncodingProblem(req.headers, true) : null;
        if (encoding) throw encoding;
        const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        checkForwardedBody(req, bytes); // as the forwarding replica signed it, when one did
        const report = readStatusReport(size === 0 ? undefined : bytes.toString('utf8'));
        // The bytes as received are what is stored (status-writer.ts).
        submitStatusReport(svc, agentId, report, bytes, (err) => this.log.error({ err }, 'status commit failed'), (err) => {
          if (err) return this.fail(req, res, id, t0, STATUS_ROUTE, err);
          res.writeHead(204, ['x-ms-request-id', id]).end();
          this.observer?.('PUT', req.url!, STATUS_ROUTE, 204, performance.now() - t0);
        });
      } catch (err) {
        this.fail(req, res, id, t0, STATUS_ROUTE, err);
      }
    });
  }

  /** An ARM error answer (an unexpected error: a 500 naming the request id, and logged). */
  private fail(req: IncomingMessage, res: ServerResponse, id: string, t0: number, route: string, err: unknown): void {
    let arm = this.toArmError(err);
    if (arm) {
      if (arm.status >= 500) this.log.error({ err }, 'request failed');
    } else {
      this.log.error({ err }, 'unexpected error');
      arm = new ArmError(500, 'InternalServerError', 'The server hit an unexpected error; it is logged with this request id: ' + id);
    }
    if (res.headersSent || res.destroyed) return;
    const body = JSON.stringify(arm.body());
    const headers = ['x-ms-request-id', id, 'content-type', JSON_TYPE, 'content-length', String(Buffer.byteLength(body))];
    if (arm.status === 503) headers.push('retry-after', String(STATUS_RETRY_AFTER_SECONDS));
    res.writeHead(arm.status, headers).end(body);
    this.observer?.(req.method!, req.url!, route, arm.status, performance.now() - t0);
  }
}

/** How long a status report's body may pause between two bytes before it is answered 408 and its connection closed. */
export const STATUS_BODY_IDLE_MS = AGENT_BODY_IDLE_MS;

const tooLarge = () => new ArmError(413, 'RequestEntityTooLarge', `The status report is larger than ${LIMITS.statusReportBytes} bytes.`);
