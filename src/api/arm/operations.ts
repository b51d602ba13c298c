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

  constructor(private readonly docs: Documents) {}

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
    const done: OperationRecord = 'result' in outcome
      ? { ...doc.body, status: 'Succeeded', endTime: now, result: outcome.result }
      : { ...doc.body, status: 'Failed', endTime: now, error: outcome.error };
    this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', done);
  }

  /** Records an operation; returns its status URL path. */
  create(sub: string, provider: string, location: string, track: Track, now: string): { path: string; record: OperationRecord } {
    // Work done before the answer (a delete) ends now: its endTime is not the instant someone first polled it.
    const record: OperationRecord = track.kind === 'done'
      ? { name: randomUUID(), status: 'Succeeded', startTime: now, endTime: now, track }
      : { name: randomUUID(), status: 'InProgress', startTime: now, track };
    const path = operationPath(sub, provider, location, record.name);
    this.docs.put(path, `/subscriptions/${sub}`, 'operation', record);
    return { path, record };
  }

  /** The operation's current status; a final status is written once and never changes again. */
  read(path: string, state: EngineState, now: string): OperationRecord | undefined {
    const doc = this.docs.get<OperationRecord>(path);
    if (!doc) return undefined;
    const rec = doc.body;
    if (rec.status !== 'InProgress') return rec;
    if (rec.track.kind === 'result' && !this.working.has(path.toLowerCase())) {
      // Its work ran in a process that stopped before finishing: it will never finish.
      const lost: OperationRecord = { ...rec, status: 'Failed', endTime: now, error: { code: 'OperationInterrupted', message: 'The server restarted while the operation ran; start it again.' } };
      this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', lost);
      return lost;
    }
    if (rec.track.kind === 'result' && rec.deadline !== undefined && Date.parse(now) > Date.parse(rec.deadline)) {
      // The machine never answered in time (a real machine offline): the operation fails rather than wait forever.
      this.working.delete(path.toLowerCase());
      const late: OperationRecord = { ...rec, status: 'Failed', endTime: now, error: { code: 'PatchOperationTimedOut', message: `The machine did not answer by ${rec.deadline}.` } };
      this.docs.put(doc.id, `/subscriptions/${path.split('/')[2]}`, 'operation', late);
      return late;
    }
    const { status, error } = evaluate(state, rec.track);
    if (status === 'InProgress') return rec;
    const done: OperationRecord = { ...rec, status, endTime: now, ...(error ? { error } : {}) };
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
