/**
 * An answer given before the request's body arrived (a 401 for a bad token on a package upload) reaches
 * the client still sending that body: the server half-closes and reads on (src/api/arm/linger.ts). It
 * destroyed the socket at once, and 8 in 10 such 4 MB uploads saw EPIPE or ECONNRESET, not the 401.
 * A real `phasewise serve` process: with client and server in one process the race did not show.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServe, stopServe } from './helpers/cli.js';
import type { Served } from './helpers/cli.js';

interface Sent { method: string; body: Buffer | string; headers: Record<string, string> }

/** One request on its own connection: `status connection code`, or the client's error code. */
function once(url: string, ca: Buffer, sent: Sent): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { method: sent.method, ca, agent: false, headers: sent.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        let code = '?';
        try {
          code = (JSON.parse(body) as { error: { code: string } }).error.code;
        } catch {
          // not an ARM error
        }
        resolve(`${res.statusCode} ${res.headers.connection ?? ''} ${code}`);
      });
      res.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(sent.body);
  });
}

async function outcomes(url: string, ca: Buffer, sent: Sent, n: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const key = await once(url, ca, sent);
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

describe('answers given before the body arrived', () => {
  const data = mkdtempSync(join(tmpdir(), 'pw-early-'));
  let s: Served;
  let ca: Buffer;
  before(async () => {
    s = await startServe(['--data-dir', data, '--port', '0', '--host', '127.0.0.1']);
    ca = readFileSync(join(data, 'tls', 'cert.pem'));
  });
  after(async () => {
    if (s) await stopServe(s, 'SIGTERM');
    rmSync(data, { recursive: true, force: true });
  });

  test('a 4 MB package upload with a wrong token gets its 401, every time, not a reset', async () => {
    const body = Buffer.alloc(4_000_000, 0x61);
    const url = `${s.url}/phasewise/publishers/Contoso/extensionTypes/Agent/versions/9.0.0.0/package`;
    const seen = await outcomes(url, ca, { method: 'PUT', body, headers: { authorization: 'Bearer wrong-token', 'content-type': 'application/zip' } }, 10);
    assert.deepEqual(seen, { '401 close InvalidAuthenticationToken': 10 });
  });

  test('an enrollment with a wrong token and a 2 MB body gets its 401, every time', async () => {
    const body = JSON.stringify({ certificatePem: 'x'.repeat(2_000_000) });
    const seen = await outcomes(`${s.url}/v1/enroll`, ca, { method: 'POST', body, headers: { authorization: 'Bearer wrong-token', 'content-type': 'application/json' } }, 10);
    const [[key, n]] = Object.entries(seen) as [[string, number]];
    assert.equal(n, 10, JSON.stringify(seen));
    assert.match(key, /^(401|413) close /, JSON.stringify(seen));
  });
});
