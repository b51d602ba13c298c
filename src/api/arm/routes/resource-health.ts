/**
 * Microsoft.ResourceHealth availability statuses of VMs, scale-set VMs and Arc machines (issue 16, R84): `current`
 * and the history (newest first), built from the availability impacts in the event log.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AVAILABILITY_EVENT_TYPES, availabilityAt, availabilityPeriods } from '../../../model/availability.js';
import type { AvailabilityPeriod } from '../../../model/availability.js';
import type { EngineEvent } from '../../../model/events.js';
import type { Machine } from '../../../model/fleet.js';
import type { ArmContext } from '../context.js';
import { resourceMissing } from '../context.js';
import { notFound } from '../errors.js';
import { stableUuid } from '../activity-log.js';
import { arcMachineId, vmId } from '../ids.js';
import { instanceOf, SCALE_SETS } from './scale-sets/lookup.js';

/** The newest events read per machine: the history reaches as far back as they do. */
const MAX_EVENTS = 2000;
const TYPE = 'Microsoft.ResourceHealth/AvailabilityStatuses';
type P = { sub: string; rg: string; name: string; iid?: string; status?: string };

const TITLES: Record<string, string> = {
  Reboot: 'Your machine was rebooted', Reimage: 'Your machine was re-imaged', Freeze: 'Your machine was briefly paused',
  Redeploy: 'Your machine was redeployed', Unhealthy: 'Your machine reported itself unhealthy',
};

export function registerResourceHealthRoutes(app: FastifyInstance, ctx: ArmContext): void {
  // One machine's impacts, newest first, on the log's machine index.
  const periodsOf = async (m: Machine): Promise<AvailabilityPeriod[]> => {
    const events: EngineEvent[] = await ctx.eventLog.read({ machineId: m.id, types: AVAILABILITY_EVENT_TYPES, order: 'desc', limit: MAX_EVENTS });
    return availabilityPeriods(events, ctx.engine.state.maintenance.hostUpdates, ctx.engine.state.fleet.unhealthy.has(m.id));
  };

  const entry = (armId: string, m: Machine, name: string, state: string, p: AvailabilityPeriod | null, reported: string, recentlyResolved?: AvailabilityPeriod) => ({
    id: `${armId}/providers/Microsoft.ResourceHealth/availabilityStatuses/${name}`, name, type: TYPE, location: m.placement.region,
    properties: {
      availabilityState: state,
      title: p ? TITLES[p.cause] : 'Available',
      summary: p ? p.reason : 'There are no known problems affecting this machine.',
      reasonType: p ? (p.planned ? 'Planned' : 'Unplanned') : undefined,
      category: p ? (p.planned ? 'Planned' : 'Unplanned') : undefined,
      healthEventCause: p ? (p.planned ? 'PlatformInitiated' : 'Unknown') : undefined,
      context: p ? (p.planned ? 'Platform Initiated' : 'Unknown') : undefined,
      reasonChronicity: p ? (p.endMs === null ? 'Persistent' : 'Transient') : undefined,
      detailedStatus: p ? p.cause : undefined,
      occuredTime: p ? new Date(p.startMs).toISOString() : undefined,
      ...(p && p.endMs !== null ? { resolutionETA: new Date(p.endMs).toISOString() } : {}),
      reportedTime: reported,
      ...(recentlyResolved ? { recentlyResolved: {
        unavailableOccuredTime: new Date(recentlyResolved.startMs).toISOString(), resolvedTime: new Date(recentlyResolved.endMs!).toISOString(), unavailableSummary: recentlyResolved.reason,
      } } : {}),
    },
  });

  const standalone = (flavor: 'vm' | 'arc') => (req: FastifyRequest) => {
    const p = req.params as P;
    const armId = flavor === 'vm' ? vmId(p.sub, p.rg, p.name) : arcMachineId(p.sub, p.rg, p.name);
    const m = ctx.index.machine(armId);
    if (!m || m.kind !== flavor) throw resourceMissing(ctx, p.sub, p.rg, flavor === 'vm' ? 'Microsoft.Compute/virtualMachines' : 'Microsoft.HybridCompute/machines', p.name);
    return { p, m, armId: ctx.index.armIdOfMachine(m) };
  };
  // A scale set's instance: its re-images and reboots are its own (the set's 404s, then the instance's).
  const instance = (req: FastifyRequest) => {
    const { m, vmArmId } = instanceOf(ctx, req);
    return { p: req.params as P, m, armId: vmArmId };
  };
  for (const [base, machineOf] of [
    ['/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.Compute/virtualMachines/:name', standalone('vm')],
    ['/subscriptions/:sub/resourceGroups/:rg/providers/Microsoft.HybridCompute/machines/:name', standalone('arc')],
    [`${SCALE_SETS}/:name/virtualMachines/:iid`, instance],
  ] as const) {
    const path = `${base}/providers/Microsoft.ResourceHealth/availabilityStatuses`;
    const history = (armId: string, m: Machine, periods: AvailabilityPeriod[]) => {
      return periods.map((p) => entry(armId, m, stableUuid('availability', m.id, p.seq), p.state, p, new Date(p.reportedMs).toISOString()));
    };
    const current = (armId: string, m: Machine, periods: AvailabilityPeriod[]) => {
      const now = ctx.runtime.clock.now();
      const { state, period } = availabilityAt(periods, now);
      // Within a day of its end, the last impact shows as recently resolved (as Azure does).
      const resolved = state === 'Available' ? periods.find((p) => p.endMs !== null && p.endMs <= now && now - p.endMs < 86_400_000) : undefined;
      return entry(armId, m, 'current', state, period, new Date(now).toISOString(), resolved);
    };
    app.get(`${path}/:status`, async (req) => {
      const { m, armId, p } = machineOf(req);
      const periods = await periodsOf(m);
      if (p.status!.toLowerCase() === 'current') return current(armId, m, periods);
      const found = history(armId, m, periods).find((h) => h.name.toLowerCase() === p.status!.toLowerCase());
      if (!found) throw notFound('ResourceNotFound', `The availability status '${p.status}' of '${armId}' was not found.`);
      return found;
    });
    // The list: the current status first, then the history (Azure lists the current and the past ones).
    app.get(path, async (req) => {
      const { m, armId } = machineOf(req);
      // One read of the log for both (they agree even while events arrive).
      const periods = await periodsOf(m);
      return { value: [current(armId, m, periods), ...history(armId, m, periods)] };
    });
  }
}
