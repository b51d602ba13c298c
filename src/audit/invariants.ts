/**
 * Checks an event log, on its own, against the engine's safety invariants. Used by the property
 * tests and the benchmarks; it reads events in order and keeps only what is in flight.
 *
 * - geo-paired regions never have batches in flight together (R10), nor two zones of a region (R11)
 * - one batch of a set at a time (R13, R14); no batch above its limit; a scale set never all at once (R14)
 * - no batch in a phase that has not started, and no phase before its predecessor completed (R10)
 * - every unhealthy or failed upgrade is followed by a rollback (R22)
 * - no automatic attempt on an instance whose automatic upgrade is off (R5), none across majors (R1)
 * - attempt numbers of an instance only grow: one idempotency key is never started twice
 * - one action at a time per instance, across rollouts: no upgrade starts while another attempt on it is in flight
 *   (from its `instance.upgrade.started` to its success or the end of its rollback), whose rollback would aim at
 *   what the other installed (R22)
 * - a set never has batches of two rollouts in flight (two extensions take turns)
 * - `seq` strictly increases and `time` never goes back
 * - no batch of an automatic rollout starts while its release is held (`release.halted` until `release.resumed`), nor
 *   of a manual one while an operator holds it or it is withdrawn
 */
import { artifactKey } from '../model/artifact.js';
import type { BatchScope, EngineEvent } from '../model/events.js';
import { majorOf } from '../model/version.js';
import { DenseIds, DenseInts } from '../util/dense-ids.js';

interface RolloutTrack {
  id: string;
  /** 1, 2, …: how `acting` names this rollout. */
  ordinal: number;
  profile: string;
  /** `artifactKey@toVersion`. */
  release: string;
  regionPhase: Map<string, number>;
  phaseStarted: Set<number>;
  phaseEnded: Set<number>;
  batches: Map<string, BatchScope>;
  /** Per region: in-flight batches per zone key. */
  regionZones: Map<string, Map<string, number>>;
  /** Per region: in-flight batches of all its zones, the sum of `regionZones` (counts are never negative). */
  regionInflight: Map<string, number>;
  setInflight: Map<string, number>;
  /** The last attempt number started per machine index (0: none yet). */
  attempts: DenseInts;
  awaitingRollback: Set<string>;
  /**
   * The instances of this rollout's artifact with an attempt in flight (machine → its rollout's ordinal), shared by
   * the artifact's rollouts. A map of the few in flight, not an array over all machines: an attempt's end then
   * needs no lookup of the machine's index.
   */
  acting: Map<string, number>;
}

/** The instance events that end an attempt (its success, or the end of its rollback). */
type SettledEvent = Extract<EngineEvent, { type: 'instance.upgrade.succeeded' | 'instance.rollback.succeeded' | 'instance.rollback.failed' }>;

export interface InvariantOptions {
  /** Geo-pairs, both directions. */
  pairs: ReadonlyMap<string, string>;
}

export class InvariantChecker {
  readonly violations: string[] = [];
  private readonly rollouts = new Map<string, RolloutTrack>();
  /** Rollout ids by ordinal (index 0 unused): `acting` names rollouts by ordinal. */
  private readonly rolloutIds: string[] = [''];
  /** The rollout of the previous event: a log comes in long runs of one rollout's events. */
  private lastRollout: RolloutTrack | null = null;
  /** Machine ids as dense indices: the attempt numbers of every rollout live in typed arrays. */
  private readonly machines = new DenseIds();
  /** machineId|artifactKey of instances whose automatic upgrade is off. */
  private readonly disabled = new Set<string>();
  /** Subscriptions enrolled in automatic upgrade of scale-set extensions (R7). */
  private readonly enrolled = new Set<string>();
  /** In-flight batches per set across rollouts. */
  private readonly setBatches = new Map<string, number>();
  /** Releases held fleet-wide, as `artifactKey@toVersion`, with the kind of hold. */
  private readonly heldReleases = new Map<string, string>();
  private readonly majors = new Map<string, number>();
  /** Per artifact key, the instances with an attempt in flight (see RolloutTrack.acting). */
  private readonly acting = new Map<string, Map<string, number>>();
  private lastFrom: string | null = null;
  private lastTo: string | null = null;
  private lastSame = true;
  private lastSeq = 0;
  private lastTime = '';
  checked = 0;

  constructor(private readonly opts: InvariantOptions) {}

  readonly onEvents = (events: readonly EngineEvent[]): void => {
    for (const e of events) this.check(e);
  };

  private fail(e: EngineEvent, message: string): void {
    if (this.violations.length < 100) this.violations.push(`seq ${e.seq} ${e.time} ${e.type}: ${message}`);
  }

  check(e: EngineEvent): void {
    this.checked++;
    if (e.seq <= this.lastSeq) this.fail(e, `seq did not increase (previous ${this.lastSeq})`);
    if (e.time < this.lastTime) this.fail(e, `time went back from ${this.lastTime}`);
    this.lastSeq = e.seq;
    this.lastTime = e.time;
    // The most frequent events first: a million-machine log is mostly upgrades starting and succeeding.
    switch (e.type) {
      case 'instance.upgrade.started': {
        const r = this.track(e);
        if (r) this.upgradeStarted(e, r);
        return;
      }
      case 'instance.upgrade.succeeded':
      case 'instance.rollback.succeeded':
      case 'instance.rollback.failed': {
        const r = this.track(e);
        if (r) this.settled(e, r);
        return;
      }
      case 'batch.started': {
        const r = this.track(e);
        if (r) this.batchStarted(e, r);
        return;
      }
      case 'batch.completed': {
        const r = this.track(e);
        if (r) this.batchCompleted(e, r);
        return;
      }
      case 'instance.health.unhealthy':
      case 'instance.upgrade.failed':
        this.track(e)?.awaitingRollback.add(e.machineId);
        return;
      case 'instance.rollback.started':
      case 'instance.rollback.skipped': { // R62 (rollback disabled), or a machine sent back from a withdrawn version
        const r = this.track(e);
        if (!r) return;
        r.awaitingRollback.delete(e.machineId);
        if (e.type === 'instance.rollback.skipped') this.settled(e, r);
        return;
      }
      case 'phase.started': {
        const r = this.track(e);
        if (!r) return;
        if (e.phase > 0 && !r.phaseEnded.has(e.phase - 1)) this.fail(e, `phase ${e.phase} started before phase ${e.phase - 1} completed`);
        r.phaseStarted.add(e.phase);
        return;
      }
      case 'phase.completed':
        this.track(e)?.phaseEnded.add(e.phase);
        return;
      case 'rollout.resumed': {
        // An operator's resume acknowledges a failed phase: it counts as ended.
        const r = this.track(e);
        if (r) for (const p of r.phaseStarted) r.phaseEnded.add(p);
        return;
      }
      case 'enrollment.changed':
        // R7: scale-set instances of an enrolled subscription count as opted in whatever their own setting says.
        if (e.enrolled) this.enrolled.add(e.subscription);
        else this.enrolled.delete(e.subscription);
        return;
      case 'autoUpgrade.changed': {
        const k = `${e.machineId}|${e.artifactKey}`;
        if (e.enabled) this.disabled.delete(k);
        else this.disabled.add(k);
        return;
      }
      case 'release.halted':
        this.heldReleases.set(`${e.artifactKey}@${e.toVersion}`, e.kind);
        return;
      case 'release.resumed':
        this.heldReleases.delete(`${e.artifactKey}@${e.toVersion}`);
        return;
      case 'rollout.created':
        return this.created(e);
      default:
        // Any other event of a rollout must be of one that was created.
        if ('rolloutId' in e) this.track(e);
        return;
    }
  }

  /** The rollout an event belongs to, or null (a violation) when it was never created. */
  private track(e: Extract<EngineEvent, { rolloutId: string }>): RolloutTrack | null {
    const last = this.lastRollout;
    if (last !== null && last.id === e.rolloutId) return last;
    const r = this.rollouts.get(e.rolloutId);
    if (!r) {
      this.fail(e, 'event for a rollout never created');
      return null;
    }
    return (this.lastRollout = r);
  }

  private created(e: Extract<EngineEvent, { type: 'rollout.created' }>): void {
    const regionPhase = new Map<string, number>();
    e.phases.forEach((regions, i) => {
      for (const r of regions) {
        const pair = this.opts.pairs.get(r);
        if (pair && regions.includes(pair)) this.fail(e, `phase ${i} holds geo-pair ${r} and ${pair}`);
        regionPhase.set(r, i);
      }
    });
    const key = artifactKey(e.artifact);
    const release = `${key}@${e.toVersion}`;
    let acting = this.acting.get(key);
    if (!acting) this.acting.set(key, (acting = new Map()));
    const ordinal = this.rolloutIds.length;
    this.rolloutIds.push(e.rolloutId);
    const track: RolloutTrack = {
      id: e.rolloutId, ordinal, profile: e.profile, release, regionPhase, phaseStarted: new Set(), phaseEnded: new Set(), batches: new Map(),
      regionZones: new Map(), regionInflight: new Map(), setInflight: new Map(), attempts: new DenseInts(), awaitingRollback: new Set(), acting,
    };
    this.rollouts.set(e.rolloutId, track);
    if (this.lastRollout?.id === e.rolloutId) this.lastRollout = track; // a rollout id created again
  }

  /** The attempt on this instance is over: another rollout may act on it. */
  private settled(e: SettledEvent | Extract<EngineEvent, { type: 'instance.rollback.skipped' }>, r: RolloutTrack): void {
    r.acting.delete(e.machineId);
  }

  private batchStarted(e: Extract<EngineEvent, { type: 'batch.started' }>, r: RolloutTrack): void {
    const s = e.scope;
    // The evidence holds automatic rollouts only; an operator's hold or a withdrawal holds manual ones too.
    const held = this.heldReleases.get(r.release);
    if (held !== undefined && (r.profile !== 'manual' || held !== 'evidence')) this.fail(e, `batch of release ${r.release} while it is held (${held})`);
    const phase = r.regionPhase.get(s.region);
    if (phase === undefined) this.fail(e, `region ${s.region} is in no phase of the rollout`);
    else if (!r.phaseStarted.has(phase)) this.fail(e, `batch in region ${s.region} before its phase ${phase} started`);
    const pair = this.opts.pairs.get(s.region);
    if (pair && (r.regionInflight.get(pair) ?? 0) > 0) this.fail(e, `batch in ${s.region} while its geo-pair ${pair} has one in flight`);
    const zones = r.regionZones.get(s.region) ?? new Map<string, number>();
    const key = zoneKey(s);
    // The region's count in flight tells whether another zone has a batch; the zones are walked only to name it.
    const inRegion = r.regionInflight.get(s.region) ?? 0;
    if (inRegion - (zones.get(key) ?? 0) > 0) for (const [z, n] of zones) if (n > 0 && z !== key) this.fail(e, `zone ${key} of ${s.region} started while zone ${z} has a batch in flight`);
    if (s.setId && (r.setInflight.get(s.setId) ?? 0) > 0) this.fail(e, `a second batch of set ${s.setId} started while one is in flight`);
    else if (s.setId && (this.setBatches.get(s.setId) ?? 0) > 0) this.fail(e, `set ${s.setId} has a batch of another rollout in flight`);
    if (s.setId) this.setBatches.set(s.setId, (this.setBatches.get(s.setId) ?? 0) + 1);
    if (e.limit !== undefined && e.instances.length > e.limit) this.fail(e, `${e.instances.length} instances above the batch limit ${e.limit}`);
    if (e.setSize !== undefined && e.setSize > 1 && e.instances.length >= e.setSize) this.fail(e, `whole set of ${e.setSize} in one batch`);
    zones.set(key, (zones.get(key) ?? 0) + 1);
    r.regionZones.set(s.region, zones);
    r.regionInflight.set(s.region, inRegion + 1);
    if (s.setId) r.setInflight.set(s.setId, (r.setInflight.get(s.setId) ?? 0) + 1);
    r.batches.set(e.batchId, s);
  }

  private batchCompleted(e: Extract<EngineEvent, { type: 'batch.completed' }>, r: RolloutTrack): void {
    const s = r.batches.get(e.batchId);
    if (!s) return this.fail(e, 'completion of a batch not in flight');
    r.batches.delete(e.batchId);
    const zones = r.regionZones.get(s.region)!;
    zones.set(zoneKey(s), zones.get(zoneKey(s))! - 1);
    r.regionInflight.set(s.region, r.regionInflight.get(s.region)! - 1);
    if (s.setId) {
      r.setInflight.set(s.setId, r.setInflight.get(s.setId)! - 1);
      this.setBatches.set(s.setId, this.setBatches.get(s.setId)! - 1);
    }
  }

  private upgradeStarted(e: Extract<EngineEvent, { type: 'instance.upgrade.started' }>, r: RolloutTrack): void {
    if (!r.batches.has(e.batchId)) this.fail(e, `instance ${e.machineId} started outside an in-flight batch`);
    const m = this.machines.of(e.machineId);
    const prior = r.attempts.get(m);
    if (e.attempt <= prior) this.fail(e, `attempt ${e.attempt} of ${e.machineId} started again (last was ${prior})`);
    r.attempts.set(m, e.attempt);
    const other = r.acting.get(e.machineId);
    if (other !== undefined) this.fail(e, `${e.machineId} upgraded while rollout ${this.rolloutIds[other]} has an attempt in flight on it (one action at a time per instance)`);
    r.acting.set(e.machineId, r.ordinal);
    if (r.profile === 'manual') return;
    // Most logs never disable anything: the key is built only when something was.
    if (this.disabled.size > 0) {
      const enrolled = e.placement.setKind === 'scaleSet' && this.enrolled.has(e.placement.subscription);
      if (!enrolled && this.disabled.has(`${e.machineId}|${artifactKey(e.artifact)}`)) this.fail(e, `${e.machineId} attempted after its automatic upgrade was disabled`);
    }
    // R1 is about extensions; an automatic OS image upgrade follows its reference at `latest` (R60).
    if (e.artifact.kind === 'extension' && !this.sameMajor(e.fromVersion, e.toVersion)) this.fail(e, `automatic upgrade across majors ${e.fromVersion} → ${e.toVersion}`);
  }

  /** R1's check; a log names few version pairs a million times in a row, so the last pair is remembered. */
  private sameMajor(from: string, to: string): boolean {
    if (from === this.lastFrom && to === this.lastTo) return this.lastSame;
    this.lastFrom = from;
    this.lastTo = to;
    return (this.lastSame = this.majorOf(from) === this.majorOf(to));
  }

  /** A version's major, parsed once per version: a log names few versions a million times. */
  private majorOf(version: string): number {
    let m = this.majors.get(version);
    if (m === undefined) this.majors.set(version, (m = majorOf(version)));
    return m;
  }

  /** Violations, including rollbacks that never started. */
  finish(): string[] {
    for (const [id, r] of this.rollouts) for (const m of r.awaitingRollback) this.violations.push(`rollout ${id}: ${m} turned unhealthy or failed but was never rolled back`);
    return this.violations;
  }
}

function zoneKey(s: BatchScope): string {
  return s.crossZone ? '\u0000cross' : (s.zone ?? '\u0000none');
}
