/**
 * The operators' tools `serve` adds around the engine and the API: metrics (GET /metrics and the
 * latency hooks), the rollouts' milestones on the console, the controls' routes and what they leave
 * for later, webhooks, and the dashboard. One call before the server listens; one close on stop.
 */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../api/arm/context.js';
import { fleetStopOf } from '../api/arm/fleet-stop.js';
import { registerFleetViewRoutes } from '../api/arm/routes/fleet-views.js';
import { registerRolloutControlRoutes } from '../api/arm/routes/rollout-controls.js';
import { FleetMetrics } from '../api/metrics/fleet-metrics.js';
import { registerMetrics } from '../api/metrics/metrics-routes.js';
import { registerDashboard } from '../dashboard/dashboard-routes.js';
import type { Store } from '../store/store.js';
import type { ServeConfig } from './config.js';
import type { Withdrawal } from './control-follow-up.js';
import { ControlFollowUp } from './control-follow-up.js';
import { logMilestones } from './milestone-log.js';
import { WebhookOutbox } from './webhook-outbox.js';
import { DEFAULT_WEBHOOK_OPTIONS, Webhooks } from './webhooks.js';

const WITHDRAWALS = '/phasewise/withdrawals';

export interface OperatorTools {
  metrics: FleetMetrics;
  close(): void;
}

export function installOperatorTools(app: FastifyInstance, ctx: ArmContext, config: ServeConfig, store: Store, agentsConnected: () => number, agentDuplicates?: () => number): OperatorTools {
  const engine = ctx.engine;
  const metrics = new FleetMetrics({ engine, agentsConnected, ...(agentDuplicates ? { agentDuplicates } : {}) });
  metrics.instrumentStore(store);
  metrics.instrumentStep(ctx.runtime);
  registerMetrics(app, metrics, { token: config.metricsToken ?? null });
  logMilestones(engine, { info: (o, m) => app.log.info(o, m), warn: (o, m) => app.log.warn(o, m) });
  const followUp = new ControlFollowUp(engine, {
    list: () => ctx.docs.get<{ value: Withdrawal[] }>(WITHDRAWALS)?.body.value ?? [],
    put: (w) => {
      const list = (ctx.docs.get<{ value: Withdrawal[] }>(WITHDRAWALS)?.body.value ?? []).filter((x) => x.version !== w.version || x.artifact.kind !== w.artifact.kind
        || JSON.stringify(x.artifact) !== JSON.stringify(w.artifact));
      ctx.docs.put(WITHDRAWALS, '/phasewise', 'setting', { value: [...list, w] });
    },
  }, (err) => app.log.error({ err }, 'a follow-up of an operator control failed'), () => fleetStopOf(ctx.docs));
  registerRolloutControlRoutes(app, ctx, followUp);
  registerFleetViewRoutes(app, ctx);
  const webhooks = new Webhooks(engine, config.webhooks, { warn: (o, m) => app.log.warn(o, m) },
    { ...DEFAULT_WEBHOOK_OPTIONS, ...config.webhookRetry }, (result) => metrics.webhooks.inc({ result }), new WebhookOutbox(ctx.db, ctx.eventLog));
  registerDashboard(app, ctx);
  return { metrics, close: () => webhooks.close() };
}
