/**
 * Microsoft.Maintenance (azure-api.md §8): maintenance configurations and their assignments to virtual
 * machines, scale sets and Arc machines, with full validation of the window (R70) and of the per-scope
 * limits (R71). Configurations with a window and their assignments are handed to the engine, which
 * confines automatic upgrades of the scope to them (docs/api-maintenance.md). The ARM document and the
 * engine's copy change in one transaction.
 */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../../context.js';
import { registerApplyUpdateRoutes } from './apply-updates.js';
import { registerAssignmentRoutes } from './assignment-routes.js';
import { registerConfigurationRoutes } from './configuration-routes.js';

export { engineConfigOf, validateConfiguration } from './configuration.js';
export { reconcileMaintenance } from './reconcile.js';

export function registerMaintenanceRoutes(app: FastifyInstance, ctx: ArmContext): void {
  registerConfigurationRoutes(app, ctx);
  registerAssignmentRoutes(app, ctx);
  registerApplyUpdateRoutes(app, ctx);
}
