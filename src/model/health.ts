/**
 * Health signals of R25. An instance is healthy only when every signal that applies to it is:
 * the platform (machine and agent answer), the application probe (scale sets that have one), and
 * the provisioning state of the extension being judged.
 */
import type { ProvisioningStatus } from './artifact.js';

export interface HealthSignals {
  platform: boolean;
  /** Undefined where no application health probe or extension is configured. */
  application?: boolean;
}

export function isMachineHealthy(s: HealthSignals): boolean {
  return s.platform && s.application !== false;
}

/** The verdict on one extension instance: machine healthy and its own provisioning succeeded. */
export function isInstanceHealthy(s: HealthSignals, provisioning: ProvisioningStatus): boolean {
  return isMachineHealthy(s) && provisioning === 'Succeeded';
}

/** Which signal failed, for event reasons; null when healthy. */
export function unhealthyReason(s: HealthSignals, provisioning: ProvisioningStatus): string | null {
  if (!s.platform) return 'platform health: machine or agent not answering';
  if (s.application === false) return 'application health probe failing';
  if (provisioning !== 'Succeeded') return `extension provisioning state ${provisioning}`;
  return null;
}
