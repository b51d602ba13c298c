/**
 * Connections that never carried a request are ended when the server closes. Node's server.close() waits
 * for them (closeIdleConnections() ends only those that served a request), and this server turns request
 * timeouts off (long polls, streams): a port check, a browser's preconnect or a client's spare connection
 * held the shutdown until the client left, for ever if it stayed silent after its TLS handshake, and up to
 * the 120 s handshake timeout if it never sent a ClientHello.
 */
import type { Server } from 'node:net';
import type { Socket } from 'node:net';

/** A connection's key on both of its sockets (the TCP one and the TLS one over it). */
const keyOf = (s: Socket): string => `${s.remoteAddress}|${s.remotePort}`;

export interface QuietConnections {
  /** Destroys every open connection that has not sent a request. */
  closeQuiet(): void;
}

export function trackQuietConnections(server: Server): QuietConnections {
  const quiet = new Map<string, Socket>();
  server.on('connection', (socket: Socket) => {
    const key = keyOf(socket);
    quiet.set(key, socket);
    socket.once('close', () => {
      if (quiet.get(key) === socket) quiet.delete(key);
    });
  });
  // http and https servers emit 'request' with the request's socket (the TLS one for https).
  server.on('request', (req: { socket: Socket }) => quiet.delete(keyOf(req.socket)));
  return {
    closeQuiet() {
      for (const socket of quiet.values()) socket.destroy();
      quiet.clear();
    },
  };
}
