/**
 * One release reads as one rollout to users. The engine replaces a running rollout when a newer version
 * comes out or the same version reaches more regions; it cancels the old one with a reason that starts
 * "superseded". Users are shown such a rollout as `superseded`, not `cancelled` (the API, the CLI, the
 * dashboard and `db check` alike).
 */
export function isSuperseded(r: { status: string; reason?: string | null }): boolean {
  return r.status === 'cancelled' && (r.reason ?? '').startsWith('superseded');
}

/** The status users are shown for a stored rollout. */
export function shownStatus(r: { status: string; reason?: string | null }): string {
  return isSuperseded(r) ? 'superseded' : r.status;
}
