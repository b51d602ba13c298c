/**
 * Raw HTTP over TLS, for requests fetch will not send (bad framing, bad escapes, huge headers) and to
 * see exactly what the server answers, including its Connection header.
 */
import { connect } from 'node:tls';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The whole answer as received. */
  text: string;
}

/**
 * Sends `request` as is and reads until the server closes the connection, `ms` pass, or (with `one`)
 * a whole response with a Content-Length has arrived (a keep-alive server would hold the socket open).
 */
export function rawExchange(url: string, request: string | Buffer, ms = 5_000, one = false): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: u.hostname, port: Number(u.port), servername: u.hostname });
    const chunks: Buffer[] = [];
    const done = () => { clearTimeout(timer); socket.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
    const timer = setTimeout(done, ms);
    socket.on('secureConnect', () => socket.write(request));
    socket.on('data', (d) => {
      chunks.push(d);
      if (one && complete(Buffer.concat(chunks).toString('latin1'))) done();
    });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', (err) => { clearTimeout(timer); if (chunks.length > 0) done(); else reject(err); });
  });
}

/** The first response in `text`. */
export function parseResponse(text: string): RawResponse {
  const head = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, head < 0 ? text.length : head).split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = head < 0 ? '' : text.slice(head + 4);
  if (headers['content-length']) body = body.slice(0, Number(headers['content-length']));
  else if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
  return { status, headers, body, text };
}

function dechunk(s: string): string {
  let out = '';
  for (let i = 0; i < s.length;) {
    const eol = s.indexOf('\r\n', i);
    const n = parseInt(s.slice(i, eol), 16);
    if (!n) break;
    out += s.slice(eol + 2, eol + 2 + n);
    i = eol + 2 + n + 2;
  }
  return out;
}

/** A GET request line and headers, as a keep-alive client sends it. */
export function rawGet(path: string, token: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n${extra}\r\n`;
}

function complete(text: string): boolean {
  const head = text.indexOf('\r\n\r\n');
  if (head < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, head));
  return length !== null && Buffer.byteLength(text.slice(head + 4), 'latin1') >= Number(length[1]);
}
