/**
 * What the agent channel's two hot requests do, apart from how the request arrived: the goal-state poll
 * (ETag, long poll) and the status report (bounded, parsed, shape-checked, answered after its group
 * commit). Both the lean handler (agent-fast-path.ts) and the Fastify routes (agent-routes.ts) call these,
 * so the answers are the same whichever serves a request.
 */
import type { StatusReport } from '../../protocol/agent-wire.js';
import { LONG_POLL_MAX_SECONDS } from '../../protocol/agent-wire.js';
import { ArmError, badRequest, invalidParameter } from '../arm/errors.js';
import { parseBody } from '../arm/validation.js';
import type { AgentServices } from './services.js';
import { isStatusReport } from './status-check.js';
import { parseAgentJson, statusReportSchema } from './status-schema.js';

export interface GoalStateAnswer {
  status: 200 | 304;
  etag: string;
  /** The goal state's JSON (null with a 304). */
  body: string | null;
}

/** The answer to a poll now. */
export function goalStateAnswer(svc: AgentServices, agentId: string, ifNoneMatch: string | undefined): GoalStateAnswer {
  const gs = svc.goalStates.current(agentId)!;
  if (ifNoneMatch !== undefined && matchesEtag(ifNoneMatch, gs.etag)) return { status: 304, etag: gs.etag, body: null };
  return { status: 200, etag: gs.etag, body: gs.body };
}

/** A long poll: waits up to `waitSeconds` while the goal state is the one the agent has, then answers. */
export async function goalStateAfterWait(
  svc: AgentServices, agentId: string, ifNoneMatch: string | undefined, waitSeconds: number, gone: AbortSignal,
): Promise<GoalStateAnswer> {
  const gs = svc.goalStates.current(agentId)!;
  if (ifNoneMatch !== undefined && waitSeconds > 0 && matchesEtag(ifNoneMatch, gs.etag)) {
    await svc.goalStates.wait(agentId, gs.etag, waitSeconds * 1000, gone);
  }
  return goalStateAnswer(svc, agentId, ifNoneMatch);
}

/** `?wait=`: whole seconds from 0 to LONG_POLL_MAX_SECONDS (absent: 0). */
export function parseWait(value: unknown): number {
  if (value === undefined) return 0;
  const text = String(value);
  if (!/^\d{1,4}$/.test(text) || Number(text) > LONG_POLL_MAX_SECONDS) throw invalidParameter('wait', `'${text}' is not a whole number of seconds from 0 to ${LONG_POLL_MAX_SECONDS}.`);
  return Number(text);
}

/** If-None-Match: one ETag, a list, or `*`; weak ones compare by their value. */
export function matchesEtag(header: string, etag: string): boolean {
  if (header === etag) return true;
  return header.split(',').some((t) => {
    const v = t.trim();
    return v === '*' || v === etag || v === `W/${etag}`;
  });
}

/**
 * A status report's text (undefined: no JSON body) as a checked report: JSON bounds and parse in one
 * pass (status-schema.ts), then the shape. A report the hand-written check refuses goes to zod, whose
 * first issue is the error; one it accepts is the parsed object itself.
 */
export function readStatusReport(text: string | undefined): StatusReport {
  if (text === undefined || text.trim() === '') throw badRequest('InvalidRequestContent', 'The status report must be a JSON body (Content-Type: application/json).');
  return checkStatusReport(parseAgentJson(text));
}

/** A parsed body as a status report, or the ArmError (400) of its first problem. */
export function checkStatusReport(body: unknown): StatusReport {
  if (isStatusReport(body)) return body;
  return parseBody(statusReportSchema, body) as StatusReport;
}

/** Commits the report (its raw text is what is stored); a failed commit is a 503 to retry. */
export function commitStatusReport(svc: AgentServices, agentId: string, report: StatusReport, raw: string | Buffer, logError: (err: unknown) => void): Promise<void> {
  return new Promise((resolve, reject) => submitStatusReport(svc, agentId, report, raw, logError, (err) => (err === null ? resolve() : reject(err))));
}

/** The same with a callback: null once committed, or the 503 (the lean handler's path, without a promise per report). */
export function submitStatusReport(
  svc: AgentServices, agentId: string, report: StatusReport, raw: string | Buffer, logError: (err: unknown) => void, then: (err: ArmError | null) => void,
): void {
  svc.status.submit(agentId, report, raw, svc.wallNow(), (err) => {
    if (err === null) return then(null);
    logError(err);
    then(new ArmError(503, 'ServiceUnavailable', 'The status report could not be committed; send it again later.'));
  });
}

/** Seconds an agent waits before it sends a report again after a 503. */
export const STATUS_RETRY_AFTER_SECONDS = 5;
