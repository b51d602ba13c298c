/**
 * Errors raised below the routes, before a handler runs: a URL fastify cannot decode, a path segment
 * over the limit (fastify's `frameworkErrors`), and what Node's HTTP parser refuses (headers or URL over
 * `maxHeaderSize`, malformed framing: the server's `clientError`; a missing Host, an unmet Expect). Each is answered as an ARM error with
 * an `x-ms-request-id`; when the connection cannot be trusted any more it says `Connection: close`.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ArmError } from './errors.js';
import { lingerOnClose } from './linger.js';

/** Longest path segment (a resource name) the router accepts (docs/api.md#limits). */
export const MAX_PATH_SEGMENT = 1000;
/** Node's limit on the request line and headers together (docs/api.md#limits). */
export const MAX_HEADER_BYTES = 16 * 1024;

/** fastify's `frameworkErrors`: the errors of routing, before any hook runs. */
export function frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const arm = err.code === 'FST_ERR_MAX_PARAM_LENGTH'
    ? new ArmError(414, 'RequestUriTooLong', `A segment of the request path is longer than ${MAX_PATH_SEGMENT} characters (limit maxPathSegmentLength).`)
    : new ArmError(400, 'InvalidRequestUri', `The request path is not a valid URL: ${err.code === 'FST_ERR_BAD_URL' ? 'it has a bad percent-escape' : err.message}.`);
  void reply.header('x-ms-request-id', req.id).status(arm.status).type('application/json').send(arm.body());
}

/** Node's parser errors as ARM answers. */
function parserError(err: NodeJS.ErrnoException): ArmError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new ArmError(431, 'RequestHeaderFieldsTooLarge', `The request line and headers are larger than ${MAX_HEADER_BYTES} bytes (limit maxHeaderBytes).`);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new ArmError(408, 'RequestTimeout', 'The request was not received in time.');
    default:
      return new ArmError(400, 'BadRequest', `The request is not well-formed HTTP/1.1 (${err.code ?? 'parse error'}); the connection is closed.`);
  }
}

/**
 * The server's `clientError` handler. The parser cannot resume after such an error, so the answer says
 * `Connection: close` and the socket ends once the answer is written.
 */
export function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const arm = parserError(err);
  const body = JSON.stringify(arm.body());
  const head = [
    `HTTP/1.1 ${arm.status} ${STATUS_CODES[arm.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `x-ms-request-id: ${randomUUID()}`,
    'Connection: close',
  ].join('\r\n');
  socket.end(`${head}\r\n\r\n${body}`);
  // A client that never reads must not hold the socket open.
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/**
 * Node's options for every ARM-facing HTTPS server. `requireHostHeader: false`: Node answered an HTTP/1.1
 * request without Host with a bare 400 of its own (no ARM body, no request id); `hostHeaderError` refuses it instead.
 */
export const ARM_HTTP_SERVER_OPTIONS = { maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false } as const;

/** An HTTP/1.1 request without Host, which HTTP/1.1 servers must refuse with a 400 (RFC 9112, section 3.2). */
export function hostHeaderError(req: IncomingMessage): ArmError | null {
  if (req.httpVersion !== '1.1' || req.headers.host !== undefined) return null;
  return new ArmError(400, 'BadRequest', 'An HTTP/1.1 request must carry a Host header.');
}

/**
 * Answers an `Expect` other than `100-continue` (Node's `checkExpectation`) with an ARM `417`; without a
 * listener Node answered a bare one. The body was not read: the connection closes after the answer, lingering.
 */
export function answerExpectations(server: Server): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const expect = String(req.headers.expect).slice(0, 100);
    const arm = new ArmError(417, 'ExpectationFailed', `The server only meets 'Expect: 100-continue', not '${expect}'; send the request without it.`);
    lingerOnClose(req.socket as Socket);
    res.writeHead(arm.status, { 'content-type': 'application/json; charset=utf-8', 'x-ms-request-id': randomUUID(), connection: 'close' });
    res.end(JSON.stringify(arm.body()));
  });
}

/**
 * Fastify options every ARM-facing server shares (the API, a replica's follower front): ARM's
 * case-insensitive routing, the path-segment bound, ARM errors below the routes, a request id per request.
 */
export function armRequestOptions() {
  return {
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: MAX_PATH_SEGMENT },
    frameworkErrors: frameworkError,
    clientErrorHandler: clientError,
    genReqId: () => randomUUID(),
    requestIdHeader: false as const,
  };
}
