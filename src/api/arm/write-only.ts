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

/**
 * The sealed write-only fields after a replace: those the request sent over those stored. They are never
 * returned, so a client's GET-then-PUT (a tag change) cannot send them back; a replace that dropped them
 * lost a VM's admin password and custom data.
 */
export function keepSealed(secrets: SecretBox, stored: string | undefined, sent: string | null): string | null {
  if (stored === undefined) return sent;
  if (sent === null) return stored;
  return secrets.seal({ ...(secrets.open(stored) as Record<string, unknown>), ...(secrets.open(sent) as Record<string, unknown>) });
}
