/**
 * Paths served without an API token: the dashboard's own files (the page asks for a token and sends
 * it with every API call) and /metrics, which checks its separate metrics token itself.
 */
const OPEN = /^\/(metrics|dashboard(\/[^?]*)?|favicon\.ico)?\/?(\?|$)/i;

export function isOpenPath(url: string): boolean {
  return OPEN.test(url);
}
