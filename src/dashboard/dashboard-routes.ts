/**
 * The web dashboard: its static files (plain HTML, JS and CSS under src/dashboard/public, no build
 * step) at / and /dashboard/*, and the read-only views it needs (dashboard-views.ts).
 */
import { readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../api/arm/context.js';
import { notFound } from '../api/arm/errors.js';
import { DASHBOARD_SECURITY_HEADERS } from '../api/arm/security-headers.js';
import { registerDashboardViews } from './dashboard-views.js';

/** From dist/src/dashboard (built) or src/dashboard (sources): the files live beside the sources. */
const PUBLIC = fileURLToPath(new URL('../../../src/dashboard/public/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
};
const FILE = /^[a-z0-9-]{1,64}\.(html|js|css|svg)$/;

function readPublic(name: string): Buffer {
  if (!FILE.test(name)) throw notFound('NotFound', `No dashboard file '${name.slice(0, 80)}'.`);
  try {
    return readFileSync(normalize(join(PUBLIC, name)));
  } catch {
    throw notFound('NotFound', `No dashboard file '${name}'.`);
  }
}

export function registerDashboard(app: FastifyInstance, ctx: ArmContext): void {
  const headers = DASHBOARD_SECURITY_HEADERS;
  app.get('/', async (_req, reply) => reply.headers(headers).type(TYPES['.html']!).send(readPublic('index.html')));
  app.get('/dashboard/:file', async (req, reply) => {
    const { file } = req.params as { file: string };
    const body = readPublic(file);
    return reply.headers(headers).type(TYPES[extname(file)] ?? 'application/octet-stream').send(body);
  });
  registerDashboardViews(app, ctx);
}
