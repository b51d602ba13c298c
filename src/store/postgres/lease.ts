/**
 * Leadership on PostgreSQL: one row per lease (`leases`), taken when it expired, renewed by its
 * holder, and a fencing token that grows at every change of holder. Time is the server's clock only,
 * so replicas' clocks may disagree. The token is what makes it safe: every engine commit checks it in
 * its own transaction (`phasewise_fence`), so a holder that was paused or cut off past its lease can
 * never commit afterwards, whatever its own timers believe.
 */
import type pg from 'pg';
import type { Fence } from './pg-store.js';

export const ENGINE_LEASE = 'engine';
/** The default lease: a dead leader is replaced within this (plus the new leader's recovery). */
export const DEFAULT_LEASE_MS = 10_000;

/** Takes the lease if it is free or expired; the fence to commit with, or null if another holds it. */
export async function tryAcquire(client: pg.Client, holder: string, leaseMs = DEFAULT_LEASE_MS, lease = ENGINE_LEASE): Promise<Fence | null> {
  const { rows } = await client.query<{ token: number }>(
    `UPDATE leases SET holder = $2, token = token + 1, expires_at = clock_timestamp() + $3 * interval '1 millisecond'
     WHERE name = $1 AND (holder IS NULL OR expires_at <= clock_timestamp()) RETURNING token`,
    [lease, holder, leaseMs],
  );
  return rows[0] ? { lease, holder, token: Number(rows[0].token) } : null;
}

/** Extends the lease; false when it is no longer this holder's (expired and taken, or released). */
export async function renew(client: pg.Client, fence: Fence, leaseMs = DEFAULT_LEASE_MS): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE leases SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
     WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > clock_timestamp()`,
    [fence.lease, fence.holder, fence.token, leaseMs],
  );
  return rowCount === 1;
}

/** Gives the lease up at once (a clean shutdown): another replica need not wait for it to expire. */
export async function release(client: pg.Client, fence: Fence): Promise<void> {
  await client.query("UPDATE leases SET holder = NULL, expires_at = '-infinity' WHERE name = $1 AND holder = $2 AND token = $3", [fence.lease, fence.holder, fence.token]);
}

export interface LeaseView {
  holder: string | null;
  token: number;
  /** Milliseconds left by the server's clock (negative once expired). */
  remainingMs: number;
}

export async function readLease(client: pg.Client, lease = ENGINE_LEASE): Promise<LeaseView | null> {
  const { rows } = await client.query<{ holder: string | null; token: number; remaining: number }>(
    "SELECT holder, token, greatest(-1e12, least(1e12, extract(epoch FROM (expires_at - clock_timestamp())) * 1000))::float8 AS remaining FROM leases WHERE name = $1",
    [lease],
  );
  const r = rows[0];
  return r ? { holder: r.holder, token: Number(r.token), remainingMs: Number(r.remaining) } : null;
}
