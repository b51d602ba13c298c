/**
 * The secret key checked against what it sealed, at start. A data folder restored from a backup onto a new
 * machine gets a new `secret.key` unless the old one is copied too; without this check `serve` started
 * normally and every later request that needed a stored secret (an extension PUT that sums protected
 * settings, a VM replace that keeps its admin password, an agent's goal state) failed with a 500.
 */
import type { Documents } from './documents.js';
import type { SecretBox } from './secrets.js';

/** Why the key opens none of them (the first document it failed on), or null when it opens one of each kind stored. */
export function secretKeyMismatch(docs: Documents, secrets: SecretBox): string | null {
  for (const { id, sealed } of docs.sealedSamples()) {
    try {
      secrets.open(sealed);
    } catch {
      return id;
    }
  }
  return null;
}
