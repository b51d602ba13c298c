/**
 * Headers every answer of the HTTP API carries, whatever its status (docs/api.md#security-headers).
 * Its answers are authenticated data: no cache keeps them, no browser sniffs them into HTML, no page
 * frames them, and no Referer carries a URL of this server (with its ids and queries) elsewhere.
 */
export const API_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  // JSON is never a document: nothing loads from it, nothing frames it.
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/**
 * The dashboard's page and files: only its own scripts, styles and API; never framed (clickjacking of
 * its Pause, Cancel and Withdraw buttons); no <base> or form target elsewhere.
 */
export const DASHBOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  ...API_SECURITY_HEADERS,
  // The files change with the server's version: asked again each time, kept nowhere else.
  'cache-control': 'no-cache',
  'content-security-policy': [
    "default-src 'self'", "img-src 'self' data:", "style-src 'self'", "script-src 'self'", "connect-src 'self'",
    "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; '),
};
