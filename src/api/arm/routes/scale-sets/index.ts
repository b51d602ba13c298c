/**
 * Microsoft.Compute virtual machine scale sets: the model (upgrade policy, extension profile, image,
 * zones, capacity that creates instances), the instances with `latestModelApplied`, manual upgrade,
 * the model's extensions, the instances' extensions, and rolling upgrades (R81).
 */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../../context.js';
import { registerInstanceRoutes } from './instance-routes.js';
import { registerModelExtensionRoutes } from './model-extensions.js';
import { registerSetRoutes } from './set-routes.js';
import { registerUpgradeRoutes } from './upgrade-routes.js';

export type { ScaleSetDoc } from './schemas.js';

export function registerScaleSetRoutes(app: FastifyInstance, ctx: ArmContext): void {
  registerSetRoutes(app, ctx);
  registerInstanceRoutes(app, ctx);
  registerModelExtensionRoutes(app, ctx);
  registerUpgradeRoutes(app, ctx);
}
