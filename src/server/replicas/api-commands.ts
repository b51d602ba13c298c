/**
 * API writes as commands: whichever replica takes a write (a PUT, PATCH, POST or DELETE) queues the
 * request itself in PostgreSQL's command table; the leader runs it through the same API handlers and
 * stores the response in the same transaction as the write's effects (command-runner.ts). The replica
 * that took it waits for that response and returns it. A write is acknowledged only with a response:
 * the one its handler gave, or 202 Accepted with the command's address when the leader is slow or gone;
 * a queued command survives the leader's death and is run by the next one.
 */
import type pg from 'pg';
import type { Principal } from '../../api/arm/auth.js';
import type { SecretBox } from '../../api/arm/secrets.js';
import { COMMANDS_CHANNEL } from '../../store/postgres/commands.js';
import { BODY_DIGEST_HEADER, FINGERPRINT_HEADER, PROOF_HEADER } from '../../api/agent/forwarded-identity.js';

export const API_REQUEST = 'api-request';
/** Marks a request as one the runner injects: it carries the principal the queuing replica authenticated. */
export const INTERNAL_HEADER = 'x-phasewise-command';
export const PRINCIPAL_HEADER = 'x-phasewise-principal';
/** NOTIFY'd with a command's id in the transaction that stores its response. */
export const DONE_CHANNEL = 'phasewise_command_done';

export interface ApiRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body as the client sent it (bounded by maxBodyBytes before it is queued). */
  body: string;
  /** Who sent it, as authenticated by the replica that took it. */
  principal: Principal;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The commit version whose transaction ran it (read from the command's row, not stored in the response). */
  version?: number;
}

/** Headers only replicas may set: whatever a client sends under these names is dropped. */
export const INTERNAL_HEADERS: ReadonlySet<string> = new Set([INTERNAL_HEADER, PRINCIPAL_HEADER, FINGERPRINT_HEADER, PROOF_HEADER, BODY_DIGEST_HEADER]);

/** Request headers not carried into a command: hop-by-hop, the token (the principal replaces it), sizes. */
const DROPPED_REQUEST = new Set(['authorization', 'connection', 'keep-alive', 'content-length', 'transfer-encoding', 'upgrade', 'expect', 'te', 'trailer']);
/** Response headers worth returning: what ARM clients read. */
const KEPT_RESPONSE = new Set(['content-type', 'location', 'azure-asyncoperation', 'retry-after', 'etag', 'x-ms-request-id', 'x-ms-client-request-id']);

export function requestHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    const name = k.toLowerCase();
    if (v === undefined || DROPPED_REQUEST.has(name) || INTERNAL_HEADERS.has(name)) continue;
    out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export function responseHeaders(raw: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (KEPT_RESPONSE.has(k.toLowerCase()) && v !== undefined) out[k.toLowerCase()] = String(v);
  return out;
}

/**
 * Requests and responses are stored sealed (AES-256-GCM with the replicas' shared secretKey, the box
 * protected settings use): a write's body may carry protected settings and a response a secret (a new
 * enrollment token), which must not sit in clear in the database for the day a done command is kept.
 * The seal also authenticates: a row not sealed with the replicas' key is never run as a request.
 */
export class CommandSeal {
  constructor(private readonly box: SecretBox) {}

  /** The `body` column of a queued request. */
  request(req: ApiRequest): string {
    return JSON.stringify({ sealed: this.box.seal(req) });
  }

  /** The request a row holds; throws if it was not sealed with this key. */
  openRequest(body: unknown): ApiRequest {
    return this.box.open(sealedText(body)) as ApiRequest;
  }

  /** What `markDoneSql` stores as a command's result. */
  response(r: ApiResponse): { sealed: string } {
    return { sealed: this.box.seal(r) };
  }

  /** The response in a `result` column's text; throws if it was not sealed with this key. */
  openResponse(text: string): ApiResponse {
    return this.box.open(sealedText(JSON.parse(text) as unknown)) as ApiResponse;
  }
}

function sealedText(stored: unknown): string {
  const sealed = (stored as { sealed?: unknown } | null)?.sealed;
  if (typeof sealed !== 'string') throw new Error('the command is not sealed (queued by an older Phasewise, or not by a replica)');
  return sealed;
}

/** At most this many writes wait for a leader: beyond, a replica refuses new ones (503) rather than grow the queue without bound. */
export const MAX_QUEUED = 10_000;
/** Done commands (and the responses they keep) are deleted this long after they ran. */
export const KEEP_DONE_MS = 24 * 3_600_000;

export class QueueFull extends Error {}

/** Queues a request; its command id once durable. */
export async function submit(client: pg.Client, seal: CommandSeal, req: ApiRequest, maxQueued = MAX_QUEUED): Promise<number> {
  const { rows } = await client.query<{ id: number }>(
    `WITH c AS (
       INSERT INTO commands (kind, body) SELECT $1, $2 WHERE (SELECT count(*) FROM (SELECT 1 FROM commands WHERE done_at IS NULL LIMIT $3) q) < $3
       RETURNING id
     ) SELECT id, pg_notify('${COMMANDS_CHANNEL}', id::text) FROM c`,
    [API_REQUEST, seal.request(req), maxQueued],
  );
  if (!rows[0]) throw new QueueFull(`${maxQueued} writes already wait for the engine's leader`);
  return Number(rows[0].id);
}

/** Deletes commands done more than KEEP_DONE_MS ago (their responses were fetched long since). */
export async function pruneDone(client: pg.Client, keepMs = KEEP_DONE_MS): Promise<number> {
  const { rowCount } = await client.query(`DELETE FROM commands WHERE done_at < clock_timestamp() - $1 * interval '1 millisecond'`, [keepMs]);
  return rowCount ?? 0;
}

/**
 * What a command's row says now, to the caller `principal` names: its response once the leader ran it,
 * null while it waits. Another caller's command is not found (its response may hold a secret).
 */
export async function responseOf(client: pg.Client, seal: CommandSeal, id: number, principal: string): Promise<{ found: boolean; response: ApiResponse | null }> {
  const { rows } = await client.query<{ done: boolean; body: string; result: string | null }>(
    'SELECT done_at IS NOT NULL AS done, body, result FROM commands WHERE id = $1 AND kind = $2', [id, API_REQUEST]);
  const r = rows[0];
  if (!r || !ownedBy(seal, r.body, principal)) return { found: false, response: null };
  return { found: true, response: r.done && r.result ? seal.openResponse(r.result) : null };
}

function ownedBy(seal: CommandSeal, body: string, principal: string): boolean {
  try {
    return seal.openRequest(JSON.parse(body) as unknown).principal.name === principal;
  } catch {
    return false; // not sealed with this key: nobody's here
  }
}

/**
 * Waits for commands' responses: a LISTEN connection wakes the waiters, and a poll every POLL_MS
 * covers a lost notification or a dropped connection.
 */
export class ResponseWaiter {
  private readonly waiting = new Map<number, Array<(r: ApiResponse | null) => void>>();
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  static readonly POLL_MS = 250;

  constructor(private readonly client: pg.Client, private readonly listener: pg.Client | null, private readonly seal: CommandSeal) {}

  async start(): Promise<void> {
    if (this.listener) {
      this.listener.on('notification', (n) => {
        if (n.channel === DONE_CHANNEL && n.payload && this.waiting.has(Number(n.payload))) void this.poll();
      });
      await this.listener.query(`LISTEN ${DONE_CHANNEL}`);
    }
    this.timer = setInterval(() => void this.poll(), ResponseWaiter.POLL_MS);
    this.timer.unref();
  }

  /** The command's response, or null after `timeoutMs` without one. */
  wait(id: number, timeoutMs: number): Promise<ApiResponse | null> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (r: ApiResponse | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const list = (this.waiting.get(id) ?? []).filter((f) => f !== finish);
        if (list.length > 0) this.waiting.set(id, list);
        else this.waiting.delete(id);
        resolve(r);
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      this.waiting.set(id, [...(this.waiting.get(id) ?? []), finish]);
      void this.poll();
    });
  }

  private async poll(): Promise<void> {
    if (this.polling || this.waiting.size === 0) return;
    this.polling = true;
    try {
      const ids = [...this.waiting.keys()];
      const { rows } = await this.client.query<{ id: number; result: string; version: number | null }>(
        'SELECT id, result, version FROM commands WHERE id = ANY($1::bigint[]) AND done_at IS NOT NULL', [ids]);
      for (const r of rows) {
        let response: ApiResponse | null;
        try {
          response = { ...this.seal.openResponse(r.result), ...(r.version === null ? {} : { version: Number(r.version) }) };
        } catch {
          response = null; // not the runner's (another key): the write is answered 202, its row says the rest
        }
        for (const f of this.waiting.get(Number(r.id)) ?? []) f(response);
      }
    } catch {
      // The database is away: the waiters time out and answer 202; the commands stay queued.
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const list of this.waiting.values()) for (const f of list) f(null);
  }
}

/** The 202 a write gets when its response did not come in time: it is queued and will run. */
export function acceptedResponse(id: number, baseUrl: string, retryAfterSeconds: number): ApiResponse {
  const location = `${baseUrl}/phasewise/commands/${id}`;
  return {
    status: 202,
    headers: { 'content-type': 'application/json', location, 'retry-after': String(Math.max(1, retryAfterSeconds)) },
    body: JSON.stringify({ id, status: 'Queued', message: 'The write is stored and will be applied by the engine\'s leader; GET the location for its response.' }),
  };
}

export { COMMANDS_CHANNEL };
