/**
 * Deletions from the fleet tables (schema migration 7), the rollouts' progress and the API's tables
 * (migration 8) leave tombstones so a follower can apply them (read-model.ts, side-apply.ts). They are
 * kept for a window of commit versions: a follower whose version is below `tombstone_floor` may have
 * missed some and loads the whole state instead.
 */

/** How many commit versions of tombstones are kept (at a commit a second, more than a day). */
export const TOMBSTONE_KEEP = 100_000;
/** The leader prunes once in this many commits (in the commit's transaction): a prune per commit would cost every tick an index scan. */
export const PRUNE_EVERY = 1_000;

/** Raises the floor to `keep` versions below the version this transaction writes, and drops the tombstones below it. */
export function pruneTombstonesSql(keep: number): string {
  if (!Number.isSafeInteger(keep) || keep < 0) throw new Error(`tombstones: keep must be a whole number >= 0, not ${keep}`);
  return `UPDATE tombstone_floor SET floor = greatest(floor, phasewise_cv() - ${keep});
DELETE FROM state_tombstones WHERE cv <= (SELECT floor FROM tombstone_floor);`;
}

/** The engine tables' triggers (cv stamps, tombstones): an import into an empty database runs without them (its rows' cv stays NULL, older than any follower). */
export const STATE_TRIGGERS = ['machines', 'instances', 'machine_health', 'rollouts', 'rollout_phases', 'rollout_regions', 'rollout_units', 'gate_runs', 'attempts', 'timers'];
export const DISABLE_STATE_TRIGGERS = STATE_TRIGGERS.map((t) => `ALTER TABLE ${t} DISABLE TRIGGER USER;`).join(' ');
export const ENABLE_STATE_TRIGGERS = STATE_TRIGGERS.map((t) => `ALTER TABLE ${t} ENABLE TRIGGER USER;`).join(' ');
