/**
 * Paths served without an API token: the dashboard's own files (the page asks for a token and sends
 * it with every API call), /metrics, which checks its separate metrics token itself, and the health
 * checks /healthz and /readyz (load balancers and supervisors call them without a token).
 */
const OPEN = /^\/(metrics|healthz|readyz|dashboard(\/[^?]*)?|favicon\.ico)?\/?(\?|$)/i;

export function isOpenPath(url: string): boolean {
  return OPEN.test(url);
}
