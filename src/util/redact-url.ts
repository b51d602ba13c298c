/**
 * A database URL without its password, for messages and logs. The one place that does it, and without
 * parsing the URL: a password may hold any character ('@', '/', '?', '#'), and a parser (or a pattern)
 * that ends the credentials at the first of them prints the rest of the password as the host or path.
 * Everything before the last '@' is the credentials; only the user name is kept. A password may also
 * come as a query parameter (`?password=…`, `sslpassword=…`, which the driver reads as libpq does): the
 * query is hidden from there on.
 */
export function redact(url: string): string {
  // The query first: a raw '@' in a password given there would otherwise pass for the end of the credentials.
  const hidden = redactQuery(url);
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^]*)@([^@]*)$/i.exec(hidden);
  if (!m) return hidden; // no '@': no credentials before the host
  const [, scheme, credentials, rest] = m as unknown as [string, string, string, string];
  const colon = credentials.indexOf(':');
  return colon < 0 ? `${scheme}${credentials}@${rest}` : `${scheme}${credentials.slice(0, colon)}:***@${rest}`;
}

const SECRET_KEYS = new Set(['password', 'sslpassword']);

/**
 * The query from its first password parameter on hidden (a key percent-encoded counts, as the driver decodes
 * it): a raw '&', '=' or '#' typed in the password would end its value early, and what follows is the rest of it.
 */
function redactQuery(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url.slice(q + 1).split('&');
  const at = params.findIndex((param) => {
    const eq = param.indexOf('=');
    if (eq < 0) return false;
    let key = param.slice(0, eq);
    try {
      key = decodeURIComponent(key.replace(/\+/g, ' '));
    } catch {
      /* a malformed escape: compared as written */
    }
    return SECRET_KEYS.has(key.trim().toLowerCase());
  });
  if (at < 0) return url;
  const param = params[at]!;
  return `${url.slice(0, q + 1)}${[...params.slice(0, at), `${param.slice(0, param.indexOf('='))}=***`].join('&')}`;
}
