/**
 * How a request body is encoded, checked before it is read: the server reads bodies as they arrive, in
 * UTF-8. A compressed body (`Content-Encoding: gzip`) was read as if it were plain (a gzip body then
 * failed as "not valid JSON", a plain one marked gzip was taken), and a JSON body declared in another
 * charset was decoded as UTF-8 — in both cases read differently from what was sent. Both are a 415 now.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ArmError } from './errors.js';

const UTF8 = /^(utf-?8|us-ascii|ascii)$/i;

/** The 415 for a body this server would misread, or null when it reads the body as sent. */
export function bodyEncodingProblem(headers: IncomingHttpHeaders, textual: boolean): ArmError | null {
  const coding = (headers['content-encoding'] ?? '').trim();
  if (coding !== '' && coding.toLowerCase() !== 'identity') {
    return new ArmError(415, 'UnsupportedMediaType', `Content-Encoding '${coding.slice(0, 50)}' is not supported: send the body uncompressed (no Content-Encoding).`);
  }
  if (!textual) return null;
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(headers['content-type'] ?? '')?.[1];
  if (charset !== undefined && !UTF8.test(charset)) {
    const expected = 'JSON bodies are read as UTF-8 (Content-Type: application/json or application/json; charset=utf-8)';
    return new ArmError(415, 'UnsupportedMediaType', `The charset '${charset.slice(0, 50)}' is not supported: ${expected}.`);
  }
  return null;
}
