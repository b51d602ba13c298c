/**
 * Group commit settings: how many engine commits may share one SQLite transaction, and for how long
 * (wall time) a group may stay open. A crash loses at most one open group, which never sent anything.
 */

export interface GroupCommitSettings {
  /** Engine commits (ticks, commands) at most in one transaction; 1 turns grouping off. */
  ticks: number;
  /** Wall milliseconds at most between a group's first commit and its COMMIT. */
  wallMs: number;
}

/** Defaults for `sim --store sqlite:` (see docs/store.md, "Group commit"). */
export const DEFAULT_GROUP_COMMIT: GroupCommitSettings = { ticks: 1000, wallMs: 250 };

/** Upper bounds: a larger group saves nothing more and only widens what a crash loses. */
export const MAX_GROUP_TICKS = 100_000;
export const MAX_GROUP_WALL_MS = 10_000;

export class GroupCommitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GroupCommitError';
  }
}

/** Checks settings, whatever their source (CLI text already turned into numbers): whole numbers in range. */
export function checkGroupCommit(s: GroupCommitSettings): GroupCommitSettings {
  check('group ticks', s.ticks, MAX_GROUP_TICKS);
  check('group wall ms', s.wallMs, MAX_GROUP_WALL_MS);
  return { ticks: s.ticks, wallMs: s.wallMs };
}

function check(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new GroupCommitError(`${name}: expected a whole number from 1 to ${max.toLocaleString('en')}, got ${String(value)}`);
  }
}
