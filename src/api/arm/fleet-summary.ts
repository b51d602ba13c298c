/**
 * The fleet page's summary (GET /phasewise/fleet): per extension type and image, machines, versions in
 * use, R80 automatic-upgrade states and provisioning states, and the fleet's subscriptions. A pass over a
 * million instances takes a good part of a second, so it never runs on a request once a summary exists:
 * while the fleet changes, a pass in the background (in chunks, between requests and engine ticks)
 * starts at most every MIN_INTERVAL_MS of wall time, and requests get the last finished one.
 */
import { autoUpgradeState } from '../../catalog/catalog.js';
import type { ExtensionType } from '../../catalog/catalog.js';
import type { EngineState } from '../../engine/state.js';
import { isEnrolled } from '../../engine/state.js';
import { isExtensionKey } from '../../model/artifact.js';
import { imageRefOfArtifact } from '../../model/image-reference.js';

const CHUNK = 20_000;
const MIN_INTERVAL_MS = 2_000;

export interface ArtifactSummary {
  artifactKey: string;
  publisher: string;
  type: string;
  machines: number;
  /** `extension` or `osImage` (then `publisher` and `type` are the instances' `publisher` and `offer:sku`). */
  kind: 'extension' | 'osImage' | 'guestPatch';
  /** The API path a version's withdrawal goes under: `{withdrawBase}/versions/{v}/withdraw` (docs/api.md). */
  withdrawBase: string;
  versions: Array<{ version: string; machines: number; withdrawn: boolean }>;
  autoUpgrade: Record<string, number>;
  statuses: Record<string, number>;
}

/**
 * One pass over the instances, cheap per instance: the type is looked up once per artifact, the machine
 * only when R7 enrollment can decide the state. Yields every CHUNK instances so that a background pass
 * lets requests and engine ticks in between.
 */
function* summarize(state: EngineState): Generator<void, ArtifactSummary[]> {
  const out: ArtifactSummary[] = [];
  const enrolling = state.enrolledSubscriptions.size > 0;
  let seen = 0;
  for (const [key, byMachine] of state.fleet.instances) {
    const s: ArtifactSummary = {
      artifactKey: key, kind: isExtensionKey(key) ? 'extension' : key.startsWith('guestPatch:') ? 'guestPatch' : 'osImage', publisher: '', type: '', withdrawBase: '',
      machines: 0, versions: [], autoUpgrade: {}, statuses: {},
    };
    const versions = new Map<string, number>();
    const statuses = new Map<string, number>();
    const au = { enabled: 0, disabled: 0, notSupported: 0 };
    let t: ExtensionType | undefined;
    for (const inst of byMachine.values()) {
      if (++seen % CHUNK === 0) yield;
      if (s.machines++ === 0) {
        s.publisher = inst.publisher;
        s.type = inst.type;
        t = state.catalog.getType(inst.publisher, inst.type);
      }
      const v = inst.installedVersion || '(not installed)';
      versions.set(v, (versions.get(v) ?? 0) + 1);
      statuses.set(inst.status, (statuses.get(inst.status) ?? 0) + 1);
      if (!t || !t.supportsAutomaticUpgrade) au.notSupported++;
      else if (inst.enableAutomaticUpgrade) au.enabled++;
      else {
        const m = enrolling ? state.fleet.machines.get(inst.machineId) : undefined;
        au[autoUpgradeState(inst, t, m ? isEnrolled(state, m) : false)]++;
      }
    }
    for (const [k, n] of Object.entries(au)) if (n > 0) s.autoUpgrade[k] = n;
    for (const [k, n] of statuses) s.statuses[k] = n;
    const withdrawn = withdrawnTest(state, s);
    s.withdrawBase = withdrawBaseOf(s);
    s.versions = [...versions].sort((a, b) => b[1] - a[1]).map(([version, machines]) => ({ version, machines, withdrawn: withdrawn(version) }));
    out.push(s);
  }
  return out.sort((a, b) => a.artifactKey.localeCompare(b.artifactKey));
}

/** An OS image instance's artifact: `type` is `offer:sku` (the sku is empty for a gallery image). */
function imageOf(s: ArtifactSummary): { publisher: string; offer: string; sku: string } {
  const i = s.type.lastIndexOf(':');
  return { publisher: s.publisher, offer: s.type.slice(0, i), sku: s.type.slice(i + 1) };
}

function withdrawnTest(state: EngineState, s: ArtifactSummary): (version: string) => boolean {
  if (s.kind === 'guestPatch') return () => false; // patch baselines are never withdrawn (docs/patching.md)
  if (s.kind === 'extension') return (v) => state.catalog.isWithdrawn(s.publisher, s.type, v);
  const image = imageOf(s);
  return (v) => state.images.isWithdrawn(imageRefOfArtifact(image, v), v);
}

function withdrawBaseOf(s: ArtifactSummary): string {
  const e = encodeURIComponent;
  if (s.kind === 'guestPatch') return '';
  if (s.kind === 'extension') return `/phasewise/publishers/${e(s.publisher)}/extensionTypes/${e(s.type)}`;
  const ref = imageRefOfArtifact(imageOf(s), '');
  return ref.kind === 'gallery'
    ? `/phasewise/subscriptions/${e(ref.subscription)}/resourceGroups/${e(ref.resourceGroup)}/galleries/${e(ref.gallery)}/images/${e(ref.image)}`
    : `/phasewise/images/publishers/${e(ref.publisher)}/offers/${e(ref.offer)}/skus/${e(ref.sku)}`;
}

function* subscriptionsOf(state: EngineState): Generator<void, string[]> {
  const subs = new Set<string>();
  let seen = 0;
  for (const m of state.fleet.machines.values()) {
    if (++seen % CHUNK === 0) yield;
    subs.add(m.placement.subscription);
  }
  return [...subs].sort();
}

function* pass(state: EngineState): Generator<void, { value: ArtifactSummary[]; subscriptions: string[] }> {
  const value = yield* summarize(state);
  const subscriptions = yield* subscriptionsOf(state);
  return { value, subscriptions };
}

export interface Summary {
  /** The engine's last event when the pass started. */
  seq: number;
  value: ArtifactSummary[];
  subscriptions: string[];
  /** False while the engine has events the summary may not count yet. */
  upToDate: boolean;
}

export class FleetSummary {
  private last: { seq: number; startedMs: number; value: ArtifactSummary[]; subscriptions: string[] } | null = null;
  private running: NodeJS.Immediate | null = null;
  private stopped = false;

  constructor(private readonly state: () => EngineState, private readonly wallMs: () => number = () => performance.now()) {}

  /** The last finished summary; the first call computes one at once. Starts a background pass when it is stale. */
  get(): Summary {
    const state = this.state();
    if (!this.last) {
      const startedMs = this.wallMs();
      const it = pass(state);
      let r = it.next();
      while (!r.done) r = it.next();
      this.last = { seq: state.eventSeq, startedMs, ...r.value };
    } else if (this.last.seq !== state.eventSeq && !this.running && this.wallMs() - this.last.startedMs >= MIN_INTERVAL_MS) {
      this.background(state);
    }
    return { seq: this.last.seq, value: this.last.value, subscriptions: this.last.subscriptions, upToDate: this.last.seq === state.eventSeq };
  }

  stop(): void {
    this.stopped = true;
    if (this.running) clearImmediate(this.running);
    this.running = null;
  }

  private background(state: EngineState): void {
    const seq = state.eventSeq;
    const startedMs = this.wallMs();
    const it = pass(state);
    const step = () => {
      this.running = null;
      if (this.stopped) return;
      const r = it.next();
      if (r.done) this.last = { seq, startedMs, ...r.value };
      else this.running = setImmediate(step);
    };
    this.running = setImmediate(step);
  }
}
