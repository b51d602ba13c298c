/**
 * ARM resource ids. ARM compares ids case-insensitively but echoes the casing the client used, so
 * lookups go through `keyOf` and responses are built from the request's own segments.
 */
export const keyOf = (id: string): string => id.replace(/\/+$/, '').toLowerCase();

export const subscriptionId = (sub: string) => `/subscriptions/${sub}`;
export const resourceGroupId = (sub: string, rg: string) => `/subscriptions/${sub}/resourceGroups/${rg}`;
export const providerId = (sub: string, rg: string, provider: string, ...typeAndNames: string[]) =>
  `${resourceGroupId(sub, rg)}/providers/${provider}/${typeAndNames.join('/')}`;

export const vmId = (sub: string, rg: string, name: string) => providerId(sub, rg, 'Microsoft.Compute', 'virtualMachines', name);
export const scaleSetId = (sub: string, rg: string, name: string) => providerId(sub, rg, 'Microsoft.Compute', 'virtualMachineScaleSets', name);
export const scaleSetVmId = (sub: string, rg: string, set: string, instanceId: string) => `${scaleSetId(sub, rg, set)}/virtualMachines/${instanceId}`;
export const availabilitySetId = (sub: string, rg: string, name: string) => providerId(sub, rg, 'Microsoft.Compute', 'availabilitySets', name);
export const arcMachineId = (sub: string, rg: string, name: string) => providerId(sub, rg, 'Microsoft.HybridCompute', 'machines', name);

/**
 * Why ARM would refuse `name` as a resource group's, or null: 1 to 90 letters, digits, '-', '_', '.', '(' and ')',
 * not ending in '.'. ASCII letters only, where Azure takes any Unicode letter: ids are matched by their lower
 * case (keyOf), which folds some letters together that ARM keeps apart (the Kelvin sign K and k).
 */
export function resourceGroupNameProblem(name: string): string | null {
  if (RESOURCE_GROUP_NAME.test(name)) return null;
  const bad = [...new Set(name.replace(/[-\w.()]/g, ''))].join('');
  if (bad) return `The provided resource group name '${name.slice(0, 100)}' has these invalid characters: '${bad.slice(0, 20)}'. The name can only be a letter, digit, '-', '.', '(', ')' or '_'.`;
  if (name.length === 0 || name.length > 90) return `The provided resource group name is ${name.length} characters long; 1 to 90 are allowed.`;
  return `The provided resource group name '${name}' ends with a period, which it may not.`;
}

/** ARM's rule for a resource group name (resourceGroupNameProblem says why one breaks it). */
export const RESOURCE_GROUP_NAME = /^[-\w.()]{0,89}[-\w()]$/;

/** Names ARM accepts for the resources Phasewise creates (Arc's rule, the strictest of them). */
export const RESOURCE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-_.]{0,63}$/;
