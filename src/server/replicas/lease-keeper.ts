/**
 * A replica's hold on the engine lease (src/store/postgres/lease.ts): while another holds it, tries to
 * take it every quarter of the lease; once held, renews it as often. It tells its owner when it got the
 * lease, and when it lost it: a renewal refused or failed, or none within the lease. Times are the
 * database server's, so replicas' clocks may disagree.
 */
import type pg from 'pg';
import { pgStoreError } from '../../store/postgres/connect.js';
import { release, renew, tryAcquire } from '../../store/postgres/lease.js';
import type { Fence } from '../../store/postgres/pg-store.js';

export interface LeaseEvents {
  acquired(fence: Fence): void;
  lost(why: string): void;
}

export class LeaseKeeper {
  private fence: Fence | null = null;
  private lastContactMs = 0;
  private lastRenewMs = 0;
  private busy = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private lost: string | null = null;

  constructor(private readonly client: pg.Client, private readonly holder: string, private readonly leaseMs: number, private readonly on: LeaseEvents) {}

  /** The lease while this replica holds it. */
  get held(): Fence | null {
    return this.fence;
  }

  /** The database answered a lease query within the last lease (a follower is ready only then). */
  get reachable(): boolean {
    return Date.now() - this.lastContactMs <= this.leaseMs;
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
    this.lastContactMs = Date.now();
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.leaseMs / 4)));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** A clean stop gives the lease up at once: the next leader need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.fence) await release(this.client, this.fence).catch(() => {});
  }

  private async tick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      if (this.fence) {
        if (await renew(this.client, this.fence, this.leaseMs)) this.lastRenewMs = this.lastContactMs = Date.now();
        else return this.lose('the lease was lost (another replica holds it, or it expired)');
      } else {
        const got = await tryAcquire(this.client, this.holder, this.leaseMs);
        this.lastContactMs = Date.now();
        if (got) {
          this.fence = got;
          this.lastRenewMs = Date.now();
          // The owner loads beside the renewals: a long load must not cost the lease.
          this.on.acquired(got);
        }
      }
    } catch (err) {
      if (this.fence) return this.lose(`the lease could not be renewed: ${(err as Error).message}`);
      if (pgStoreError(err, '').code === 'STORE_UNREACHABLE') this.lost ??= (err as Error).message;
    } finally {
      this.busy = false;
    }
    if (this.fence && Date.now() - this.lastRenewMs > this.leaseMs) this.lose('no renewal within the lease');
  }

  private lose(why: string): void {
    if (this.stopped) return;
    this.stop();
    this.on.lost(why);
  }
}
