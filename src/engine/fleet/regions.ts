/** Regions at run time: zones and geo-pairs (R10, R11). */
import type { Region } from '../../model/fleet.js';
import { validateRegionPairs } from '../../model/fleet.js';
import type { EngineState } from '../state.js';
import type { TickContext } from '../core/context.js';
import { conflict, invalid, machinesWhere, names, text } from './checks.js';

/** A region to create, or new zones and pair for an existing one; zones in use stay, pairs stay consistent. */
export function checkRegion(state: EngineState, input: Region): Region {
  const name = text(input?.name, 'name');
  const zones = names(input.zones ?? [], 'zones');
  const pair = input.pair ?? null;
  if (pair !== null) text(pair, 'pair');
  const region: Region = { name, pair, zones };
  const before = new Set(validateRegionPairs([...state.fleet.regions.values()]));
  const next = new Map(state.fleet.regions).set(name, region);
  const problems = validateRegionPairs([...next.values()]).filter((p) => !before.has(p));
  if (problems.length > 0) throw invalid('pair', problems.join('; '));
  const old = state.fleet.regions.get(name);
  const dropped = old ? old.zones.filter((z) => !zones.includes(z)) : [];
  if (dropped.length > 0) {
    for (const s of state.fleet.scaleSets.values()) {
      if (s.region === name && s.zones.some((z) => dropped.includes(z))) throw conflict('zones', `scale set ${s.id} uses zone(s) ${dropped.join(', ')} of region ${name}`);
    }
    const m = machinesWhere(state, (x) => x.placement.region === name && x.placement.zone !== null && dropped.includes(x.placement.zone))[0];
    if (m) throw conflict('zones', `machine ${m.id} is in zone ${m.placement.zone} of region ${name}`);
  }
  return region;
}

export function applyRegion(ctx: TickContext, region: Region): void {
  ctx.state.fleet.regions.set(region.name, region);
  ctx.changes?.fleetRegions.add(region.name);
}
