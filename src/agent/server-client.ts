/**
 * The agent's calls to the server (the paths of src/protocol/agent-wire.ts), over one mTLS keep-alive
 * agent. Bodies are bounded; errors carry the server's ARM-shaped message.
 */
import type https from 'node:https';
import { AGENT_SEAT_HEADER, LIMITS } from '../protocol/agent-wire.js';
import type { StatusReport } from '../protocol/agent-wire.js';
import type { AgentCredentials } from './enrollment.js';
import { errorMessageOf, HttpError, mtlsAgent, request } from './http-client.js';

export type GoalStateAnswer =
  | { kind: 'unchanged' }
  /** 404: the server has no goal state for this agent yet (not a failure: no backoff). */
  | { kind: 'none' }
  | { kind: 'new'; body: Buffer; etag: string | null } | { kind: 'tooLarge'; message: string };

export class ServerClient {
  readonly agent: https.Agent;
  private readonly base: string;
  /** Sent with every request: the server tells this copy of the identity from another machine's (agent-seat.ts). */
  private readonly seat: Record<string, string>;

  constructor(creds: AgentCredentials, seat?: string) {
    this.seat = seat ? { [AGENT_SEAT_HEADER]: seat } : {};
    this.agent = mtlsAgent(creds.identity.privateKeyPem, creds.clientCertPem, creds.ca);
    this.base = `${creds.enrollment.serverUrl}/v1/agents/${encodeURIComponent(creds.enrollment.agentId)}`;
  }

  async goalState(etag: string | null): Promise<GoalStateAnswer> {
    let res;
    try {
      res = await request(`${this.base}/goalstate`, {
        agent: this.agent,
        headers: etag ? { ...this.seat, 'if-none-match': etag } : this.seat,
        maxBytes: LIMITS.goalStateBytes,
        timeoutMs: 30_000,
      });
    } catch (err) {
      if (err instanceof HttpError && err.status === 200) return { kind: 'tooLarge', message: `the goal state is larger than ${LIMITS.goalStateBytes} bytes` };
      throw err;
    }
    if (res.status === 304) return { kind: 'unchanged' };
    if (res.status === 404) return { kind: 'none' };
    if (res.status !== 200) throw new HttpError(`GET goalstate answered ${res.status}: ${errorMessageOf(res.body)}`, res.status);
    const tag = res.headers.etag;
    return { kind: 'new', body: res.body, etag: typeof tag === 'string' ? tag : null };
  }

  async putStatus(report: StatusReport): Promise<void> {
    const res = await request(`${this.base}/status`, {
      method: 'PUT',
      agent: this.agent,
      headers: { ...this.seat, 'content-type': 'application/json' },
      body: JSON.stringify(report),
      maxBytes: 64 * 1024,
      timeoutMs: 30_000,
    });
    if (res.status < 200 || res.status > 299) throw new HttpError(`PUT status answered ${res.status}: ${errorMessageOf(res.body)}`, res.status);
  }

  async approveEvents(eventIds: string[]): Promise<void> {
    const res = await request(`${this.base}/scheduledevents`, {
      method: 'POST',
      agent: this.agent,
      headers: { ...this.seat, 'content-type': 'application/json' },
      body: JSON.stringify({ StartRequests: eventIds.map((EventId) => ({ EventId })) }),
      maxBytes: 64 * 1024,
      timeoutMs: 30_000,
    });
    if (res.status < 200 || res.status > 299) throw new HttpError(`${res.status}: ${errorMessageOf(res.body)}`, res.status);
  }

  /** Tells the server this copy of the identity is stopping (a reboot): the next boot's agent is not refused for the lease. */
  async releaseSeat(timeoutMs: number): Promise<void> {
    if (!this.seat[AGENT_SEAT_HEADER]) return;
    await request(`${this.base}/seat`, { method: 'DELETE', agent: this.agent, headers: this.seat, maxBytes: 64 * 1024, timeoutMs });
  }

  close(): void {
    this.agent.destroy();
  }
}
