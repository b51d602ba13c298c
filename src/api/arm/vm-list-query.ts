/**
 * `$filter` of a VM list (`virtualMachines.list`, `listAll`): Compute's spec allows one, `virtualMachineScaleSet/id eq
 * '<scale set id>'`, the VMs of a Flexible scale set. The lists used to ignore it and answer every VM of the group or
 * subscription. Phasewise's scale sets are Uniform: their instances are listed under the set, never as VMs, so the
 * filter keeps no VM; any other filter is a 400 naming `$filter` (docs/api.md#resources). Pure.
 */
import { invalidParameter } from './errors.js';

const SCALE_SET_FILTER = /^\s*virtualMachineScaleSet\/id\s+eq\s+'?(\/subscriptions\/[^']+?)'?\s*$/i;

/** The scale set id a VM list's `$filter` names; null without a filter. Throws a 400 for any other filter. */
export function vmListScaleSetFilter(filter: string | undefined): string | null {
  if (filter === undefined || filter.trim() === '') return null;
  const m = SCALE_SET_FILTER.exec(filter);
  if (!m) {
    const allowed = "virtualMachineScaleSet/id eq '/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}'";
    throw invalidParameter('$filter', `'${filter.slice(0, 200)}' is not a filter of the VM list; the allowed one is "${allowed}".`);
  }
  return m[1]!;
}
