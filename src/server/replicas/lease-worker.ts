/**
 * The engine lease's own thread (started by lease-keeper.ts). Its renewals must not wait for the
 * replica's main thread: that thread loads the whole fleet when it takes over and runs the engine's
 * ticks, work that may outlast the lease, and a leader must not lose its lease for being busy with
 * its own work. So this thread has a connection of its own and takes or renews the lease every
 * quarter of it, whatever the main thread is doing.
 *
 * Fencing is unchanged: every engine commit checks the lease in its own transaction. A main thread that
 * no longer shows signs of life (a hang, not work) stops being covered once `busyMaxMs` has passed: this
 * thread stops renewing, the lease expires and another replica takes over; the old leader cannot commit.
 * A stopped process (SIGSTOP) stops this thread too: its lease expires as before.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type pg from 'pg';
import { connect, pgStoreError } from '../../store/postgres/connect.js';
import { release, renew, tryAcquire } from '../../store/postgres/lease.js';
import type { Fence } from '../../store/postgres/pg-store.js';
import { SLOT, mayRenew } from './lease-shared.js';
import type { LeaseWorkerData, ToKeeper, ToWorker } from './lease-shared.js';

const data = workerData as LeaseWorkerData;
const port = parentPort!;
const times = new BigInt64Array(data.shared);
const now = () => Date.now();
const stamp = (slot: number) => Atomics.store(times, slot, BigInt(now()));
const post = (m: ToKeeper) => port.postMessage(m);

let client: pg.Client | null = null;
let fence: Fence | null = null;
let busy = false;
let done = false;

async function tick(): Promise<void> {
  if (busy || done) return;
  busy = true;
  try {
    client ??= await connect(data.url, { timeoutMs: data.leaseMs, onError: () => {}, purpose: 'lease' });
    if (fence) {
      const beat = Number(Atomics.load(times, SLOT.mainBeat));
      if (!mayRenew(now(), beat, data.busyMaxMs)) {
        return lose(`the replica's main thread showed no sign of life for ${Math.round((now() - beat) / 1000)} s (more than ${data.busyMaxMs / 1000} s): `
          + 'the lease is no longer renewed, so that another replica can take over');
      }
      if (await renew(client, fence, data.leaseMs)) {
        stamp(SLOT.lastRenew);
        stamp(SLOT.lastContact);
      } else {
        lose('the lease was lost (another replica holds it, or it expired)');
      }
    } else {
      const got = await tryAcquire(client, data.holder, data.leaseMs);
      stamp(SLOT.lastContact);
      if (got) {
        fence = got;
        stamp(SLOT.lastRenew);
        post({ type: 'acquired', fence: got });
      }
    }
  } catch (err) {
    if (fence) return lose(`the lease could not be renewed: ${(err as Error).message}`);
    // A connection that broke never works again (pg), nor do the replica's others: the owner restarts it.
    if (pgStoreError(err, '').code === 'STORE_UNREACHABLE') {
      done = true;
      clearInterval(timer);
      post({ type: 'connectionLost', why: (err as Error).message });
    }
  } finally {
    busy = false;
  }
}

function lose(why: string): void {
  fence = null;
  done = true;
  clearInterval(timer);
  post({ type: 'lost', why });
}

const timer = setInterval(() => void tick(), Math.max(50, Math.floor(data.leaseMs / 4)));
void tick();

port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') {
    done = true;
    clearInterval(timer);
  } else if (m.type === 'release') {
    done = true;
    clearInterval(timer);
    const held = fence;
    fence = null;
    // A clean stop gives the lease up at once: the next leader need not wait for it to expire.
    void (async () => {
      while (busy) await new Promise((r) => setTimeout(r, 5));
      if (held && client) await release(client, held).catch(() => {});
      await client?.end().catch(() => {});
      client = null;
      post({ type: 'released' });
    })();
  }
});
