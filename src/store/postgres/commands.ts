/**
 * The command queue: API writes taken by any replica, for the engine's leader to apply. A write is
 * acknowledged once its row is committed; the leader marks it done in the same transaction as its
 * effects (`PgStore.withNextCommit`), so a leader that dies before that commit leaves it for the next
 * leader, and one that dies after it never applies it again. NOTIFY wakes the leader at once; it also
 * polls, so a lost notification only delays.
 */
import type pg from 'pg';
import { literal } from './sql-batch.js';

export const COMMANDS_CHANNEL = 'phasewise_commands';

export interface QueuedCommand {
  id: number;
  kind: string;
  body: unknown;
}

/** Queues a command (and wakes the leader); its id once it is durable. */
export async function enqueueCommand(client: pg.Client, kind: string, body: unknown): Promise<number> {
  const { rows } = await client.query<{ id: number }>(
    `WITH c AS (INSERT INTO commands (kind, body) VALUES ($1, $2) RETURNING id) SELECT id, pg_notify('${COMMANDS_CHANNEL}', id::text) FROM c`,
    [kind, JSON.stringify(body)],
  );
  return Number(rows[0]!.id);
}

/** Commands not done yet, oldest first. */
export async function openCommands(client: pg.Client, afterId = 0, limit = 100): Promise<QueuedCommand[]> {
  const { rows } = await client.query<{ id: number; kind: string; body: string }>(
    'SELECT id, kind, body FROM commands WHERE done_at IS NULL AND id > $1 ORDER BY id LIMIT $2',
    [afterId, limit],
  );
  return rows.map((r) => ({ id: Number(r.id), kind: r.kind, body: JSON.parse(r.body) as unknown }));
}

/** The statement that marks a command done with its result (part of the engine commit that applied it). */
export function markDoneSql(id: number, result: unknown): string {
  return `UPDATE commands SET done_at = clock_timestamp(), result = ${literal(JSON.stringify(result))}, version = ${COMMIT_VERSION_NOW} WHERE id = ${literal(id)} AND done_at IS NULL`;
}

/** Inside an engine commit: the commit version that transaction makes (PgStore bumps it first). */
export const COMMIT_VERSION_NOW = '(SELECT version FROM commit_version)';

export async function commandResult(client: pg.Client, id: number): Promise<{ done: boolean; result: unknown } | null> {
  const { rows } = await client.query<{ done: boolean; result: string | null }>('SELECT done_at IS NOT NULL AS done, result FROM commands WHERE id = $1', [id]);
  const r = rows[0];
  return r ? { done: r.done, result: r.result === null ? null : (JSON.parse(r.result) as unknown) } : null;
}
