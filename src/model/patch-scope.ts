/**
 * Dynamic scopes of InGuestPatch schedules (issue 16): an assignment to a subscription or resource
 * group with filters on resource type, resource group, OS, location and tags picks the machines a run
 * patches, evaluated when the run starts (machines added later are included). Pure.
 */
import type { Machine } from './fleet.js';

export interface DynamicScopeFilter {
  /** `Microsoft.Compute/virtualMachines`, `Microsoft.HybridCompute/machines`; empty: both. */
  resourceTypes: string[];
  resourceGroups: string[];
  /** `Linux`, `Windows`; empty: both. */
  osTypes: string[];
  locations: string[];
  /** Tag name → accepted values (any of them); `All`: every tag must match, `Any`: one is enough. */
  tags: Record<string, string[]>;
  filterOperator: 'All' | 'Any';
}

export interface DynamicScope {
  subscription: string;
  /** null: the whole subscription. */
  resourceGroup: string | null;
  filter: DynamicScopeFilter;
}

const TYPE_OF: Record<string, string> = { vm: 'microsoft.compute/virtualmachines', arc: 'microsoft.hybridcompute/machines' };
const lower = (xs: readonly string[]) => xs.map((x) => x.toLowerCase());

/** Whether a machine (with its ARM tags) falls in a dynamic scope. Scale-set instances never do (Azure's limit). */
export function inDynamicScope(scope: DynamicScope, m: Machine, tags: Record<string, string>): boolean {
  const type = TYPE_OF[m.kind];
  if (!type) return false;
  if (m.placement.subscription.toLowerCase() !== scope.subscription.toLowerCase()) return false;
  if (scope.resourceGroup !== null && m.resourceGroup.toLowerCase() !== scope.resourceGroup.toLowerCase()) return false;
  const f = scope.filter;
  if (f.resourceTypes.length > 0 && !lower(f.resourceTypes).includes(type)) return false;
  if (f.resourceGroups.length > 0 && !lower(f.resourceGroups).includes(m.resourceGroup.toLowerCase())) return false;
  if (f.osTypes.length > 0 && !lower(f.osTypes).includes(m.os)) return false;
  if (f.locations.length > 0 && !lower(f.locations).includes(m.placement.region.toLowerCase())) return false;
  const names = Object.keys(f.tags);
  if (names.length === 0) return true;
  const has = (name: string) => {
    const k = Object.keys(tags).find((t) => t.toLowerCase() === name.toLowerCase());
    if (k === undefined) return false;
    const accepted = f.tags[name]!;
    return accepted.length === 0 || accepted.includes(tags[k]!);
  };
  return f.filterOperator === 'Any' ? names.some(has) : names.every(has);
}
