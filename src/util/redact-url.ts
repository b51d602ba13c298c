/**
 * A database URL without its password, for messages and logs. The one place that does it, and without
 * parsing the URL: a password may hold any character ('@', '/', '?', '#'), and a parser (or a pattern)
 * that ends the credentials at the first of them prints the rest of the password as the host or path.
 * Everything before the last '@' is the credentials; only the user name is kept.
 */
export function redact(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^]*)@([^@]*)$/i.exec(url);
  if (!m) return url; // no '@': no credentials
  const [, scheme, credentials, rest] = m as unknown as [string, string, string, string];
  const colon = credentials.indexOf(':');
  return colon < 0 ? `${scheme}${credentials}@${rest}` : `${scheme}${credentials.slice(0, colon)}:***@${rest}`;
}
