/**
 * Conditional writes: `If-Match` and `If-None-Match` on PUT, PATCH and DELETE (the Azure SDKs send them
 * as `ifMatch` / `ifNoneMatch`; `ifNoneMatch: "*"` is how a client creates a resource without ever
 * replacing one that exists). Phasewise issues no ETags, so `*` (the resource exists) is the only entity
 * tag a condition can name that the server can judge. Ignoring the headers, as the server once did, let
 * a create-only PUT replace what a user had stored (docs/api.md#conditional-requests).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ArmError, badRequest } from './errors.js';

// POST too: an action's URL has no GET, so a condition on it is refused; it used to run whatever the condition said.
const CONDITIONAL_METHODS = new Set(['PUT', 'PATCH', 'DELETE', 'POST']);
const SKIPPED_HEADERS = /^(content-|transfer-encoding$|if-|expect$|connection$)/i;

/** A request's `If-Match` and `If-None-Match`, trimmed (null: absent). */
export type Condition = { ifMatch: string | null; ifNoneMatch: string | null };

/** The conditions of a request; an empty header counts as absent (fetch and some proxies send one). */
export function conditionOf(headers: Record<string, string | string[] | undefined>): Condition | null {
  const one = (name: string): string | null => {
    const v = headers[name];
    const text = (Array.isArray(v) ? v.join(',') : v ?? '').trim();
    return text === '' ? null : text;
  };
  const c = { ifMatch: one('if-match'), ifNoneMatch: one('if-none-match') };
  return c.ifMatch === null && c.ifNoneMatch === null ? null : c;
}

/**
 * The verdict on a condition once the resource's existence is known: null to go on, else the error.
 * Pure, so every combination is tested without a server (test/preconditions.test.ts).
 */
export function judgeCondition(c: Condition, exists: boolean): ArmError | null {
  if (c.ifNoneMatch !== null) {
    if (c.ifNoneMatch === '*') {
      if (exists) return new ArmError(412, 'PreconditionFailed', 'The resource exists; If-None-Match: * allows only its creation. Nothing was changed.', 'If-None-Match');
    } else {
      return badRequest('InvalidHeaderValue', `If-None-Match: only * (create, never replace) is supported; this server issues no ETags (got '${c.ifNoneMatch.slice(0, 100)}').`, 'If-None-Match');
    }
  }
  if (c.ifMatch !== null) {
    if (c.ifMatch === '*') {
      if (!exists) return new ArmError(412, 'PreconditionFailed', 'The resource does not exist; If-Match: * allows only a change of an existing one. Nothing was changed.', 'If-Match');
    } else {
      // No ETag was ever issued, so none can match (RFC 9110 §13.1.1): refuse rather than overwrite.
      const what = `If-Match '${c.ifMatch.slice(0, 100)}' names an ETag this server never issued; it issues none`;
      return new ArmError(412, 'PreconditionFailed', `${what}. Send If-Match: * or no If-Match. Nothing was changed.`, 'If-Match');
    }
  }
  return null;
}

/**
 * Judges conditional PUT, PATCH and DELETE before their handler runs. Whether the resource exists is
 * what a GET of the same URL with the caller's credentials says (200: it does; 404: it does not), so
 * every route is covered the same way; a route without a GET refuses conditions it cannot judge.
 * Conditional requests to one resource take turns from the check until their answer has left: two
 * create-only PUTs sent at once cannot both see "absent" and the second replace the first.
 */
export function registerPreconditions(app: FastifyInstance): void {
  const turns = new Map<string, Promise<void>>();
  const RELEASE = Symbol('precondition turn');
  type Held = FastifyRequest & { [RELEASE]?: () => void };

  app.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!CONDITIONAL_METHODS.has(req.method) || req.url.startsWith('/v1/')) return; // the agent channel has its own protocol
    const c = conditionOf(req.headers);
    if (c === null) return;
    const pattern = req.routeOptions.url;
    if (pattern === undefined) return; // no such route: the 404 says so
    if (!app.hasRoute({ method: 'GET', url: pattern })) {
      throw badRequest('UnsupportedConditionalRequest', `${req.method} ${pattern} does not take If-Match or If-None-Match.`, c.ifMatch !== null ? 'If-Match' : 'If-None-Match');
    }
    const key = req.url.split('?')[0]!.toLowerCase().replace(/\/+$/, '');
    const before = turns.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const chained = before.then(() => mine);
    turns.set(key, chained);
    const end = () => {
      release();
      if (turns.get(key) === chained) turns.delete(key);
    };
    (req as Held)[RELEASE] = end;
    // A client that goes away may leave no onResponse; the response's close always comes (and ends it once).
    reply.raw.once('close', end);
    await before;
    // The caller's own headers, so the read is the caller's (a replica's queued write authenticates by its
    // internal headers, not a token): all but those of the body and the conditions themselves.
    const headers: Record<string, string> = {};
    for (const [h, v] of Object.entries(req.headers)) if (typeof v === 'string' && !SKIPPED_HEADERS.test(h)) headers[h] = v;
    const read = await app.inject({ method: 'GET', url: req.url, headers });
    // Anything else (a bad api-version, a missing group) is the handler's to answer, as without conditions.
    if (read.statusCode !== 200 && read.statusCode !== 404) return;
    const err = judgeCondition(c, read.statusCode === 200);
    if (err) throw err;
  });
  // The turn ends when the answer has left.
  app.addHook('onResponse', async (req: FastifyRequest) => {
    (req as Held)[RELEASE]?.();
  });
}
