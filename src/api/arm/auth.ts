/**
 * Bearer tokens and roles. Tokens come from configuration; each names a principal (recorded as the
 * caller of what it starts) and its roles. Readers read, contributors change resources, publishers
 * publish extension versions.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { ArmError } from './errors.js';

export type Role = 'reader' | 'contributor' | 'publisher';
export const ROLES: readonly Role[] = ['reader', 'contributor', 'publisher'];

export interface TokenGrant {
  token: string;
  /** Who the token stands for: the caller of everything it starts (R82). */
  name: string;
  roles: Role[];
}

export interface Principal {
  name: string;
  roles: ReadonlySet<Role>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class Authenticator {
  private readonly grants: Array<{ digest: Buffer; principal: Principal }>;

  constructor(grants: readonly TokenGrant[]) {
    this.grants = grants.map((g) => ({ digest: digest(g.token), principal: { name: g.name, roles: new Set(g.roles) } }));
  }

  /** The principal of an `Authorization` header; 401 when it is missing or unknown. */
  authenticate(header: string | undefined): Principal {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!m) throw new ArmError(401, 'AuthenticationFailed', 'Authentication failed. The Authorization header is missing or is not a Bearer token.');
    const d = digest(m[1]!);
    // Compare digests in constant time, so response timing says nothing about the tokens.
    const found = this.grants.find((g) => timingSafeEqual(g.digest, d));
    if (!found) throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    return found.principal;
  }
}

/** Reads need any role; writes need `contributor`; the publisher API needs `publisher`. */
export function requireRole(p: Principal, role: Role, action: string): void {
  if (role === 'reader' ? p.roles.size > 0 : p.roles.has(role)) return;
  throw new ArmError(403, 'AuthorizationFailed', `The client '${p.name}' does not have authorization to perform action '${action}': it needs the ${role} role.`);
}
