/** Turns the scenario's `failures` section into the simulated fleet's behaviour. */
import { Duration } from 'luxon';
import type { FailureModel, FleetBehaviour } from '../drivers/sim/failure-model.js';
import { DEFAULT_FAILURE_MODEL } from '../drivers/sim/failure-model.js';
import type { Region } from '../model/fleet.js';
import { unknownRegion } from './fleet-builder.js';
import type { FailureModelInput, ScenarioInput } from './scenario-schema.js';

export type DriverBehaviourInput = NonNullable<ScenarioInput['failures']>;

function model(input: FailureModelInput | undefined): Partial<FailureModel> {
  if (!input) return {};
  const out: Partial<FailureModel> = {};
  if (input.installFailure !== undefined) out.installFailure = input.installFailure;
  if (input.unhealthyAfterUpgrade !== undefined) out.unhealthyAfterUpgrade = input.unhealthyAfterUpgrade;
  if (input.rollbackFailure !== undefined) out.rollbackFailure = input.rollbackFailure;
  if (input.installSeconds) out.install = { medianSeconds: input.installSeconds.median, p95Seconds: input.installSeconds.p95 };
  if (input.healthSeconds) out.health = { medianSeconds: input.healthSeconds.median, p95Seconds: input.healthSeconds.p95 };
  if (input.rollbackSeconds) out.rollback = { medianSeconds: input.rollbackSeconds.median, p95Seconds: input.rollbackSeconds.p95 };
  if (input.reimageSeconds) out.reimage = { medianSeconds: input.reimageSeconds.median, p95Seconds: input.reimageSeconds.p95 };
  return out;
}

export function compileBehaviour(
  input: DriverBehaviourInput | undefined,
  at: (text: string, path: string) => number,
  setIds: ReadonlyMap<string, string>,
  regions: ReadonlyMap<string, Region>,
  issues: Array<{ path: string; message: string }>,
): FleetBehaviour {
  const versions: Record<string, Partial<FailureModel>> = {};
  for (const [v, m] of Object.entries(input?.versions ?? {})) versions[v] = model(m);
  const background = (input?.background ?? []).flatMap((b, i) => {
    const path = `failures.background[${i}]`;
    const setId = b.scaleSet === undefined ? undefined : setIds.get(b.scaleSet);
    if (b.scaleSet !== undefined && setId === undefined) {
      issues.push({ path: `${path}.scaleSet`, message: `unknown scale set "${b.scaleSet}"` });
      return [];
    }
    if (b.region !== undefined && !regions.has(b.region)) {
      issues.push({ path: `${path}.region`, message: unknownRegion(b.region, regions) });
      return [];
    }
    return [{ atMs: at(b.at, `${path}.at`), durationMs: Duration.fromISO(b.duration).toMillis(), share: b.share, ...(b.region ? { region: b.region } : {}), ...(setId ? { setId } : {}) }];
  });
  return {
    default: { ...DEFAULT_FAILURE_MODEL, ...model(input?.default) },
    versions,
    slowAgents: input?.slowAgents ?? { share: 0, factor: 1 },
    background,
  };
}
