/**
 * Published extension versions and the eligibility rules R1–R4. Pure queries over an in-memory
 * catalog; the store persists it, the API and scenarios publish into it.
 */
import type { ExtensionInstance } from '../model/artifact.js';
import type { OsType } from '../model/fleet.js';
import { compareVersions, majorOf, matchesPrefix, parsePrefix } from '../model/version.js';

export interface PublishedVersion {
  version: string;
  /** Operating systems the version is published for. */
  os: OsType[];
  /** Regions where it is available; null means every region. */
  regions: string[] | null;
  publishedAtMs: number;
  /** A release that fixes a critical security flaw: faster rollout (R40). */
  critical: boolean;
  digest: string | null;
}

export interface ExtensionType {
  publisher: string;
  type: string;
  supportsAutomaticUpgrade: boolean;
  versions: PublishedVersion[];
}

export type AutoUpgradeState = 'enabled' | 'disabled' | 'notSupported';

/** Why an instance is or is not offered a version; `target` is set when it is. */
export interface Eligibility {
  target: string | null;
  reason: string;
}

const typeKeys = new Map<string, Map<string, string>>();

/** A type's key; memoized, since eligibility asks for it once per instance and few types exist. */
export function typeKey(publisher: string, type: string): string {
  let byType = typeKeys.get(publisher);
  if (!byType) {
    if (typeKeys.size >= 1024) typeKeys.clear(); // names come from users too: stay bounded
    typeKeys.set(publisher, (byType = new Map()));
  }
  let key = byType.get(type);
  if (key === undefined) {
    if (byType.size >= 1024) byType.clear();
    byType.set(type, (key = `${publisher}.${type}`.toLowerCase()));
  }
  return key;
}

export class Catalog {
  private readonly types = new Map<string, ExtensionType>();
  /** Withdrawn versions (`typeKey@version`): never offered again (derived from the releases' holds). */
  private readonly withdrawn = new Set<string>();

  addType(publisher: string, type: string, supportsAutomaticUpgrade: boolean): ExtensionType {
    const key = typeKey(publisher, type);
    const existing = this.types.get(key);
    if (existing) {
      existing.supportsAutomaticUpgrade = supportsAutomaticUpgrade;
      return existing;
    }
    const created: ExtensionType = { publisher, type, supportsAutomaticUpgrade, versions: [] };
    this.types.set(key, created);
    return created;
  }

  getType(publisher: string, type: string): ExtensionType | undefined {
    return this.types.get(typeKey(publisher, type));
  }

  getTypeByKey(key: string): ExtensionType | undefined {
    return this.types.get(key);
  }

  listTypes(): ExtensionType[] {
    return [...this.types.values()];
  }

  /** Adds a version; publishing the same version twice is refused so history stays true. */
  publish(publisher: string, type: string, v: PublishedVersion): void {
    const t = this.types.get(typeKey(publisher, type));
    if (!t) throw new Error(`extension type ${publisher}.${type} is not in the catalog`);
    if (t.versions.some((x) => x.version === v.version)) throw new Error(`${publisher}.${type} ${v.version} is already published`);
    t.versions.push(v);
    t.versions.sort((a, b) => compareVersions(a.version, b.version));
  }

  /** A withdrawn version stays published (history) but no automatic upgrade or new install takes it. */
  withdraw(publisher: string, type: string, version: string): void {
    this.withdrawn.add(`${typeKey(publisher, type)}@${version}`);
  }

  isWithdrawn(publisher: string, type: string, version: string): boolean {
    return this.withdrawn.size > 0 && this.withdrawn.has(`${typeKey(publisher, type)}@${version}`);
  }

  /** Versions visible at `nowMs` for an OS and region, oldest first; withdrawn ones are not. */
  available(t: ExtensionType, os: OsType, region: string, nowMs: number): PublishedVersion[] {
    return t.versions.filter(
      (v) => v.publishedAtMs <= nowMs && v.os.includes(os) && (v.regions === null || v.regions.includes(region))
        && !this.isWithdrawn(t.publisher, t.type, v.version),
    );
  }
}

/** Publishers whose extension types scale-set enrollment never upgrades automatically (R7). */
export const SERVICE_FABRIC_PUBLISHER = 'Microsoft.Azure.ServiceFabric';

/** Where an instance runs, as far as eligibility is concerned. */
export interface MachineContext {
  os: OsType;
  region: string;
  /**
   * R7: the machine is a scale-set instance in a subscription enrolled in automatic extension upgrade;
   * its extensions with `autoUpgradeMinorVersion` count as opted in.
   */
  enrolled?: boolean;
}

/**
 * R5, R7: whether the instance counts as opted in to automatic upgrade: its own
 * `enableAutomaticUpgrade`, or enrollment of its scale set's subscription with
 * `autoUpgradeMinorVersion=true` (Service Fabric types excepted).
 */
export function effectiveAutoUpgrade(inst: Pick<ExtensionInstance, 'enableAutomaticUpgrade' | 'autoUpgradeMinorVersion' | 'publisher'>, enrolled = false): boolean {
  if (inst.enableAutomaticUpgrade) return true;
  return enrolled && inst.autoUpgradeMinorVersion && inst.publisher.toLowerCase() !== SERVICE_FABRIC_PUBLISHER.toLowerCase();
}

/** R80: enabled, disabled, or not supported by the extension type; `enrolled` as in `MachineContext`. */
export function autoUpgradeState(inst: Pick<ExtensionInstance, 'enableAutomaticUpgrade' | 'autoUpgradeMinorVersion' | 'publisher'>, t: ExtensionType | undefined, enrolled = false): AutoUpgradeState {
  if (!t || !t.supportsAutomaticUpgrade) return 'notSupported';
  return effectiveAutoUpgrade(inst, enrolled) ? 'enabled' : 'disabled';
}

/**
 * R1, R2: the version an automatic upgrade would install on this instance now, or why none.
 * Only newer versions within the installed major qualify; the setting must be on (or the scale set
 * enrolled, R7), the type must support automatic upgrade, and the version must be published for the
 * machine's OS and region. An instance not installed yet has no target.
 */
export function automaticTarget(catalog: Catalog, inst: ExtensionInstance, machine: MachineContext, nowMs: number): Eligibility {
  const t = catalog.getType(inst.publisher, inst.type);
  if (!t) return { target: null, reason: 'extension type is not in the catalog' };
  if (!effectiveAutoUpgrade(inst, machine.enrolled)) return { target: null, reason: 'enableAutomaticUpgrade is false' };
  if (!t.supportsAutomaticUpgrade) return { target: null, reason: 'the extension type does not support automatic upgrade yet' };
  if (inst.blockedReason) return { target: null, reason: inst.blockedReason };
  if (inst.installedVersion === '') return { target: null, reason: 'the extension is not installed yet' };
  const major = majorOf(inst.installedVersion);
  let target: string | null = null;
  for (const v of catalog.available(t, machine.os, machine.region, nowMs)) {
    if (majorOf(v.version) !== major) continue;
    if (compareVersions(v.version, inst.installedVersion) <= 0) continue;
    if (target === null || compareVersions(v.version, target) > 0) target = v.version;
  }
  return target
    ? { target, reason: `newest ${major}.x version published for ${machine.os} in ${machine.region}` }
    : { target: null, reason: `no newer ${major}.x version published for ${machine.os} in ${machine.region}` };
}

/**
 * `automaticTarget(…).target` for many instances at one instant (a rollout's eligibility over a whole
 * fleet). Past the per-instance checks, the target depends only on the type, the OS, the region and the
 * installed version, so the search through the published versions runs once for each of those.
 */
export class AutomaticTargets {
  private readonly memo = new Map<ExtensionType, Map<string, Map<string, Map<string, string | null>>>>();
  private lastPublisher = '';
  private lastType = '';
  private lastT: ExtensionType | undefined;

  constructor(private readonly catalog: Catalog, private readonly nowMs: number) {}

  of(inst: ExtensionInstance, os: OsType, region: string, enrolled: boolean): string | null {
    if (inst.publisher !== this.lastPublisher || inst.type !== this.lastType) {
      this.lastPublisher = inst.publisher;
      this.lastType = inst.type;
      this.lastT = this.catalog.getType(inst.publisher, inst.type);
    }
    const t = this.lastT;
    // automaticTarget's own checks, each of which gives no target.
    if (!t || !effectiveAutoUpgrade(inst, enrolled) || !t.supportsAutomaticUpgrade || inst.blockedReason || inst.installedVersion === '') return null;
    let byOs = this.memo.get(t);
    if (!byOs) this.memo.set(t, (byOs = new Map()));
    let byRegion = byOs.get(os);
    if (!byRegion) byOs.set(os, (byRegion = new Map()));
    let byVersion = byRegion.get(region);
    if (!byVersion) byRegion.set(region, (byVersion = new Map()));
    let target = byVersion.get(inst.installedVersion);
    if (target === undefined) {
      target = automaticTarget(this.catalog, inst, { os, region, enrolled }, this.nowMs).target;
      byVersion.set(inst.installedVersion, target);
    }
    return target;
  }
}

/**
 * R4: the version installed when an extension is created or its model is updated.
 * `autoUpgradeMinorVersion=true` takes the newest version within the requested major;
 * `false` takes the newest version that matches `typeHandlerVersion` exactly (`1.30` → newest `1.30.x.y`).
 */
export function installVersion(
  catalog: Catalog,
  req: { publisher: string; type: string; typeHandlerVersion: string; autoUpgradeMinorVersion: boolean },
  machine: { os: OsType; region: string },
  nowMs: number,
): string | null {
  const t = catalog.getType(req.publisher, req.type);
  if (!t) return null;
  const requested = parsePrefix(req.typeHandlerVersion);
  const prefix = req.autoUpgradeMinorVersion ? String(requested[0]) : req.typeHandlerVersion;
  let best: string | null = null;
  for (const v of catalog.available(t, machine.os, machine.region, nowMs)) {
    if (!matchesPrefix(v.version, prefix)) continue;
    // With autoUpgradeMinorVersion the request is a floor within its major, never a ceiling.
    if (req.autoUpgradeMinorVersion && compareVersions(v.version, padVersion(requested)) < 0) continue;
    if (best === null || compareVersions(v.version, best) > 0) best = v.version;
  }
  return best;
}

function padVersion(parts: number[]): string {
  return [0, 1, 2, 3].map((i) => parts[i] ?? 0).join('.');
}
