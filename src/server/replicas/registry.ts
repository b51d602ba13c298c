/**
 * Where each `serve` replica answers, kept in PostgreSQL: a follower forwards reads to the leader's
 * address, trusting exactly the certificate the leader registered (replicas have certificates of their own).
 */
import type pg from 'pg';
import { ENGINE_LEASE } from '../../store/postgres/lease.js';

export interface Endpoint {
  holder: string;
  url: string;
  cert: string;
}

/** Records (or refreshes) this replica's address. */
export async function announce(client: pg.Client, me: Endpoint): Promise<void> {
  await client.query(
    `INSERT INTO replicas (holder, url, cert, seen_at) VALUES ($1, $2, $3, clock_timestamp())
     ON CONFLICT (holder) DO UPDATE SET url = excluded.url, cert = excluded.cert, seen_at = excluded.seen_at`,
    [me.holder, me.url, me.cert],
  );
  // Replicas gone for a day are forgotten (each restart has a new name).
  await client.query("DELETE FROM replicas WHERE seen_at < clock_timestamp() - interval '1 day'");
}

/** The replica that holds the engine lease now (unexpired), or null while none does. */
export async function leaderEndpoint(client: pg.Client): Promise<Endpoint | null> {
  const { rows } = await client.query<Endpoint>(
    `SELECT r.holder, r.url, r.cert FROM leases l JOIN replicas r ON r.holder = l.holder
     WHERE l.name = $1 AND l.expires_at > clock_timestamp()`,
    [ENGINE_LEASE],
  );
  return rows[0] ?? null;
}
