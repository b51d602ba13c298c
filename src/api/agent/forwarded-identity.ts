/**
 * An agent's identity as another replica vouches for it. A follower that is not the engine's leader
 * checks the agent's client certificate itself (mTLS, the shared agent CA) and forwards the request to
 * the leader with the certificate's fingerprint, a SHA-256 digest of the body it sends, and a proof: an
 * HMAC, under a key derived from the secret key every replica shares, of the time, method, path,
 * fingerprint and body digest. The leader accepts the fingerprint only with a valid proof less than a
 * minute old, and the body only when it has the digest signed: a client cannot make a proof, and a proof
 * seen once (a log, a proxy) cannot carry another body (a status report naming other extensions) under
 * the same agent's name within its minute.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const FINGERPRINT_HEADER = 'x-phasewise-agent-fingerprint';
export const PROOF_HEADER = 'x-phasewise-agent-proof';
export const BODY_DIGEST_HEADER = 'x-phasewise-agent-body-digest';
const MAX_SKEW_MS = 60_000;

/** The forwarding key: derived, so the sealing key itself is never used for anything else. */
export function forwardingKey(secretKey: Buffer): Buffer {
  return createHash('sha256').update('phasewise agent forwarding\n').update(secretKey).digest();
}

/** The SHA-256 of a body's bytes, in hex; no body is the empty one. */
export function bodyDigest(body: string | Buffer | null | undefined): string {
  return createHash('sha256').update(body ?? '').digest('hex');
}

function mac(key: Buffer, at: number, method: string, url: string, fingerprint: string, digest: string): string {
  return createHmac('sha256', key).update(`${at}\n${method.toUpperCase()}\n${url}\n${fingerprint}\n${digest}`).digest('hex');
}

/** The headers a follower adds to an agent request it forwards with `body` (null: none). */
export function vouch(key: Buffer, method: string, url: string, fingerprint: string, body: string | Buffer | null, now: number): Record<string, string> {
  const at = Math.floor(now);
  const digest = bodyDigest(body);
  return { [FINGERPRINT_HEADER]: fingerprint, [BODY_DIGEST_HEADER]: digest, [PROOF_HEADER]: `${at}.${mac(key, at, method, url, fingerprint, digest)}` };
}

/** What a forwarded request's proof vouches for: the agent's fingerprint and the digest its body must have. */
export interface VouchedIdentity {
  fingerprint: string;
  bodyDigest: string;
}

/** The identity a forwarded request carries, when its proof holds; null otherwise. Its body is checked once read. */
export function vouchedIdentity(key: Buffer, method: string, url: string, headers: IncomingHttpHeaders, now: number): VouchedIdentity | null {
  const fp = headers[FINGERPRINT_HEADER];
  const proof = headers[PROOF_HEADER];
  const digest = headers[BODY_DIGEST_HEADER];
  if (typeof fp !== 'string' || typeof proof !== 'string' || typeof digest !== 'string' || fp.length > 200 || proof.length > 200) return null;
  if (!/^[0-9a-f]{64}$/.test(digest)) return null;
  const m = /^(\d{1,16})\.([0-9a-f]{64})$/.exec(proof);
  if (!m) return null;
  const at = Number(m[1]);
  if (Math.abs(now - at) > MAX_SKEW_MS) return null;
  const expected = Buffer.from(mac(key, at, method, url, fp, digest), 'hex');
  return timingSafeEqual(expected, Buffer.from(m[2]!, 'hex')) ? { fingerprint: fp, bodyDigest: digest } : null;
}
