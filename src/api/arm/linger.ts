/**
 * A lingering close for a request answered before its body was read (a 401 for a bad token on a 4 MB
 * package upload, a 413, a 404). The answer carries `Connection: close`, and Node destroys the socket as
 * soon as the answer is written: the body the client is still sending then meets a closed socket, its TCP
 * stack gets a reset, and the client sees EPIPE or ECONNRESET instead of the answer (8 in 10 such uploads).
 * Here the socket is half-closed instead (the answer and a FIN go out) and what still arrives is read and
 * dropped until the client closes its side, for at most LINGER_MS and LINGER_BYTES, as web servers do
 * (nginx's lingering_close); a client that sends on past either is cut off as before.
 */
import type { Socket } from 'node:net';

/** The longest a half-closed socket reads on for its client to stop sending. */
export const LINGER_MS = 2_000;
/** The most a half-closed socket reads and drops: a refused body is not taken in whole (api-hardening.test.ts). */
export const LINGER_BYTES = 8 * 1024 * 1024;

const LINGERING = Symbol('lingering');

/** Makes the socket's close after this answer a lingering one (once per socket). */
export function lingerOnClose(socket: Socket | null | undefined, lingerMs = LINGER_MS, lingerBytes = LINGER_BYTES): void {
  if (!socket || socket.destroyed) return;
  const s = socket as Socket & { [LINGERING]?: true; destroySoon?: () => void };
  if (s[LINGERING]) return;
  s[LINGERING] = true;
  // Node's HTTP server calls destroySoon() once a `Connection: close` answer is written.
  s.destroySoon = function destroySoon(this: Socket) {
    this.end();
    // Not unref'd: the half-closed socket alone did not keep the process alive, so a server's close() waiting for it
    // never ended once nothing else was left to run (api-agent-enroll's after hooks failed, 'Promise resolution is still pending').
    const timer = setTimeout(() => this.destroy(), lingerMs);
    this.once('close', () => clearTimeout(timer));
    const until = this.bytesRead + lingerBytes;
    this.on('data', () => {
      if (this.bytesRead > until) this.destroy();
    });
    this.resume(); // keep reading (the parser drops a dumped body), so the client's writes are taken, not reset
  };
}
