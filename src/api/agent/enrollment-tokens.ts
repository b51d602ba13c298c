/**
 * Enrollment tokens: what a machine presents once, at `POST /v1/enroll`, to get its credential. Two
 * sources: serve's configuration (`enrollmentTokens`, for automation) and tokens a contributor
 * creates with `PUT /phasewise/enrollmentTokens/{name}` (the secret is returned once and stored as
 * its SHA-256 only, with an expiry). Each names where new Arc machines are registered.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type Database from 'better-sqlite3';
import { ENROLLMENT_TOKENS_DDL } from '../../store/sqlite/side-schema.js';
import { ArmError } from '../arm/errors.js';

export interface EnrollmentScope {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
}

export interface ConfiguredToken extends EnrollmentScope {
  token: string;
  /** ISO time; absent: no expiry. */
  expiresAt?: string | undefined;
}

export interface StoredToken extends EnrollmentScope {
  name: string;
  expiresAtMs: number;
  createdBy: string;
  createdAtMs: number;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class EnrollmentTokens {
  private readonly configured: Array<{ digest: Buffer; scope: EnrollmentScope; expiresAtMs: number | null }>;
  private readonly st: Record<'put' | 'byDigest' | 'list' | 'del' | 'nameOf', Database.Statement>;

  constructor(db: Database.Database, configured: readonly ConfiguredToken[]) {
    db.exec(ENROLLMENT_TOKENS_DDL);
    this.st = {
      put: db.prepare(`INSERT INTO agent_enrollment_tokens (name, digest, subscription_id, resource_group, location, expires_at, created_by, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, subscription_id = excluded.subscription_id,
        resource_group = excluded.resource_group, location = excluded.location, expires_at = excluded.expires_at, created_by = excluded.created_by, created_at = excluded.created_at`),
      byDigest: db.prepare('SELECT * FROM agent_enrollment_tokens WHERE digest = ?'),
      list: db.prepare('SELECT * FROM agent_enrollment_tokens ORDER BY name'),
      del: db.prepare('DELETE FROM agent_enrollment_tokens WHERE name = ? COLLATE NOCASE'),
      nameOf: db.prepare('SELECT name FROM agent_enrollment_tokens WHERE name = ? COLLATE NOCASE ORDER BY name LIMIT 1'),
    };
    this.configured = configured.map((t) => ({
      digest: digest(t.token),
      scope: { subscriptionId: t.subscriptionId, resourceGroup: t.resourceGroup, location: t.location },
      expiresAtMs: t.expiresAt ? Date.parse(t.expiresAt) : null,
    }));
  }

  /** The scope of a bearer token at wall-clock `now`; 401 ARM errors for missing, unknown or expired. */
  check(header: string | undefined, now: number): EnrollmentScope {
    const m = /^Bearer\s+(\S{1,512})\s*$/i.exec(header ?? '');
    if (!m) throw new ArmError(401, 'AuthenticationFailed', 'Enrollment needs an enrollment token: Authorization: Bearer <token>.');
    const d = digest(m[1]!);
    const conf = this.configured.find((c) => timingSafeEqual(c.digest, d));
    if (conf) {
      if (conf.expiresAtMs !== null && conf.expiresAtMs <= now) throw expired();
      return conf.scope;
    }
    const row = this.st.byDigest.get(d.toString('hex')) as Record<string, unknown> | undefined;
    if (!row) throw new ArmError(401, 'InvalidEnrollmentToken', 'The enrollment token is not valid.');
    if ((row.expires_at as number) <= now) throw expired();
    return { subscriptionId: row.subscription_id as string, resourceGroup: row.resource_group as string, location: row.location as string };
  }

  /**
   * Creates or replaces a named token; returns the secret (shown once) and the name as stored. Names are
   * ARM names, compared without regard to case (as DELETE compares them): `PUT …/Build` after `…/build`
   * replaces that token and keeps its first spelling, rather than adding a second token DELETE would take both of.
   */
  create(name: string, scope: EnrollmentScope, expiresAtMs: number, createdBy: string, now: number): { token: string; name: string } {
    const secret = `pwe_${randomBytes(32).toString('base64url')}`;
    const stored = (this.st.nameOf.get(name) as { name: string } | undefined)?.name ?? name;
    this.st.put.run(stored, digest(secret).toString('hex'), scope.subscriptionId, scope.resourceGroup, scope.location, expiresAtMs, createdBy, now);
    return { token: secret, name: stored };
  }

  list(): StoredToken[] {
    return (this.st.list.all() as Array<Record<string, unknown>>).map((r) => ({
      name: r.name as string, subscriptionId: r.subscription_id as string, resourceGroup: r.resource_group as string, location: r.location as string,
      expiresAtMs: r.expires_at as number, createdBy: r.created_by as string, createdAtMs: r.created_at as number,
    }));
  }

  delete(name: string): boolean {
    return this.st.del.run(name).changes > 0;
  }
}

function expired(): ArmError {
  return new ArmError(401, 'EnrollmentTokenExpired', 'The enrollment token has expired; ask for a new one.');
}
