/**
 * What the engine lease's thread (lease-worker.ts) and its keeper on the main thread (lease-keeper.ts)
 * share: their messages, and three instants in shared memory (milliseconds, Date.now()) that each side
 * reads without waiting for the other.
 */
import type { Fence } from '../../store/postgres/pg-store.js';

export const SLOT = {
  /** The main thread's last sign of life (its event loop turned). */
  mainBeat: 0,
  /** The database last answered a lease query. */
  lastContact: 1,
  /** The lease was last taken or renewed. */
  lastRenew: 2,
} as const;
export const SLOTS = 3;

export interface LeaseWorkerData {
  url: string;
  holder: string;
  leaseMs: number;
  /** How long the main thread may go without a sign of life while the lease is renewed for it. */
  busyMaxMs: number;
  shared: SharedArrayBuffer;
}

export type ToKeeper = { type: 'acquired'; fence: Fence } | { type: 'lost'; why: string } | { type: 'connectionLost'; why: string } | { type: 'released' };
export type ToWorker = { type: 'stop' } | { type: 'release' };

/**
 * Whether the lease may be renewed for a main thread last seen at `beatMs`: a busy thread (loading,
 * a long tick) is covered, a hung one only up to `busyMaxMs`, after which the lease is let expire.
 */
export function mayRenew(nowMs: number, beatMs: number, busyMaxMs: number): boolean {
  return nowMs - beatMs <= busyMaxMs;
}

/**
 * The longest a leader's main thread may be busy before its lease is let go: long enough for a large
 * fleet's load or tick, short enough that a hung leader is replaced. Twelve leases, at least two minutes.
 */
export function busyMaxMsFor(leaseMs: number): number {
  return Math.max(120_000, 12 * leaseMs);
}

/** A replica's busy limit: `leaseBusyMaxMs` as configured, else the default for its lease. */
export function configuredBusyMaxMs(config: { leaseMs: number; leaseBusyMaxMs?: number | undefined }): number {
  return config.leaseBusyMaxMs ?? busyMaxMsFor(config.leaseMs);
}
