/**
 * Long-running operations as ARM serves them: a write answers at once with an operation id; clients
 * poll the operation's status (`Azure-AsyncOperation`) or its monitor (`Location`) until it is done.
 * An operation's status is read from the engine's state whenever it is polled, and fixed once final.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { EngineState } from '../../engine/state.js';
import { getInstance } from '../../engine/state.js';
import type { Documents } from './documents.js';

export type OperationStatus = 'InProgress' | 'Succeeded' | 'Failed' | 'Canceled';

/** What an operation waits for. */
export type Track =
  | { kind: 'done' }
  | { kind: 'instances'; items: Array<{ machineId: string; artifactKey: string }> }
  | { kind: 'rollouts'; ids: string[] }
  /** Work outside the engine (a patch operation): the route finishes it with its result (Operations.finish). */
  | { kind: 'result' };

export interface OperationRecord {
  name: string;
  status: OperationStatus;
  startTime: string;
  endTime?: string;
  error?: { code: string; message: string };
  track: Track;
  /** The body the monitor (`Location`) answers with once the operation succeeded. */
  result?: unknown;
  /** Operations of kind 'result': when, on the engine's clock, an unanswered one fails. */
  deadline?: string;
  /**
   * When it became final, on the wall clock (ms): what its retention counts from. Records of versions before
   * session 20 lack it: the first sweep that finds one stamps it with its own time (their endTime is on the
   * engine's clock, which with a fast clock factor is months or years from the wall clock).
   */
  finishedAtMs?: number;
}

/**
 * How long a finished operation's status stays readable, on the wall clock (not the simulated one: with a
 * fast clock factor a simulated day is seconds). Then, or when more than MAX_OPERATIONS records are kept,
 * finished records are removed, oldest first, and a poll of one answers `404 OperationNotFound`.
 * ARM's resource providers keep an operation's status for a while after it ends; a day lets a client that
 * saved a poller (`restorePoller`) across a restart or a night still read its outcome.
 */
export const OPERATION_RETENTION_MS = 24 * 3_600_000;
/** The most operation records kept (each a row of `arm_documents`; a scale set's lists every instance). */
export const MAX_OPERATIONS = 10_000;
/** A sweep for expired records runs at a new operation at most this often (wall clock). */
export const OPERATION_SWEEP_MS = 60_000;

/** What sweeping needs: the engine's state and clock (to settle records nobody polled) and the wall clock. */
export interface OperationClocks {
  state: () => EngineState;
  /** The engine's now, ISO 8601 (what `startTime` and `endTime` are in). */
  now: () => string;
  wallNow: () => number;
}

export const operationPath = (sub: string, provider: string, location: string, name: string) =>
  `/subscriptions/${sub}/providers/${provider}/locations/${location}/operations/${name}`;

/** The status a track has now, with the error of a failure. */
export function evaluate(state: EngineState, track: Track): { status: OperationStatus; error?: { code: string; message: string } } {
  if (track.kind === 'done') return { status: 'Succeeded' };
  if (track.kind === 'result') return { status: 'InProgress' };
  if (track.kind === 'instances') {
    let failed: string | null = null;
    for (const { machineId, artifactKey } of track.items) {
      const inst = getInstance(state.fleet, artifactKey, machineId);
      if (!inst) continue; // removed meanwhile: nothing left to wait for
      if (inst.status === 'Transitioning') return { status: 'InProgress' };
      if (inst.status === 'Failed') failed ??= `${inst.name} on ${machineId}: ${inst.blockedReason ?? 'the extension failed to provision'}`;
    }
    return failed ? { status: 'Failed', error: { code: 'VMExtensionProvisioningError', message: failed } } : { status: 'Succeeded' };
  }
  let cancelled = false;
  let stopped: string | null = null;
  for (const id of track.ids) {
    const r = state.rollouts.get(id);
    if (!r) continue;
    if (r.status === 'running') return { status: 'InProgress' };
    if (r.status === 'cancelled') cancelled = true;
    if (r.status === 'stopped') stopped ??= r.reason ?? 'the rolling upgrade stopped';
  }
  if (stopped) return { status: 'Failed', error: { code: 'RollingUpgradeFaulted', message: stopped } };
  return { status: cancelled ? 'Canceled' : 'Succeeded' };
}

export class Operations {
  /** Operations of kind 'result' this process is still working on. */
  private readonly working = new Set<string>();
  /** Operation records stored, counted once then kept up to date (null: not counted yet). */
  private stored: number | null = null;
  private lastSweepMs = Number.NEGATIVE_INFINITY;
  /**
   * The count at which the next sweep is due: MAX_OPERATIONS, or a tenth more than a sweep left when records
   * in progress (never removed) kept it over, so such a fleet does not sweep at every new operation.
   */
  private sweepAtCount = MAX_OPERATIONS;

  /** Without `clocks` (a follower's read model) nothing is ever removed: only the writer sweeps. */
  constructor(private readonly docs: Documents, private readonly clocks: OperationClocks | null = null) {}

  /** Records an operation whose work runs in this process; `finish` ends it. */
  begin(sub: string, provider: string, location: string, now: string, deadline: string): string {
    const { path, record } = this.create(sub, provider, location, { kind: 'result' }, now);
    this.docs.put(path, `/subscriptions/${sub}`, 'operation', { ...record, deadline });
    this.working.add(path.toLowerCase());
    return path;
  }

  /** Ends an operation started with `begin`: its result, or the error it failed with. */
  finish(path: string, now: string, outcome: { result: unknown } | { error: { code: string; message: string } }): void {
    this.working.delete(path.toLowerCase());
    const doc = this.docs.get<OperationRecord>(path);
    if (!doc || doc.body.status !== 'InProgress') return;
    const at = this.wallNow();
    const done: OperationRecord = 'result' in outcome
      ? { ...doc.body, status: 'Succeeded', endTime: now, result: outcome.result, finishedAtMs: at }
      : { ...doc.body, status: 'Failed', endTime: now, error: outcome.error, finishedAtMs: at };
    this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', done);
  }

  /** Records an operation; returns its status URL path. */
  create(sub: string, provider: string, location: string, track: Track, now: string): { path: string; record: OperationRecord } {
    this.sweepIfDue();
    // Work done before the answer (a delete) ends now: its endTime is not the instant someone first polled it.
    const record: OperationRecord = track.kind === 'done'
      ? { name: randomUUID(), status: 'Succeeded', startTime: now, endTime: now, track, finishedAtMs: this.wallNow() }
      : { name: randomUUID(), status: 'InProgress', startTime: now, track };
    const path = operationPath(sub, provider, location, record.name);
    this.docs.put(path, `/subscriptions/${sub}`, 'operation', record);
    if (this.stored !== null) this.stored++;
    return { path, record };
  }

  /**
   * Removes expired records when a minute has passed since the last sweep, or when the store holds
   * MAX_OPERATIONS: records are counted once, then kept count of, so the bound holds between sweeps.
   */
  private sweepIfDue(): void {
    if (!this.clocks) return;
    this.stored ??= this.docs.countOfKind('operation');
    if (this.stored < this.sweepAtCount && this.clocks.wallNow() - this.lastSweepMs < OPERATION_SWEEP_MS) return;
    this.sweep();
  }

  /**
   * One sweep: settles the records still in progress (one nobody polls would otherwise stay so forever),
   * removes the finished ones past OPERATION_RETENTION_MS, then the oldest finished ones until a tenth of
   * MAX_OPERATIONS is free (so the next sweep is not the next operation). Returns how many were removed.
   */
  sweep(): number {
    if (!this.clocks) return 0;
    const { state, now, wallNow } = this.clocks;
    const at = wallNow();
    this.lastSweepMs = at;
    const stamped: Array<{ id: string; at: number }> = [];
    const unstamped: string[] = [];
    let kept = 0;
    for (const row of this.docs.operationSummaries()) {
      const rec = row.status === 'InProgress' ? this.read(row.id, state(), now()) : row;
      if (!rec) continue;
      if (rec.status === 'InProgress') kept++;
      else if (rec.finishedAtMs == null) unstamped.push(row.id);
      else stamped.push({ id: row.id, at: rec.finishedAtMs });
    }
    stamped.sort((a, b) => a.at - b.at);
    // Unstamped records finished before any stamped one (an older version wrote them): first to go when over the bound.
    const finished = unstamped.map((id) => ({ id, at })).concat(stamped);
    const room = Math.max(0, MAX_OPERATIONS - Math.ceil(MAX_OPERATIONS / 10) - kept);
    let removed = 0;
    this.docs.atomically(() => {
      for (const id of unstamped) this.stamp(id, at);
      for (const [i, f] of finished.entries()) {
        if (at - f.at < OPERATION_RETENTION_MS && finished.length - i <= room) break;
        this.docs.delete(f.id);
        removed++;
      }
    });
    this.stored = kept + finished.length - removed;
    this.sweepAtCount = Math.max(MAX_OPERATIONS, this.stored + Math.ceil(MAX_OPERATIONS / 10));
    return removed;
  }

  /** Gives a record an older version wrote (no finishedAtMs) the wall time its retention counts from. */
  private stamp(path: string, at: number): void {
    const doc = this.docs.get<OperationRecord>(path);
    if (doc) this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', { ...doc.body, finishedAtMs: at });
  }

  private wallNow(): number {
    return this.clocks ? this.clocks.wallNow() : Date.now();
  }

  /** The operation's current status; a final status is written once and never changes again. */
  read(path: string, state: EngineState, now: string): OperationRecord | undefined {
    const doc = this.docs.get<OperationRecord>(path);
    if (!doc) return undefined;
    const rec = doc.body;
    if (rec.status !== 'InProgress') return rec;
    if (rec.track.kind === 'result' && !this.working.has(path.toLowerCase())) {
      // Its work ran in a process that stopped before finishing: it will never finish.
      const lost: OperationRecord = {
        ...rec, status: 'Failed', endTime: now, finishedAtMs: this.wallNow(),
        error: { code: 'OperationInterrupted', message: 'The server restarted while the operation ran; start it again.' },
      };
      this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', lost);
      return lost;
    }
    if (rec.track.kind === 'result' && rec.deadline !== undefined && Date.parse(now) > Date.parse(rec.deadline)) {
      // The machine never answered in time (a real machine offline): the operation fails rather than wait forever.
      this.working.delete(path.toLowerCase());
      const late: OperationRecord = {
        ...rec, status: 'Failed', endTime: now, finishedAtMs: this.wallNow(),
        error: { code: 'PatchOperationTimedOut', message: `The machine did not answer by ${rec.deadline}.` },
      };
      this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', late);
      return late;
    }
    const { status, error } = evaluate(state, rec.track);
    if (status === 'InProgress') return rec;
    const done: OperationRecord = { ...rec, status, endTime: now, finishedAtMs: this.wallNow(), ...(error ? { error } : {}) };
    this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', done);
    return done;
  }
}

/** Headers of an accepted long-running operation, as absolute URLs on the client's base. */
/**
 * An operation's path as it goes into a URL, each segment escaped: a region named with a space (`east us`,
 * which earlier versions made of the location `East US`) gave `…/locations/east us/operations/…`, a URL
 * with a raw space that clients taking the header as it is (curl, a shell script) could not poll.
 */
export const urlPathOf = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

export function setOperationHeaders(reply: FastifyReply, base: string, opPath: string, apiVersion: string, retryAfter: number, withLocation: boolean): void {
  const q = `api-version=${encodeURIComponent(apiVersion)}`;
  reply.header('Azure-AsyncOperation', `${base}${urlPathOf(opPath)}?${q}`);
  if (withLocation) reply.header('Location', `${base}${urlPathOf(opPath)}?monitor=true&${q}`);
  reply.header('Retry-After', String(retryAfter));
}
