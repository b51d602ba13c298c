/**
 * `phasewise serve` configuration: a YAML or JSON file, then environment variables over it, then
 * built-in defaults. Every field is documented in docs/api.md.
 */
import { resolve } from 'node:path';
import { parseStrictYaml } from '../util/strict-yaml.js';
import { z } from 'zod';
import { ROLES } from '../api/arm/auth.js';
import type { Role } from '../api/arm/auth.js';
import { locationName, oneLineText, resourceGroupName } from '../api/arm/validation.js';
import { WEBHOOK_EVENTS } from './webhooks.js';
import { redact } from '../util/redact-url.js';
import { ConfigError } from './config-error.js';
import { readUserFile } from './user-file.js';

const tokenSchema = z.object({
  // It is compared with an Authorization header: printable, no spaces, bounded as the header is.
  token: z.string().min(16, 'a token needs at least 16 characters').max(512).regex(/^[\x21-\x7e]+$/, 'printable characters without spaces'),
  /** The caller of everything the token does, in the event and activity logs and on the dashboard. */
  name: oneLineText(256, 'a token name'),
  roles: z.array(z.enum(ROLES as readonly Role[] as [Role, ...Role[]])).min(1),
}).strict();

export const configSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8443),
  /** The base of every URL the server hands out (operation monitors, nextLinks); defaults to https://host:port. */
  publicUrl: z.string().max(2000).url().refine((u) => /^https?:\/\//i.test(u), 'expected an https:// (or http://) URL').optional(),
  dataDir: z.string().min(1).max(4096).default('data'),
  /** Defaults to DATA_DIR/phasewise.sqlite. */
  database: z.string().optional(),
  /**
   * `postgres://…`: run as one of several replicas sharing that PostgreSQL (docs/deploy.md). Every
   * replica serves the API; the one holding the engine lease runs the engine. Absent: SQLite.
   */
  store: z.string().max(2000).regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL (without it, serve uses SQLite)').optional(),
  /** Replicas: the https:// address the other replicas reach this one at (followers forward reads to the leader's). */
  advertiseUrl: z.string().max(2000).url().refine((u) => /^https:\/\//i.test(u), 'expected an https:// URL').optional(),
  /**
   * Replicas: followers answer reads from a snapshot of the store up to this many machines (0: they forward every read to the leader).
   * A refresh costs what changed, not the fleet's size (read-model.ts): the bound is the follower's memory.
   */
  snapshotReadsMaxMachines: z.number().int().min(0).max(100_000_000).default(100_000_000),
  /** Replicas: how long the engine lease lasts without renewal (a dead leader is replaced within it). */
  leaseMs: z.number().int().min(1000).max(300_000).default(10_000),
  /**
   * Replicas: how long a leader's main thread may show no sign of life (a long load or tick) while its lease is still renewed
   * for it; past it the thread is taken for hung and the lease let expire. Absent: 12 leases, at least 2 minutes (busyMaxMsFor).
   */
  leaseBusyMaxMs: z.number().int().min(1000).max(3_600_000).optional(),
  tls: z.object({ cert: z.string(), key: z.string() }).strict().optional(),
  /** Without tokens, one is generated on first start into DATA_DIR/token and printed. */
  tokens: z.array(tokenSchema).default([]),
  /** Subscriptions that exist besides those of the fleet. */
  subscriptions: z.array(z.string().min(1).max(128)).max(10_000).default([]),
  /** A scenario (docs/scenarios.md) whose regions, catalog, fleet, failures and events seed a new database. */
  scenario: z.string().optional(),
  /** Simulated milliseconds per real millisecond; 1 is real time. */
  clockFactor: z.number().positive().default(1),
  /** Seconds clients are told to wait between polls of a long-running operation. */
  retryAfterSeconds: z.number().int().min(0).max(60).default(1),
  maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  pageSize: z.number().int().min(1).max(1000).default(100),
  /** 64 hex characters; without it a key is generated into DATA_DIR/secret.key. */
  secretKey: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hexadecimal characters').optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  seed: z.number().int().default(1),
  /** Tokens machines present at `POST /v1/enroll`, each naming where new Arc machines go (docs/agent-server.md). */
  enrollmentTokens: z.array(z.object({
    token: z.string().min(16, 'an enrollment token needs at least 16 characters').max(512),
    subscriptionId: z.string().min(1).max(128),
    resourceGroup: resourceGroupName,
    location: locationName,
    expiresAt: z.string().datetime({ offset: true }).optional(),
  }).strict()).default([]),
  /** Seconds between an agent's goal-state polls. */
  agentPollIntervalSeconds: z.number().int().min(1).max(3600).default(15),
  /** Seconds between an agent's status reports (its heartbeat); three missed ones make the machine Disconnected. */
  agentStatusIntervalSeconds: z.number().int().min(1).max(3600).default(60),
  /** A token for GET /metrics only; without it /metrics needs no token (docs/operations.md). */
  metricsToken: z.string().min(16, 'a metrics token needs at least 16 characters').max(512).optional(),
  /** Webhooks for rollouts stopped or completed, gates breached, versions withdrawn (docs/operations.md). */
  webhooks: z.array(z.object({
    url: z.string().max(2000).url().refine((u) => /^https?:\/\//i.test(u), 'expected an http:// or https:// URL')
      // fetch refuses such a URL at every delivery; the secret signs the body instead.
      .refine((u) => !/^https?:\/\/[^/?#]*@/i.test(u), 'a webhook URL cannot hold a user name or password (user:password@): the secret signs each notification'),
    secret: z.string().min(16, 'a webhook secret needs at least 16 characters').max(512),
    events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).optional(),
  }).strict()).max(20).default([]),
  /** How webhook deliveries are retried: attempts (the first included) and the first backoff, doubled each time. */
  webhookRetry: z.object({
    maxAttempts: z.number().int().min(1).max(20).default(6),
    initialBackoffMs: z.number().int().min(10).max(600_000).default(1_000),
  }).strict().default({ maxAttempts: 6, initialBackoffMs: 1_000 }),
  /** Validity of the client certificates the agent CA issues. */
  agentCertificateValidityDays: z.number().int().min(1).max(3650).default(365),
}).strict();

export type ServeConfig = z.infer<typeof configSchema>;

export { ConfigError } from './config-error.js';

/** Environment variables and the fields they set. */
export const ENV_VARS: Record<string, { field: keyof ServeConfig; kind: 'string' | 'number' | 'list' }> = {
  PHASEWISE_HOST: { field: 'host', kind: 'string' },
  PHASEWISE_PORT: { field: 'port', kind: 'number' },
  PHASEWISE_PUBLIC_URL: { field: 'publicUrl', kind: 'string' },
  PHASEWISE_DATA_DIR: { field: 'dataDir', kind: 'string' },
  PHASEWISE_DB: { field: 'database', kind: 'string' },
  PHASEWISE_STORE: { field: 'store', kind: 'string' },
  PHASEWISE_LEASE_MS: { field: 'leaseMs', kind: 'number' },
  PHASEWISE_LEASE_BUSY_MAX_MS: { field: 'leaseBusyMaxMs', kind: 'number' },
  PHASEWISE_ADVERTISE_URL: { field: 'advertiseUrl', kind: 'string' },
  PHASEWISE_SCENARIO: { field: 'scenario', kind: 'string' },
  PHASEWISE_CLOCK_FACTOR: { field: 'clockFactor', kind: 'number' },
  PHASEWISE_SUBSCRIPTIONS: { field: 'subscriptions', kind: 'list' },
  PHASEWISE_SECRET_KEY: { field: 'secretKey', kind: 'string' },
  PHASEWISE_LOG_LEVEL: { field: 'logLevel', kind: 'string' },
  PHASEWISE_RETRY_AFTER: { field: 'retryAfterSeconds', kind: 'number' },
  PHASEWISE_AGENT_POLL_INTERVAL: { field: 'agentPollIntervalSeconds', kind: 'number' },
  PHASEWISE_AGENT_STATUS_INTERVAL: { field: 'agentStatusIntervalSeconds', kind: 'number' },
  PHASEWISE_METRICS_TOKEN: { field: 'metricsToken', kind: 'string' },
};

/** A configuration is a few KiB; more than this is not one (and /dev/zero would never end). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** A number in an environment variable: decimal, as a person writes it (Number() would read 0x50 as 80 and '' as 0). */
const DECIMAL = /^-?\d+(\.\d+)?$/;

/** The configuration file as a mapping; every problem is a ConfigError of one line. */
function readConfigFile(file: string): Record<string, unknown> {
  const text = readUserFile('configuration', file, MAX_CONFIG_BYTES);
  let parsed: unknown;
  try {
    parsed = parseStrictYaml(text);
  } catch (err) {
    // The parser's message quotes the line with a caret below it: the first line (with the position) is enough.
    throw new ConfigError(`${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]!.replace(/:$/, '').slice(0, 300)}`);
  }
  if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) throw new ConfigError(`${file}: expected a mapping of settings`);
  return (parsed ?? {}) as Record<string, unknown>;
}

/**
 * `database` (PHASEWISE_DB) naming a PostgreSQL URL, as the db commands take it, is the store: read as a
 * SQLite file name it made serve fail on a lock file named after the URL, with the password in the message.
 */
function databaseUrlAsStore(raw: Record<string, unknown>): void {
  const url = raw.database;
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\//i.test(url)) return;
  if (typeof raw.store === 'string' && raw.store !== url) {
    throw new ConfigError(`database ${redact(url)} and store ${redact(raw.store)} name two PostgreSQL databases; give one (PHASEWISE_STORE or --store)`);
  }
  raw.store = url;
  delete raw.database;
}

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv, overrides: Partial<Record<keyof ServeConfig, unknown>> = {}): ServeConfig {
  let raw: Record<string, unknown> = {};
  if (file) {
    raw = readConfigFile(file);
  }
  // A scenario named in the file is relative to the file; one from the environment or the command line is not.
  const fileScenario = raw.scenario;
  for (const [name, { field, kind }] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (kind === 'number' && !DECIMAL.test(v.trim())) throw new ConfigError(`${name}: expected a decimal number, got '${v.slice(0, 40)}'`);
    raw[field] = kind === 'number' ? Number(v) : kind === 'list' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  }
  if (env.PHASEWISE_TOKEN) raw.tokens = [{ token: env.PHASEWISE_TOKEN, name: 'operator', roles: ['reader', 'contributor', 'publisher'] }];
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) raw[k] = v;
  databaseUrlAsStore(raw);
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const where = file ? `${file}, the environment or the command line` : 'the environment or the command line';
    throw new ConfigError(`invalid configuration in ${where}:\n${result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n')}`);
  }
  const c = result.data;
  // Shorter than the lease, a leader would lose its lease to any load or tick longer than that limit, which is never what is meant.
  if (c.leaseBusyMaxMs !== undefined && c.leaseBusyMaxMs < c.leaseMs) {
    throw new ConfigError(`leaseBusyMaxMs (${c.leaseBusyMaxMs}) must be at least leaseMs (${c.leaseMs}): a leader busy for less than a lease always keeps it`);
  }
  if (file && c.scenario && c.scenario === fileScenario) c.scenario = resolve(file, '..', c.scenario);
  if (c.store) {
    // Replicas must agree on these: a token or a sealing key made up by one replica would be unknown to the others.
    const missing = [c.tokens.length === 0 ? 'tokens (or PHASEWISE_TOKEN)' : null, c.secretKey ? null : 'secretKey (or PHASEWISE_SECRET_KEY)'].filter(Boolean);
    if (missing.length > 0) throw new ConfigError(`store ${redact(c.store)}: replicas on PostgreSQL need the same ${missing.join(' and ')} on every replica; set them`);
    if (c.database) throw new ConfigError('store and database exclude each other: database is the SQLite file, store the PostgreSQL URL');
  }
  return c;
}
