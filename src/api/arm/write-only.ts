/**
 * Secrets a VM or scale-set model may carry besides protected settings (`osProfile.adminPassword`,
 * `osProfile.customData`): sealed before the document is stored, never returned, as in Azure.
 */
import type { SecretBox } from './secrets.js';

const WRITE_ONLY = ['adminPassword', 'customData'] as const;

/** A copy of `props` without the write-only osProfile fields, and those fields sealed (or null when none). */
export function sealOsProfile(secrets: SecretBox, props: Record<string, unknown>): { props: Record<string, unknown>; sealed: string | null } {
  const os = props.osProfile;
  if (!os || typeof os !== 'object' || Array.isArray(os)) return { props, sealed: null };
  const kept: Record<string, unknown> = { ...(os as Record<string, unknown>) };
  const secret: Record<string, unknown> = {};
  for (const k of WRITE_ONLY) if (Object.hasOwn(kept, k)) { secret[k] = kept[k]; delete kept[k]; }
  if (Object.keys(secret).length === 0) return { props, sealed: null };
  return { props: { ...props, osProfile: kept }, sealed: secrets.seal(secret) };
}
