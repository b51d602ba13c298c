/**
 * An agent's identity as another replica vouches for it. A follower that is not the engine's leader
 * checks the agent's client certificate itself (mTLS, the shared agent CA) and forwards the request to
 * the leader with the certificate's fingerprint and a proof: an HMAC, under a key derived from the
 * secret key every replica shares, of the time, method, path and fingerprint. The leader accepts the
 * fingerprint only with a valid proof less than a minute old; a client cannot make one.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const FINGERPRINT_HEADER = 'x-phasewise-agent-fingerprint';
export const PROOF_HEADER = 'x-phasewise-agent-proof';
const MAX_SKEW_MS = 60_000;

/** The forwarding key: derived, so the sealing key itself is never used for anything else. */
export function forwardingKey(secretKey: Buffer): Buffer {
  return createHash('sha256').update('phasewise agent forwarding\n').update(secretKey).digest();
}

function mac(key: Buffer, at: number, method: string, url: string, fingerprint: string): string {
  return createHmac('sha256', key).update(`${at}\n${method.toUpperCase()}\n${url}\n${fingerprint}`).digest('hex');
}

/** The headers a follower adds to an agent request it forwards. */
export function vouch(key: Buffer, method: string, url: string, fingerprint: string, now: number): Record<string, string> {
  const at = Math.floor(now);
  return { [FINGERPRINT_HEADER]: fingerprint, [PROOF_HEADER]: `${at}.${mac(key, at, method, url, fingerprint)}` };
}

/** The fingerprint a forwarded request carries, when its proof holds; null otherwise. */
export function vouchedFingerprint(key: Buffer, method: string, url: string, headers: IncomingHttpHeaders, now: number): string | null {
  const fp = headers[FINGERPRINT_HEADER];
  const proof = headers[PROOF_HEADER];
  if (typeof fp !== 'string' || typeof proof !== 'string' || fp.length > 200 || proof.length > 200) return null;
  const m = /^(\d{1,16})\.([0-9a-f]{64})$/.exec(proof);
  if (!m) return null;
  const at = Number(m[1]);
  if (Math.abs(now - at) > MAX_SKEW_MS) return null;
  const expected = Buffer.from(mac(key, at, method, url, fp), 'hex');
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex')) ? fp : null;
}
