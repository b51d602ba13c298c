/** What the agent API works with, beside the ARM context. */
import type { VouchedIdentity } from './forwarded-identity.js';
import type { IncomingMessage } from 'node:http';
import type { AgentDriver } from '../../drivers/agent/agent-driver.js';
import type { AgentCa } from './agent-ca.js';
import type { AgentInstances } from './agent-instances.js';
import type { EnrollmentTokens } from './enrollment-tokens.js';
import type { GoalStates } from './goal-states.js';
import type { PackageStore } from './package-store.js';
import type { StatusWriter } from './status-writer.js';

export interface AgentServices {
  ca: AgentCa;
  driver: AgentDriver;
  goalStates: GoalStates;
  status: StatusWriter;
  packages: PackageStore;
  tokens: EnrollmentTokens;
  /** Wall clock: heartbeats, token expiry and certificates are real time whatever the engine's clock does. */
  wallNow: () => number;
  pollIntervalSeconds: number;
  statusIntervalSeconds: number;
  certificateValidityDays: number;
  /** One live copy per agent identity (agent-instances.ts); absent: not checked. */
  instances?: AgentInstances;
  /** Replicas: the agent fingerprint (and body digest) another replica vouched for in a forwarded request, when its proof holds. */
  vouchedIdentity?: (req: IncomingMessage) => VouchedIdentity | null;
  /** Replicas: stores an uploaded package file where every replica finds it (PostgreSQL), before its record is kept. */
  replicateFile?: (path: string, sha256: string) => Promise<void>;
}
