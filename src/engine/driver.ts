/**
 * How actions reach machines and how machines answer. The engine cannot tell the simulated fleet
 * from real agents: both take `DriverAction`s and answer with `Observation`s.
 */
import type { Artifact } from '../model/artifact.js';
import type { HealthSignals } from '../model/health.js';
import type { PatchAssessment, PatchInstallation, PatchInstallRequest, PatchTarget } from '../model/patches.js';
import type { ActionKind } from './state.js';

export interface DriverAction {
  /** Rollout steps (upgrade, rollback) or what a user asked for (install, uninstall: no rollout). */
  kind: ActionKind;
  /** Idempotency key: the same key never causes the work twice, whoever resends it. */
  key: string;
  machineId: string;
  artifact: Artifact;
  artifactKey: string;
  fromVersion: string;
  toVersion: string;
  settings: Record<string, unknown>;
  /** Installs and uninstalls: who asked for it. */
  caller?: string;
}

export type Observation =
  /** The outcome of an action, matched to it by its key. */
  | { kind: 'actionResult'; key: string; machineId: string; ok: boolean; version: string; reason?: string; reimage?: ReimageReport; patch?: PatchReport }
  /** A machine's health signals (R25), reported whenever they change and after every action. */
  | { kind: 'health'; machineId: string; signals: HealthSignals };

/** What a re-image did (R61): a new OS disk, data disks kept, the extensions and custom data run again. */
export interface ReimageReport {
  extensions: string[];
  customData: boolean;
  dataDisksKept: boolean;
}

/** What a platform patch installation did (R76): counts, and whether the machine rebooted (R84). */
export interface PatchReport {
  installed: number;
  failed: number;
  pending: number;
  rebooted: boolean;
  /** How long the reboot kept the machine unavailable, in seconds. */
  rebootSec: number;
}

export interface Driver {
  /** Idempotent: a key already done is answered again with its outcome, never done twice. */
  send(action: DriverAction): void;
  /**
   * Optional, for a driver that decides outcomes itself (the simulated fleet): called with a commit's
   * actions as soon as the commit is written, before it is durable (group commit keeps a transaction
   * open across several commits). The driver may decide their outcomes now, in commit order, but nothing
   * of them may be seen (an answer, a report that reflects them) before each is `send`; `send` of a
   * prepared action releases it. A driver holds nothing unless its owner asked it to (SimDriver.holdUntilSent).
   */
  prepare?(actions: readonly DriverAction[]): void;
  /** The store rolled back commits whose actions were prepared and not sent: they never happened. */
  discardPrepared?(): void;
  /** Asks machines for fresh health reports (after a restart, to re-observe what was in flight). */
  observe?(machineIds: readonly string[]): void;
  /** Guest OS patching (issue 16); a driver without it cannot patch its machines. */
  patches?: PatchDriver;
}

/**
 * Guest OS patches on a machine: assess what is available, install a selection. Both are asynchronous
 * (a real machine runs its package manager) and answer with ARM-shaped results (src/model/patches.ts).
 * A machine that cannot be reached rejects; a patch that fails to install is reported in the result.
 * `installPatches` is idempotent by `request.key`: a resend answers with the same installation.
 */
export interface PatchDriver {
  assessPatches(machine: PatchTarget): Promise<PatchAssessment>;
  installPatches(machine: PatchTarget, request: PatchInstallRequest): Promise<PatchInstallation>;
}
