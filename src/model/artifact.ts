/**
 * What a rollout upgrades. The planner and engine only see an `Artifact` and per-machine
 * `ArtifactInstance`s, so extensions and OS images share one machinery.
 */
import { compareImageVersions, parseImageVersion } from './image-version.js';
import { compareVersions, majorOf } from './version.js';

export type Artifact =
  | { kind: 'extension'; publisher: string; type: string }
  | { kind: 'osImage'; publisher: string; offer: string; sku: string }
  /** R76: the platform's Critical and Security patches of an OS; a version is a baseline date such as 2026.1.12. */
  | { kind: 'guestPatch'; os: 'Linux' | 'Windows' };

/** A stable, case-insensitive key: `extension:microsoft.azure.monitor.azuremonitorlinuxagent`. */
export function artifactKey(a: Artifact): string {
  if (a.kind === 'guestPatch') return `guestPatch:${a.os.toLowerCase()}`;
  return a.kind === 'extension'
    ? `extension:${a.publisher}.${a.type}`.toLowerCase()
    : `osImage:${a.publisher}:${a.offer}:${a.sku}`.toLowerCase();
}

/** Version order of an artifact: four-part extension versions, three-part image versions and patch baselines. */
export function compareArtifactVersions(a: Pick<Artifact, 'kind'>, x: string, y: string): number {
  return a.kind === 'extension' ? compareVersions(x, y) : compareImageVersions(x, y);
}

/**
 * The major version automatic extension upgrades never cross (R1); an image version's first part.
 * Patch baselines have no majors: each one supersedes every earlier one.
 */
export function artifactMajor(a: Pick<Artifact, 'kind'>, version: string): number {
  if (a.kind === 'guestPatch') return 0;
  return a.kind === 'osImage' ? (parseImageVersion(version)?.[0] ?? 0) : majorOf(version);
}

/** OS image and patch-baseline instances live beside extension instances, under `osImage:` and `guestPatch:` keys. */
export function isExtensionKey(key: string): boolean {
  return key.startsWith('extension:');
}

export function isOsImageKey(key: string): boolean {
  return key.startsWith('osimage:');
}

/** The artifact of an OS's platform patches (R76), keyed `guestPatch:linux` / `guestPatch:windows`. */
export function guestPatchArtifact(os: 'linux' | 'windows'): Extract<Artifact, { kind: 'guestPatch' }> {
  return { kind: 'guestPatch', os: os === 'linux' ? 'Linux' : 'Windows' };
}

export function describeArtifact(a: Artifact): string {
  if (a.kind === 'guestPatch') return `guestPatch:${a.os}`;
  return a.kind === 'extension' ? `${a.publisher}.${a.type}` : `${a.publisher}:${a.offer}:${a.sku}`;
}

export type ProvisioningStatus = 'Succeeded' | 'Failed' | 'Transitioning';

/**
 * One artifact on one machine. Desired, installed and last-known-good are three separate facts
 * (architecture principle 3): rollback targets `lastKnownGoodVersion`, never an inferred one.
 */
export interface ArtifactInstance {
  machineId: string;
  artifactKey: string;
  /** What the operator or an automatic rollout wants installed. */
  desiredVersion: string;
  /** What the machine reported as installed. */
  installedVersion: string;
  /** The newest version that ran healthy on this machine. */
  lastKnownGoodVersion: string;
  /**
   * The last known good version before `lastKnownGoodVersion` on this machine (absent or '' when none):
   * where a withdrawal of the current one with rollback sends the machine back.
   */
  previousGoodVersion?: string;
  /** The `enableAutomaticUpgrade` setting (R2, R5). */
  enableAutomaticUpgrade: boolean;
  status: ProvisioningStatus;
  /** Set when a failed rollback left the instance Failed: no automatic attempts until reinstalled (R31). */
  blockedReason: string | null;
  /** Why the last install or update the user asked for failed; absent or null when it did not. */
  lastError?: string | null;
}

/** `version` ran healthy here: it becomes last known good, and the one before it is kept. */
export function recordGood(inst: ArtifactInstance, version: string): void {
  if (inst.lastKnownGoodVersion !== '' && inst.lastKnownGoodVersion !== version) inst.previousGoodVersion = inst.lastKnownGoodVersion;
  inst.lastKnownGoodVersion = version;
}

export interface ExtensionInstance extends ArtifactInstance {
  name: string;
  publisher: string;
  type: string;
  typeHandlerVersion: string;
  autoUpgradeMinorVersion: boolean;
  /** Shared and frozen when instances come from one template; replace the object to change it. */
  settings: Readonly<Record<string, unknown>>;
}
