/**
 * The wire contract between `phasewise serve` and `phasewise agent` (design: agent-protocol §8, with
 * the departures documented in docs/agent.md). Both sides import these types and limits; neither
 * imports the other. JSON over HTTPS; every agent request after enrollment authenticates with the
 * machine's client certificate (mTLS), issued by the server's agent CA for the key the machine made.
 *
 * Paths (all under the server's base URL):
 * - `POST /v1/enroll` (Authorization: Bearer <enrollment token>) body EnrollRequest → 201 EnrollResponse.
 * - `GET  /v1/agents/{agentId}/goalstate` (If-None-Match: "<etag>"; optional `?wait=SECONDS` long-poll,
 *   at most LONG_POLL_MAX_SECONDS) → 200 GoalState with ETag, or 304.
 * - `PUT  /v1/agents/{agentId}/status` body StatusReport → 204 once the report is committed (durable).
 * - `POST /v1/agents/{agentId}/scheduledevents` body { StartRequests: [{ EventId }] } → 204: the
 *   workload approves announced events (R83), exactly as the ARM approve operations do.
 * - `DELETE /v1/agents/{agentId}/seat` (x-phasewise-agent-seat) → 204: the agent is stopping (a reboot), so
 *   the next copy of the identity to call need not wait for the lease (AGENT_SEAT_HEADER).
 * - `GET  /v1/packages/{sha256}` → the package bytes (Range requests honoured), for enrolled agents.
 * A credential for agent A used on agent B's paths answers 403; no credential answers 401. Errors are
 * ARM-shaped bodies `{ error: { code, message } }`.
 */

export const AGENT_PROTOCOL_VERSION = '1.0';

/** Bounds both sides enforce before parsing into state. */
export const LIMITS = {
  /** A goal state larger than this is refused by the agent (and never produced by the server). */
  goalStateBytes: 1024 * 1024,
  /** A status report larger than this answers 413. */
  statusReportBytes: 256 * 1024,
  /** Object keys in one status report (the server counts them before parsing; the agent fits its report under them). */
  statusReportKeys: 4096,
  /** Handler status files are read up to this size (WALinuxAgent's 128 KiB); larger ones are cut. */
  handlerStatusBytes: 128 * 1024,
  /** Extensions in one goal state. */
  extensionsPerGoalState: 64,
  /** A package larger than this is refused before download. */
  packageBytes: 512 * 1024 * 1024,
  /** JSON nesting depth accepted anywhere on this channel. */
  jsonDepth: 64,
  /** Characters of any message in a status report (formattedMessage.message, lastOperation.message): the agent cuts, the server refuses more. */
  reportMessageChars: 4096,
} as const;

export const LONG_POLL_MAX_SECONDS = 60;

/**
 * Header of every agent request: the copy of the identity that sends it (a hash of boot id, host name and
 * lib dir). The server refuses a second copy while the first is in contact (409 DuplicateAgentInstance).
 */
export const AGENT_SEAT_HEADER = 'x-phasewise-agent-seat';

/**
 * The times an agent writes in a status report (`timestampUTC`, `finishedAt`, patch `startedAt`):
 * ISO 8601 as `Date.prototype.toISOString` writes them, or with an offset. The server takes the
 * agent's clock as information only (heartbeats use its own), but refuses what is not a time.
 */
export const REPORT_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

export interface EnrollRequest {
  /** Bind to an existing VM, scale-set instance or Arc machine by its ARM id; absent: register a new Arc machine. */
  resourceId?: string;
  /** Name of the Arc machine to register (default: the host name). */
  name?: string;
  /** Where to register an Arc machine; defaults come from the enrollment token. */
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  /** The machine's own self-signed certificate (PEM, RSA-2048): its key never leaves the machine. */
  certificatePem: string;
  agentVersion: string;
  osName: string;
  osVersion: string;
  computerName: string;
}

export interface EnrollResponse {
  agentId: string;
  /** The ARM id of the machine this agent now speaks for. */
  resourceId: string;
  /** Client certificate for the machine's public key, signed by the server's agent CA (PEM). */
  clientCertificatePem: string;
  /** The agent CA (PEM), to pin when it talks to the server. */
  caCertificatePem: string;
  pollIntervalSeconds: number;
  statusIntervalSeconds: number;
}

export type ExtensionRequestedState = 'enabled' | 'uninstall';

export interface PackageSignature {
  alg: 'ed25519';
  keyId: string;
  /** base64 Ed25519 signature over `signedStatement(name, version, sha256, size)`. */
  sig: string;
}

export interface PackageReference {
  /** Absolute URLs on the server (`/v1/packages/{sha256}`), tried in order. */
  uris: string[];
  sha256: string;
  size: number;
  signature: PackageSignature;
}

export interface GoalStateExtension {
  /** `Publisher.Type`, the handler name. */
  name: string;
  /** The extension's resource name on the machine (the ARM child name). */
  extensionName: string;
  version: string;
  state: ExtensionRequestedState;
  autoUpgrade: boolean;
  package: PackageReference;
  dependencyLevel: number;
  /** Bumped on every change of version or settings (§8: avoids reading A's copied status). */
  settingsSeqNo: number;
  settings: {
    publicSettings: Record<string, unknown> | null;
    /** base64 DER CMS EnvelopedData (RSA key transport, AES-256-CBC) to the machine's certificate. */
    protectedSettings: string | null;
    protectedSettingsCertThumbprint: string | null;
  };
  /**
   * The idempotency key of the operation this entry carries (the engine action's key, or the key of
   * the user's install). The agent runs each operation at most once per key and reports its outcome
   * under it, however often the goal state is re-read or either side restarts.
   */
  operationId: string;
  rollback: { enabled: boolean; healthGateSeconds: number };
}

/** A scheduled event (R83) as IMDS shows it at /metadata/scheduledevents. */
export interface ScheduledEvent {
  EventId: string;
  EventType: 'Reimage' | 'Reboot' | 'Redeploy' | 'Freeze' | 'Preempt' | 'Terminate';
  ResourceType: 'VirtualMachine';
  Resources: string[];
  EventStatus: 'Scheduled' | 'Started';
  /** RFC 1123 date, or '' when the event waits for approval without a deadline. */
  NotBefore: string;
  Description: string;
  EventSource: 'Platform' | 'User';
  DurationInSeconds: number;
}

export interface GoalState {
  schemaVersion: '1.0';
  /** Increases with every change of this agent's goal state, within one `epoch`. */
  goalStateId: number;
  /**
   * Drawn by the server each time it starts (a restore from backup takes a restart): goalStateId only
   * increases within one epoch. Agents refuse an older id of the epoch they hold and any id of an epoch they
   * have left. Absent from servers before it existed; agents before it ignore it (unknown keys are dropped).
   */
  epoch?: string;
  activityId: string;
  createdAt: string;
  requiredFeatures: string[];
  pollIntervalSeconds: number;
  statusIntervalSeconds: number;
  extensions: GoalStateExtension[];
  scheduledEvents: { DocumentIncarnation: number; Events: ScheduledEvent[] };
  /** Guest OS patch operations (absent from a server that does not ask for any). */
  patchOperations?: GoalStatePatchOperation[];
}

export type AgentExtensionState = 'NotInstalled' | 'Installed' | 'Enabled' | 'FailedUpgrade' | 'Failed' | 'Blocked';

export type OperationOutcome =
  /** The goal state's version is installed and enabled, its status terminal `success`. */
  | 'succeeded'
  /** The operation failed and the last known good version was reinstalled and enabled. */
  | 'rolledBack'
  /** The operation failed; `installedVersion` says what runs now (the old version untouched, or nothing). */
  | 'failed'
  /** Local policy forbids it (allowlist, blocklist, extensions disabled): nothing ran. */
  | 'blocked'
  /** The package failed its size, digest or signature check: nothing of it ran. */
  | 'rejected';

export interface AgentExtensionReport {
  state: AgentExtensionState;
  installedVersion: string | null;
  lastKnownGood: string | null;
  /** The last operation the agent finished for this extension, by the goal state's key. */
  lastOperation: { operationId: string; outcome: OperationOutcome; version: string | null; message: string; finishedAt: string } | null;
}

export type ApplicationHealthState = 'Initializing' | 'Healthy' | 'Unhealthy' | 'Unknown';

/**
 * The §5 status document as WALinuxAgent sends it, plus `agentState` (per handler name), the
 * Application Health extension's verdict when the machine runs one, and the agent's own identity.
 * Every report is also the agent's heartbeat.
 */
export interface StatusReport {
  version: '1.1';
  timestampUTC: string;
  /** The goal state the agent has processed (also in vmArtifactsAggregateStatus.inSvdSeqNo). */
  goalStateId: number;
  aggregateStatus: {
    guestAgentStatus: { version: string; status: 'Ready' | 'NotReady'; formattedMessage: { lang: string; message: string } };
    handlerAggregateStatus: HandlerAggregateStatus[];
    vmArtifactsAggregateStatus: {
      goalStateAggregateStatus: {
        inSvdSeqNo: number;
        status: 'Success' | 'Failed';
        code: number;
        timestampUTC: string;
        formattedMessage: { lang: string; message: string };
      };
    };
  };
  guestOSInfo: { computerName: string; osName: string; osVersion: string; version: string };
  agentState: Record<string, AgentExtensionReport>;
  applicationHealth: { state: ApplicationHealthState; extensionName: string } | null;
  /** Local policy as the machine enforces it (read-only for the control plane, as Arc's agentConfiguration). */
  agentConfiguration: { extensionsEnabled: boolean; extensionsAllowList: string[]; extensionsBlockList: string[] };
  /** Results of the goal state's patch operations (absent from an agent that has run none). */
  patchOperations?: PatchOperationReport[];
}

export interface HandlerAggregateStatus {
  handlerName: string;
  handlerVersion: string;
  status: 'Ready' | 'NotReady' | 'Unresponsive';
  code: number;
  formattedMessage: { lang: string; message: string };
  runtimeSettingsStatus?: {
    sequenceNumber: number;
    settingsStatus: { version: number; timestampUTC: string; status: HandlerStatusBody };
  };
}

export interface HandlerStatusBody {
  name?: string;
  operation?: string;
  configurationAppliedTime?: string;
  status: 'transitioning' | 'error' | 'success' | 'warning';
  code: number;
  formattedMessage?: { lang: string; message: string };
  substatus?: Array<{ name?: string; status: string; code?: number; formattedMessage?: { lang: string; message: string } }>;
}

/* ---------------------------------------------------------------------------------------------- */
/* Guest OS patching (issue 16): the goal state asks for assessments and installations, each under */
/* an operation id; the agent runs each at most once (journaled) and reports its result.           */

export const PATCH_LIMITS = {
  /** Patch operations in one goal state (the server keeps an operation there until it is answered). */
  operationsPerGoalState: 4,
  /** Package name masks per include/exclude list (ARM's packageNameMasksToInclude/Exclude). */
  masksPerList: 64,
  maskChars: 128,
  /**
   * Patches listed in one status report, all operations together (each entry is a handful of JSON keys,
   * and a report has at most 4,096); the counts are exact, a list cut says so (`truncated`).
   */
  patchesPerReport: 256,
  patchNameChars: 128,
  patchVersionChars: 96,
  /** ISO 8601 maximumDuration: at least 30 minutes (ARM's minimum on Linux), at most 4 hours. */
  minDurationSeconds: 30 * 60,
  maxDurationSeconds: 4 * 3600,
  /** Results the agent keeps (and reports while their operation is in the goal state). */
  historyPerAgent: 8,
} as const;

export type PatchClassification = 'Critical' | 'Security' | 'Other';
export const PATCH_CLASSIFICATIONS: readonly PatchClassification[] = ['Critical', 'Security', 'Other'];
export type PatchRebootSetting = 'IfRequired' | 'Never' | 'Always';
export type PatchRebootBehavior = 'NeverReboots' | 'AlwaysRequiresReboot' | 'CanRequestReboot' | 'Unknown';

/** One patch operation the control plane asks of the machine. */
export interface GoalStatePatchOperation {
  /** The idempotency key: run at most once per machine, reported under it. */
  operationId: string;
  kind: 'assess' | 'install';
  /** Install only. */
  install?: {
    /** Seconds; the agent starts no package it cannot expect to finish in time. */
    maximumDurationSeconds: number;
    rebootSetting: PatchRebootSetting;
    classificationsToInclude: PatchClassification[];
    /** fnmatch-style masks on the package name (`*`, `?`, `[…]`), optionally `name=version`. */
    packageNameMasksToInclude: string[];
    packageNameMasksToExclude: string[];
    /** Seconds the `Reboot` scheduled event is announced before the agent reboots (R83). */
    rebootNoticeSeconds: number;
    /** R83: the EventId of the reboot the server already announced for this run; the agent's reboot uses it. */
    rebootEventId?: string;
  };
}

export type PatchInstallationState = 'Installed' | 'Failed' | 'Excluded' | 'NotSelected' | 'Pending';

export interface PatchReportEntry {
  name: string;
  version: string;
  classifications: PatchClassification[];
  rebootBehavior: PatchRebootBehavior;
  /** Install results only. */
  installationState?: PatchInstallationState;
  /** Why a package failed (the package manager's own line), install results only. */
  message?: string;
}

export type PatchOperationStatus = 'InProgress' | 'Succeeded' | 'Failed' | 'CompletedWithWarnings';
export type PatchRebootStatus = 'NotNeeded' | 'Required' | 'Started' | 'Failed' | 'Completed';

/** What the agent reports for one patch operation (in StatusReport.patchOperations). */
export interface PatchOperationReport {
  operationId: string;
  kind: 'assess' | 'install';
  status: PatchOperationStatus;
  /** 'apt', 'dnf', 'yum', 'zypper', or 'none' when the machine has none the agent knows. */
  packageManager: string;
  startedAt: string;
  finishedAt: string | null;
  /** Exact counts, whatever the list holds. */
  counts: { critical: number; security: number; other: number; installed: number; failed: number; pending: number; notSelected: number; excluded: number };
  patches: PatchReportEntry[];
  truncated: boolean;
  rebootPending: boolean;
  rebootStatus: PatchRebootStatus;
  maintenanceWindowExceeded: boolean;
  error: { code: string; message: string } | null;
}
