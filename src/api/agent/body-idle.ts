/**
 * The bound on a request body that stops arriving, on every path the router reads (the lean agent
 * handler applies the same bound to its status reports itself). The server has no overall request
 * timeout (long polls, package uploads and long ARM calls need none), so a body that pauses for good
 * would hold its connection, and what was buffered, for ever; a request answered before its body was
 * read (a 401) still has the rest read and dropped, and on the ARM routes a token of any role was enough.
 */
import type { IncomingMessage } from 'node:http';

/** How long a request body may pause between two bytes before its connection is closed. */
export const BODY_IDLE_MS = 15_000;
/** The same on the agent channel (the name its callers and tests know). */
export const AGENT_BODY_IDLE_MS = BODY_IDLE_MS;

/**
 * For a request the router reads: closes its connection when no byte of the body arrived for `idleMs`.
 * It watches the socket's byte count rather than the request's 'data' events, which belong to the router
 * (a listener here would start the stream flowing before the router reads it).
 */
export function closeStalledBody(req: IncomingMessage, idleMs = BODY_IDLE_MS): void {
  if (req.complete || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) return;
  const sock = req.socket;
  let seen = sock.bytesRead;
  let movedAt = performance.now();
  const timer = setInterval(() => {
    if (req.complete || sock.destroyed) return void clearInterval(timer);
    if (sock.bytesRead !== seen || req.isPaused()) {
      seen = sock.bytesRead;
      movedAt = performance.now();
    } else if (performance.now() - movedAt >= idleMs) {
      clearInterval(timer);
      sock.destroy();
    }
  }, Math.ceil(idleMs / 5));
  timer.unref();
  req.once('end', () => clearInterval(timer));
  req.once('close', () => clearInterval(timer));
}
