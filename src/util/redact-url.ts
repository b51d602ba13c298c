/**
 * A database URL without its password, for messages and logs. The one place that does it: a pattern
 * of its own elsewhere cut a password holding '@' at the first '@' and printed the rest.
 */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the PostgreSQL URL (unparseable)';
  }
}
