/**
 * The query of a scale set's instance list (`virtualMachineScaleSetVMs.list`): Compute's spec gives it `$filter`,
 * `$select` and `$expand`, each with a few allowed values, and no `$top` or `$orderby`. The list used to ignore
 * all but `$expand`: `$filter=properties/latestModelApplied eq false` answered every instance, as if the whole
 * set were behind its model. Allowed values are honoured; any other value, and `$top` or `$orderby`, is a 400
 * naming the parameter (docs/api.md#scale-sets). Pure.
 */
import { invalidParameter } from '../../errors.js';
import type { ArmError } from '../../errors.js';

export interface InstanceListQuery {
  /** Keep only instances whose `latestModelApplied` is this; undefined: every instance. */
  latestModelApplied?: boolean;
  /** Each item carries its `instanceView` (`$expand=instanceView`, `$select=instanceView`). */
  instanceView: boolean;
  /** Only the PowerState statuses of the instance view (`startswith(instanceView/statuses/code, 'PowerState') eq true`). */
  powerStateOnly: boolean;
}

const FILTERS = [
  "startswith(instanceView/statuses/code, 'PowerState') eq true",
  'properties/latestModelApplied eq true',
  'properties/latestModelApplied eq false',
] as const;
const SELECTS = ['instanceView', 'instanceView/statuses'] as const;

/** Spaces aside (`eq  true`, `code,'PowerState'`) and case aside, as ARM compares OData keywords and names. */
const normal = (s: string) => s.replace(/\s+/g, '').toLowerCase();

/** Reads the (lower-cased, queryOf) query; throws an ArmError naming the parameter when it is not one this list takes. */
export function instanceListQuery(query: Record<string, string>): InstanceListQuery {
  const error = queryError(query);
  if (error) throw error;
  const filter = normal(query.$filter ?? '');
  const select = (query.$select ?? '').split(',').map(normal).filter((x) => x !== '');
  const expand = (query.$expand ?? '').split(',').map(normal);
  return {
    ...(filter === normal(FILTERS[1]) ? { latestModelApplied: true } : filter === normal(FILTERS[2]) ? { latestModelApplied: false } : {}),
    instanceView: filter === normal(FILTERS[0]) || select.length > 0 || expand.some((e) => e.includes('instanceview')),
    powerStateOnly: filter === normal(FILTERS[0]),
  };
}

function queryError(query: Record<string, string>): ArmError | null {
  for (const name of ['$top', '$orderby']) {
    if (query[name] !== undefined) return invalidParameter(name, `the scale set's instance list takes no ${name} (Compute's takes $filter, $select and $expand); page it with nextLink.`);
  }
  const filter = query.$filter;
  if (filter !== undefined && normal(filter) !== '' && !FILTERS.some((f) => normal(f) === normal(filter))) {
    return invalidParameter('$filter', `'${filter.slice(0, 200)}' is not a filter of the scale set's instance list; the allowed values are ${FILTERS.map((f) => `"${f}"`).join(', ')}.`);
  }
  for (const s of (query.$select ?? '').split(',')) {
    if (s.trim() !== '' && !SELECTS.some((x) => normal(x) === normal(s))) {
      return invalidParameter('$select', `'${s.slice(0, 200)}' is not a $select of the scale set's instance list; the allowed values are ${SELECTS.join(', ')}.`);
    }
  }
  return null;
}
