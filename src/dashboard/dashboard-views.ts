/** Read-only views the dashboard needs, aggregated on the server (filled in below). */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../api/arm/context.js';

export function registerDashboardViews(_app: FastifyInstance, _ctx: ArmContext): void {}
