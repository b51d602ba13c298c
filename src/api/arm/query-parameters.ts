/**
 * Query parameters given twice. Fastify keeps repeated values as an array and the routes read the first,
 * so `?api-version=A&api-version=B` or `$top=1&$top=999999` checked only one value and ignored the other:
 * a request that meant two things was answered as one of them. A parameter the API reads is refused when
 * it is given twice with different values, names compared without regard to case as ARM compares them.
 */
import { badRequest } from './errors.js';
import type { ArmError } from './errors.js';

/** Every query parameter a route reads, in lower case (queryOf lower-cases names). */
export const READ_PARAMETERS: ReadonlySet<string> = new Set([
  'api-version', '$skiptoken', '$top', '$filter', '$orderby', '$select', '$expand', 'monitor', 'forceextensionupgrade', 'statusonly',
  'prefix', 'top', 'status', 'rolloutid', 'after', 'limit', 'unitskip', 'unittop', 'wait',
]);

/**
 * Parameters whose repeats add up rather than conflict: Compute's SDK sends `$expand=Properties` in its path
 * and the caller's `$expand` after it (`listWithProperties`); ARM reads them as one comma-separated list.
 */
export const LIST_PARAMETERS: ReadonlySet<string> = new Set(['$expand']);

/**
 * The 400 for a read parameter given twice with different values in `url`, or null. The same value twice
 * means one thing and is taken.
 */
export function duplicateParameterError(url: string): ArmError | null {
  const q = url.indexOf('?');
  if (q < 0 || url.indexOf('&', q) < 0) return null; // one parameter at most: nothing to repeat
  const seen = new Map<string, [string, string]>();
  for (const [name, value] of new URLSearchParams(url.slice(q + 1))) {
    const key = name.toLowerCase();
    if (!READ_PARAMETERS.has(key) || LIST_PARAMETERS.has(key)) continue;
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, [name, value]);
    } else if (first[1] !== value) {
      const also = first[0] === name ? '' : ` (also as '${first[0]}': names are compared without regard to case)`;
      const shown = (v: string) => JSON.stringify(v.slice(0, 64));
      return badRequest('DuplicateQueryParameter', `The query parameter '${name}' is given more than once${also}, as ${shown(first[1])} and ${shown(value)}; give it once.`, name);
    }
  }
  return null;
}

/**
 * The 400 for a parameter `route` does not take, or null. For routes whose parameters are all optional
 * (`/phasewise/events`), a typo (`?afer=5`) otherwise reads as no parameter at all: the log from its start.
 * Names are compared without regard to case; `api-version` is always taken (clients add it to every call).
 */
export function unknownParameterError(query: Record<string, unknown>, route: string, takes: readonly string[]): ArmError | null {
  for (const name of Object.keys(query)) {
    const key = name.toLowerCase();
    if (key === 'api-version' || takes.some((t) => t.toLowerCase() === key)) continue;
    const shown = JSON.stringify(name.slice(0, 64));
    return badRequest('InvalidQueryParameter', `The query parameter ${shown} is not one ${route} takes; it takes ${takes.join(', ')}.`, name.slice(0, 64));
  }
  return null;
}
