/**
 * A replica's hold on the engine lease (src/store/postgres/lease.ts). The taking and renewing run on a
 * thread of their own (lease-worker.ts) with its own connection: every quarter of the lease, whatever
 * the main thread is doing, so that a leader busy loading its fleet or running a long tick keeps its
 * lease. This keeper tells its owner when the lease was got and when it was lost (a renewal refused or
 * failed, none within the lease, or a main thread silent for longer than `busyMaxMs`). Times are the
 * database server's, so replicas' clocks may disagree; fencing (every commit checks the lease) stays.
 */
import { Worker } from 'node:worker_threads';
import type { Fence } from '../../store/postgres/pg-store.js';
import { busyMaxMsFor, SLOT, SLOTS } from './lease-shared.js';
import type { LeaseWorkerData, ToKeeper, ToWorker } from './lease-shared.js';

export interface LeaseEvents {
  acquired(fence: Fence): void;
  lost(why: string): void;
}

/** How often the main thread shows it is alive (its event loop turned). */
const BEAT_MS = 100;

export class LeaseKeeper {
  private fence: Fence | null = null;
  private readonly times = new BigInt64Array(new SharedArrayBuffer(SLOTS * 8));
  private stopped = false;
  private worker: Worker | null = null;
  private beat: NodeJS.Timeout | null = null;
  private check: NodeJS.Timeout | null = null;
  private lost: string | null = null;
  private released: (() => void) | null = null;

  constructor(private readonly url: string, private readonly holder: string, private readonly leaseMs: number, private readonly on: LeaseEvents,
    private readonly busyMaxMs = busyMaxMsFor(leaseMs)) {}

  /** The lease while this replica holds it. */
  get held(): Fence | null {
    return this.fence;
  }

  /** The database answered a lease query within the last lease (a follower is ready only then). */
  get reachable(): boolean {
    return Date.now() - this.read(SLOT.lastContact) <= this.leaseMs;
  }

  /**
   * Why this replica's connection to PostgreSQL is gone for good, or null. A `pg` client whose
   * connection broke (the server restarted, a network cut) never works again: the owner must reconnect.
   */
  get connectionLost(): string | null {
    return this.lost;
  }

  /** A contact made elsewhere (the replica's start) counts too. */
  contacted(): void {
    this.write(SLOT.lastContact);
  }

  start(): void {
    this.write(SLOT.mainBeat);
    const workerData: LeaseWorkerData = { url: this.url, holder: this.holder, leaseMs: this.leaseMs, busyMaxMs: this.busyMaxMs, shared: this.times.buffer as SharedArrayBuffer };
    const worker = new Worker(new URL('./lease-worker.js', import.meta.url), { workerData });
    this.worker = worker;
    worker.unref(); // the replica's own handles decide when the process ends
    worker.on('message', (m: ToKeeper) => this.message(m));
    worker.on('error', (err) => (this.fence ? this.lose(`the lease's thread failed: ${err.message}`) : (this.lost ??= `the lease's thread failed: ${err.message}`)));
    this.beat = setInterval(() => this.write(SLOT.mainBeat), BEAT_MS);
    this.beat.unref();
    // The worker says when a renewal failed; a worker that went silent is caught here.
    this.check = setInterval(() => {
      if (this.fence && Date.now() - this.read(SLOT.lastRenew) > this.leaseMs) this.lose('no renewal within the lease');
    }, Math.max(50, Math.floor(this.leaseMs / 4)));
    this.check.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.beat) clearInterval(this.beat);
    if (this.check) clearInterval(this.check);
    this.send({ type: 'stop' });
  }

  /** A clean stop gives the lease up at once: the next leader need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.worker) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.leaseMs); // a worker that cannot answer: the lease expires instead
      this.released = () => {
        clearTimeout(timer);
        resolve();
      };
      this.send({ type: 'release' });
    });
  }

  /** Ends the lease's thread (after `stop`, and `release` if wanted). */
  async end(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    await w?.terminate();
  }

  private message(m: ToKeeper): void {
    if (m.type === 'acquired') {
      if (this.stopped) return;
      this.fence = m.fence;
      // The owner loads beside the renewals, which go on on the lease's thread: a long load does not cost the lease.
      this.on.acquired(m.fence);
    } else if (m.type === 'lost') {
      this.lose(m.why);
    } else if (m.type === 'connectionLost') {
      this.lost ??= m.why;
    } else {
      this.released?.();
    }
  }

  private lose(why: string): void {
    if (this.stopped) return;
    this.stop();
    this.on.lost(why);
  }

  private send(m: ToWorker): void {
    this.worker?.postMessage(m);
  }

  private read(slot: number): number {
    return Number(Atomics.load(this.times, slot));
  }

  private write(slot: number): void {
    Atomics.store(this.times, slot, BigInt(Date.now()));
  }
}
