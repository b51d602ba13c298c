/**
 * The simulated fleet. It takes the engine's actions like an agent would, and answers later, with a
 * seeded chance of failure, with observations: action results and health reports (R25). Idempotency
 * keys it has seen are answered once, however often they are resent.
 */
import type { Driver, DriverAction, Observation, ReimageReport } from '../../engine/driver.js';
import type { FleetState } from '../../engine/state.js';
import type { HealthSignals } from '../../model/health.js';
import { InstantQueue } from '../../util/time-queue.js';
import { hashUnit, Random, sampleLatencyMs } from '../../sim/random.js';
import type { FailureModel, FleetBehaviour } from './failure-model.js';
import { modelFor } from './failure-model.js';
import { SIM_REBOOT_MS, SimPatches } from './sim-patches.js';
import { installationCounts } from '../../model/patches.js';
import { baselineCutoffMs } from '../../model/patch-baseline.js';
import { HeldSends } from './held-sends.js';

/** Background unhealthiness starts or ends; `index` is its place in the behaviour's background list. */
class EpisodeEdge {
  constructor(
    readonly episode: { readonly machines: string[]; sick: boolean; index: number },
    /** Chooses the episode's machines when it starts. */
    readonly resolve?: () => void,
  ) {}
}

/**
 * What the fleet has queued for later, without a wrapper (the queue keeps the time): an action's
 * answer, a machine id (a health report of that machine, taken when delivered), or an episode's edge.
 */
type Delivery = Observation | string | EpisodeEdge;

interface SnapshotDelivery {
  at: number;
  obs?: Observation;
  probe?: string;
  episode?: { index: number; sick: boolean; machines?: string[] };
}

/** The simulated fleet's own state, as JSON (see SimDriver.snapshot). */
export interface SimDriverSnapshot {
  version: 1;
  seed: number;
  rng: number[];
  queue: SnapshotDelivery[];
  inflight: string[];
  recent: Array<[string, Observation]>;
  recentNext: number;
  broken: Array<[string, string[]]>;
  sick: string[];
  stats: SimDriverStats;
  /** The guest patches each machine installed (absent in snapshots from before it was kept). */
  patchesInstalled?: Array<[string, string[]]>;
}

export interface SimDriverStats {
  actions: number;
  duplicateActions: number;
  installFailures: number;
  unhealthyAfterUpgrade: number;
  rollbackFailures: number;
  reimages: number;
}

export class SimDriver implements Driver {
  private queue = new InstantQueue<Delivery>();
  private readonly rng: Random;
  /**
   * Keys in flight (null) and the answers of the most recent ones: a resend of either is not done
   * again. One map for both: a key is looked up once when sent and answered in place.
   */
  private readonly known = new Map<string, ActionResult | null>();
  /** The most recent answered keys, oldest first from `recentNext`: a bounded window, as a real agent's history. */
  private readonly recentOrder: string[] = [];
  private recentNext = 0;
  /** Machines a bad version broke, until it is rolled back: artifactKey per machine. */
  private readonly broken = new Map<string, Set<string>>();
  /** Machines sick for background reasons. */
  private readonly sick = new Set<string>();
  /** Guest OS patches of the simulated machines (issue 16). */
  readonly patches: SimPatches;
  readonly stats: SimDriverStats = { actions: 0, duplicateActions: 0, installFailures: 0, unhealthyAfterUpgrade: 0, rollbackFailures: 0, reimages: 0 };
  /** Actions decided when committed and held until sent (group commit across sends), or null: none are held. */
  private held: HeldSends | null = null;
  /** True while deciding a prepared action: what it queues and marks is held. */
  private deciding = false;
  /** Answers of prepared actions whose commits were rolled back: never delivered. */
  private readonly discarded = new Set<Observation>();

  constructor(
    private fleet: FleetState,
    private readonly behaviour: FleetBehaviour,
    private readonly now: () => number,
    private readonly seed: number,
  ) {
    this.rng = new Random(seed);
    this.patches = new SimPatches(seed, now);
    behaviour.background.forEach((e, i) => this.scheduleEpisode(e, i));
  }

  /** Earliest pending delivery, or null. */
  nextAt(): number | null {
    return this.queue.nextAt();
  }

  /** Hands every observation due by `t` to `sink`, in time order. */
  deliverDue(t: number, sink: (o: Observation) => void): void {
    const queue = this.queue;
    for (let next = queue.nextAt(); next !== null && next <= t; next = queue.nextAt()) {
      if (this.held !== null && !this.held.empty && this.mustRelease(this.held, next, queue.peekItem()!)) this.release(this.held);
      const d = queue.pop()!;
      if (typeof d === 'string') sink({ kind: 'health', machineId: d, signals: this.signals(d) });
      else if (d instanceof EpisodeEdge) this.episodeEdge(d, sink);
      else {
        if (this.discarded.size > 0 && this.discarded.delete(d)) continue;
        if (d.kind === 'actionResult') this.answered(d);
        sink(d);
      }
    }
  }

  /**
   * Group commit across sends: from now on `prepare` decides a commit's actions at once and holds them
   * until they are sent; `release` commits the open group (which sends them). See held-sends.ts.
   */
  holdUntilSent(release: () => void): void {
    this.discardPrepared();
    this.held = new HeldSends(release);
  }

  /** Decides each action now, as `send` would, and holds it until it is sent (only when holding). */
  prepare(actions: readonly DriverAction[]): void {
    const held = this.held;
    if (held === null) return;
    for (const a of actions) {
      this.deciding = true;
      try {
        this.decide(a);
      } finally {
        this.deciding = false;
      }
      held.keys.add(a.key);
      held.machines.add(a.machineId);
    }
  }

  /** The group holding the prepared actions rolled back: they were never sent, so nothing of them happens. */
  discardPrepared(): void {
    const held = this.held;
    if (held === null || held.empty) return;
    for (const k of held.fresh) this.known.delete(k);
    for (const a of held.answers) this.discarded.add(a);
    for (let i = held.marks.length - 1; i >= 0; i--) {
      const [machineId, key, was] = held.marks[i]!;
      this.setBroken(machineId, key, was);
    }
    held.clear();
  }

  /** Commits the open group now if it holds prepared actions (before something else could see their effects). */
  releaseHeld(): void {
    if (this.held !== null && !this.held.empty) this.release(this.held);
  }

  /** A delivery that could show something of a held action (its answer, or a report of a machine it touched). */
  private mustRelease(held: HeldSends, next: number, d: Delivery): boolean {
    if (typeof d === 'string') return held.blocks(next, d);
    if (d instanceof EpisodeEdge) return true; // rare: its machines are only known when it starts
    return held.blocks(next, null);
  }

  private release(held: HeldSends): void {
    held.release();
    if (!held.empty) throw new Error('SimDriver: the group was committed but some prepared actions were not sent');
  }

  private episodeEdge(d: EpisodeEdge, sink: (o: Observation) => void): void {
    d.resolve?.();
    for (const id of d.episode.machines) {
      if (d.episode.sick) this.sick.add(id);
      else this.sick.delete(id);
      sink({ kind: 'health', machineId: id, signals: this.signals(id) });
    }
  }

  send(action: DriverAction): void {
    // A prepared action was decided when committed: sending it releases it.
    if (this.held !== null && this.held.sent(action.key)) return;
    this.decide(action);
  }

  private decide(action: DriverAction): void {
    const answer = this.known.get(action.key);
    if (answer !== undefined) {
      this.stats.duplicateActions++;
      // Already done: answer again with the outcome (its first answer may have been lost with a crash).
      // (A copy while deciding: a discarded answer is recognised by identity.)
      if (answer) this.push(at(this.now()), this.deciding ? { ...answer } : answer);
      return;
    }
    this.known.set(action.key, null);
    if (this.deciding) this.held!.fresh.push(action.key);
    this.stats.actions++;
    const model = modelFor(this.behaviour, action.toVersion);
    const slow = this.isSlow(action.machineId) ? this.behaviour.slowAgents.factor : 1;
    const t0 = this.now();
    if (action.kind === 'install' || action.kind === 'uninstall') {
      this.userAction(action, model, slow, t0);
      return;
    }
    if (action.artifact.kind === 'guestPatch') {
      this.platformPatch(action, model, t0);
      return;
    }
    const reimage = action.artifact.kind === 'osImage';
    if (action.kind === 'upgrade') {
      const done = at(t0 + sampleLatencyMs(this.rng, reimage ? model.reimage : model.install) * slow);
      if (this.rng.chance(model.installFailure)) {
        this.stats.installFailures++;
        this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: false, version: action.fromVersion, reason: `install of ${action.toVersion} failed (simulated)` });
        return;
      }
      this.push(done, this.succeeded(action, reimage));
      // A re-image lays down a fresh OS disk: what broke the previous image is gone with it (R61).
      if (reimage && this.broken.get(action.machineId)?.has(action.artifactKey)) this.markBroken(action.machineId, action.artifactKey, false);
      if (this.rng.chance(model.unhealthyAfterUpgrade)) {
        this.stats.unhealthyAfterUpgrade++;
        this.markBroken(action.machineId, action.artifactKey, true);
      }
      const healthAt = at(done + sampleLatencyMs(this.rng, model.health) * slow);
      this.probe(healthAt, action.machineId);
      return;
    }
    const back = modelFor(this.behaviour, action.fromVersion);
    const done = at(t0 + sampleLatencyMs(this.rng, reimage ? back.reimage : back.rollback) * slow);
    if (this.rng.chance(back.rollbackFailure)) {
      this.stats.rollbackFailures++;
      this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: false, version: action.fromVersion, reason: `reinstall of ${action.toVersion} failed (simulated)` });
      return;
    }
    this.markBroken(action.machineId, action.artifactKey, false);
    this.push(done, this.succeeded(action, reimage));
    this.probe(done, action.machineId);
  }

  /**
   * R76: a platform patch baseline: the machine's Critical and Security patches published by the baseline's
   * date, through the seeded patch catalogue (its durations, per-patch failures and reboots). A patch that
   * fails is counted, as Azure's CompletedWithWarnings; the scenario's failure model decides whether the
   * installation fails as a whole or leaves the machine unhealthy. Patches are never uninstalled: the
   * engine sends no rollback for this kind, and one sent anyway is refused.
   */
  private platformPatch(action: DriverAction, model: FailureModel, t0: number): void {
    const fail = (reason: string) => this.push(at(t0 + 60_000), { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: false, version: action.fromVersion, reason });
    const m = this.fleet.machines.get(action.machineId);
    if (action.kind !== 'upgrade' || !m) return fail(action.kind === 'upgrade' ? 'machine unknown to the simulated fleet' : 'installed patches cannot be uninstalled');
    const reboot = action.settings['rebootSetting'];
    const { result, elapsedMs } = this.patches.install({ machineId: m.id, os: m.os }, {
      key: action.key, maximumDurationMs: PLATFORM_PATCH_MAX_MS, rebootSetting: reboot === 'Never' || reboot === 'Always' ? reboot : 'IfRequired',
      classifications: ['Critical', 'Security'], include: [], exclude: [], publishedByMs: baselineCutoffMs(action.toVersion),
    });
    const counts = installationCounts(result);
    const rebooted = result.rebootStatus === 'Completed';
    const patch = { installed: counts.installed, failed: counts.failed, pending: counts.pending, rebooted, rebootSec: rebooted ? SIM_REBOOT_MS / 1000 : 0 };
    const done = at(t0 + Math.max(elapsedMs, 30_000));
    if (this.rng.chance(model.installFailure)) {
      this.stats.installFailures++;
      const reason = `installation of patch baseline ${action.toVersion} failed (simulated)`;
      this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: false, version: action.fromVersion, reason, patch });
      return;
    }
    this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: true, version: action.toVersion, patch });
    if (this.rng.chance(model.unhealthyAfterUpgrade)) {
      this.stats.unhealthyAfterUpgrade++;
      this.markBroken(action.machineId, action.artifactKey, true);
    }
    this.probe(at(done + sampleLatencyMs(this.rng, model.health)), action.machineId);
  }

  /** A successful answer; built without a spread, as it is built for every action. */
  private succeeded(action: DriverAction, reimage: boolean): ActionResult {
    return reimage
      ? { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: true, version: action.toVersion, reimage: this.reimaged(action.machineId) }
      : { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: true, version: action.toVersion };
  }

  /** R61: a re-image replaces the OS disk only; the machine's extensions and custom data run again on it. */
  private reimaged(machineId: string): ReimageReport {
    this.stats.reimages++;
    const extensions: string[] = [];
    for (const [key, byMachine] of this.fleet.instances) {
      const inst = key.startsWith('extension:') ? byMachine.get(machineId) : undefined;
      if (inst) extensions.push(inst.name);
    }
    return { extensions: extensions.sort(), customData: true, dataDisksKept: true };
  }

  /**
   * An install the user asked for succeeds unless the version's failure model says it fails to
   * install; an uninstall always succeeds. Both take the install latency, and work for machines
   * added at any time (nothing here is computed per machine in advance).
   */
  private userAction(action: DriverAction, model: FailureModel, slow: number, t0: number): void {
    const done = at(t0 + sampleLatencyMs(this.rng, model.install) * slow);
    if (action.kind === 'uninstall') {
      this.markBroken(action.machineId, action.artifactKey, false);
      this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: true, version: '' });
      return;
    }
    if (this.rng.chance(model.installFailure)) {
      this.stats.installFailures++;
      this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: false, version: action.fromVersion, reason: `install of ${action.toVersion} failed (simulated)` });
      return;
    }
    this.push(done, { kind: 'actionResult', key: action.key, machineId: action.machineId, ok: true, version: action.toVersion });
    this.probe(done, action.machineId);
  }

  /** The engine's fleet after a restart rebuilt it: machines added or removed at run time are seen from then on. */
  useFleet(fleet: FleetState): void {
    this.fleet = fleet;
  }

  /** Health reports now, for machines the engine wants to look at again. */
  observe(machineIds: readonly string[]): void {
    for (const id of machineIds) if (this.fleet.machines.has(id)) this.queue.pushAt(at(this.now()), id);
  }

  private answered(obs: ActionResult): void {
    const key = obs.key;
    const old = this.recentOrder[this.recentNext];
    // The key leaving the window is forgotten, unless it is in flight again (a key can hold two slots).
    if (old !== undefined && this.known.get(old)) this.known.delete(old);
    this.recentOrder[this.recentNext] = key;
    this.known.set(key, obs); // no longer in flight: answered
    this.recentNext = (this.recentNext + 1) % RECENT_KEYS;
  }

  /** An action's answer, due at `t` (held with its action while deciding a prepared one). */
  private push(t: number, obs: ActionResult): void {
    if (this.deciding) this.held!.queued(t, obs);
    this.queue.pushAt(t, obs);
  }

  /** A health report of a machine an action touched, taken when due. */
  private probe(t: number, machineId: string): void {
    if (this.deciding) this.held!.queued(t, null);
    this.queue.pushAt(t, machineId);
  }

  private markBroken(machineId: string, key: string, on: boolean): void {
    if (this.deciding) this.held!.marks.push([machineId, key, this.broken.get(machineId)?.has(key) ?? false]);
    this.setBroken(machineId, key, on);
  }

  private setBroken(machineId: string, key: string, on: boolean): void {
    let keys = this.broken.get(machineId);
    if (on) {
      if (!keys) this.broken.set(machineId, (keys = new Set()));
      keys.add(key);
    } else if (keys) {
      keys.delete(key);
      if (keys.size === 0) this.broken.delete(machineId);
    }
  }

  /** What the machine reports now: a broken version fails the application probe (or the platform signal without one). */
  private signals(machineId: string): HealthSignals {
    const bad = (this.broken.size > 0 && this.broken.has(machineId)) || (this.sick.size > 0 && this.sick.has(machineId));
    const m = this.fleet.machines.get(machineId); // absent for a machine added or removed where this fleet did not see it
    const set = m?.placement.setId ? this.fleet.scaleSets.get(m.placement.setId) : undefined;
    // Four possible answers, shared (and frozen: the engine keeps them as they are).
    if (set?.hasApplicationHealth) return bad ? APPLICATION_FAILING : APPLICATION_OK;
    return bad ? PLATFORM_FAILING : PLATFORM_OK;
  }

  private isSlow(machineId: string): boolean {
    const s = this.behaviour.slowAgents;
    return s.share > 0 && hashUnit(machineId, this.seed ^ 0x5a5a) < s.share;
  }

  /**
   * A background episode hits the machines it selects when it starts, so machines added at run time
   * are in it too; the machines known at construction come first, in their order, so a run without
   * fleet changes is the same whichever copy of the fleet the driver holds.
   */
  private scheduleEpisode(e: FleetBehaviour['background'][number], index: number): void {
    const [start, end] = this.episodePair(e, index);
    this.queue.pushAt(e.atMs, start);
    this.queue.pushAt(e.atMs + e.durationMs, end);
  }

  /** An episode's start (which picks its machines) and end (which heals the same ones), due at its start and end. */
  private episodePair(e: FleetBehaviour['background'][number], index: number): [EpisodeEdge, EpisodeEdge] {
    const known = this.episodeMachines(e);
    const episode = { machines: known, sick: true, index };
    const resolve = () => {
      const seen = new Set(known);
      const now = this.episodeMachines(e);
      episode.machines = [...known.filter((id) => this.fleet.machines.has(id)), ...now.filter((id) => !seen.has(id))];
    };
    return [new EpisodeEdge(episode, resolve), new EpisodeEdge({ get machines() { return episode.machines; }, sick: false, index })];
  }

  // ---- surviving a restart of serve --------------------------------------------------------------

  /**
   * Everything the simulated fleet holds that its seed alone cannot give back: the random stream's
   * position, deliveries in flight, keys in flight and answered, machines broken or sick. Saved beside
   * the engine's state, it lets a restarted `serve` go on as if it had never stopped.
   */
  snapshot(): SimDriverSnapshot {
    const queue = this.queue.orderedAt().map(([at, d]): SnapshotDelivery => {
      if (typeof d === 'string') return { at, probe: d };
      if (!(d instanceof EpisodeEdge)) return { at, obs: d };
      // An episode not started yet is rebuilt from the behaviour; one under way keeps its machines.
      return { at, episode: { index: d.episode.index, sick: d.episode.sick, ...(d.resolve ? {} : { machines: [...d.episode.machines] }) } };
    });
    const inflight: string[] = [];
    for (const [k, answer] of this.known) if (answer === null) inflight.push(k);
    return {
      version: 1, seed: this.seed, rng: this.rng.state, queue, inflight,
      recent: this.recentOrder.map((k) => [k, this.known.get(k) ?? undefined] as [string, Observation]), recentNext: this.recentNext,
      broken: [...this.broken].map(([id, keys]) => [id, [...keys]] as [string, string[]]), sick: [...this.sick], stats: { ...this.stats },
      patchesInstalled: this.patches.installedSnapshot(),
    };
  }

  /** Continues from a snapshot of a driver of the same scenario and seed (see `snapshot`). */
  restore(snap: SimDriverSnapshot): void {
    if (snap.version !== 1 || snap.seed !== this.seed) throw new Error(`simulator state of seed ${snap.seed} (version ${snap.version}) does not fit this fleet (seed ${this.seed})`);
    this.rng.state = snap.rng;
    this.queue = new InstantQueue<Delivery>();
    const pending = new Map<number, EpisodeEdge>();
    const dropped = new Set<number>();
    for (const d of snap.queue) {
      const ep = d.episode;
      if (!ep) {
        if (d.obs) this.queue.pushAt(d.at, d.obs);
        if (d.probe) this.queue.pushAt(d.at, d.probe);
      } else if (ep.sick && !ep.machines) {
        // Not started yet: it is rebuilt from the behaviour. A behaviour without it (serve started again
        // without the scenario that defined it, or with another) has nothing to pick its machines from: dropped.
        const e = this.behaviour.background[ep.index];
        if (!e) {
          dropped.add(ep.index);
          continue;
        }
        const [start, end] = this.episodePair(e, ep.index);
        pending.set(ep.index, end);
        this.queue.pushAt(e.atMs, start);
      } else if (!ep.sick && pending.has(ep.index)) {
        const e = this.behaviour.background[ep.index]!;
        this.queue.pushAt(e.atMs + e.durationMs, pending.get(ep.index)!);
      } else if (!ep.sick && dropped.has(ep.index)) continue; // the end of a dropped episode heals nothing
      else this.queue.pushAt(d.at, new EpisodeEdge({ machines: ep.machines ?? [], sick: ep.sick, index: ep.index }));
    }
    this.known.clear();
    this.recentOrder.length = 0;
    for (const [k, obs] of snap.recent) {
      this.recentOrder.push(k);
      this.known.set(k, (obs as ActionResult | undefined) ?? null);
    }
    for (const k of snap.inflight) if (!this.known.get(k)) this.known.set(k, null);
    this.recentNext = snap.recentNext;
    this.broken.clear();
    for (const [id, keys] of snap.broken) this.broken.set(id, new Set(keys));
    this.sick.clear();
    for (const id of snap.sick) this.sick.add(id);
    Object.assign(this.stats, snap.stats);
    this.patches.restoreInstalled(snap.patchesInstalled ?? []);
  }

  private episodeMachines(e: FleetBehaviour['background'][number]): string[] {
    const machines: string[] = [];
    for (const m of this.fleet.machines.values()) {
      if (e.region && m.placement.region !== e.region) continue;
      if (e.setId && m.placement.setId !== e.setId) continue;
      if (hashUnit(`${m.id}@${e.atMs}`, this.seed) < e.share) machines.push(m.id);
    }
    return machines;
  }
}

/** `maximumDuration` of a platform patch installation: well inside the engine's action timeout. */
const PLATFORM_PATCH_MAX_MS = 60 * 60_000;

/** How many answered keys the simulated agents remember (bounded, like a real agent's history). */
const RECENT_KEYS = 65_536;

type ActionResult = Extract<Observation, { kind: 'actionResult' }>;

const PLATFORM_OK: HealthSignals = Object.freeze({ platform: true });
const PLATFORM_FAILING: HealthSignals = Object.freeze({ platform: false });
const APPLICATION_OK: HealthSignals = Object.freeze({ platform: true, application: true });
const APPLICATION_FAILING: HealthSignals = Object.freeze({ platform: true, application: false });

/** Agents report on whole seconds. */
function at(ms: number): number {
  return Math.ceil(ms / 1000) * 1000;
}
