/**
 * The methods the server has routes for at a path, for the 405 that answers a request whose path is
 * routed but whose method is not (HTTP's rule, and what Azure's resource providers answer: "The requested
 * resource does not support http method 'PATCH'."), with its `Allow` header. Fastify's own router answers
 * only "no route"; this one holds the same route patterns (fed by the onRoute hook) with the same options.
 */
import Router from 'find-my-way';
import { MAX_PATH_SEGMENT } from './http-errors.js';

const noop = (): void => undefined;

export class AllowedMethods {
  private readonly router = Router({ caseSensitive: false, ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: MAX_PATH_SEGMENT });
  private readonly methods = new Set<string>();

  /** A route as Fastify registers it (its method or methods, its URL pattern). */
  add(method: string | string[], url: string): void {
    for (const m of Array.isArray(method) ? method : [method]) {
      const upper = m.toUpperCase();
      if (this.router.hasRoute(upper as Router.HTTPMethod, url)) continue;
      this.router.on(upper as Router.HTTPMethod, url, noop);
      this.methods.add(upper);
    }
  }

  /** The methods routed at `path` (no query), sorted; empty when no route has the path. */
  at(path: string): string[] {
    const out: string[] = [];
    for (const m of this.methods) {
      try {
        if (this.router.find(m as Router.HTTPMethod, path) !== null) out.push(m);
      } catch {
        // a path the router cannot read (bad escapes) is no route's
      }
    }
    return out.sort();
  }
}
