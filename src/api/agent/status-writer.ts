/**
 * Group commit of status reports: a group gathers the reports that arrive from its first one until
 * GROUP_WINDOW_MS have passed and the previous group's commit has returned (at most MAX_GROUP), is written
 * in one transaction, and each report is answered only after that commit (synchronous=FULL, as the
 * store: durable). One fsync serves the whole group.
 * With a database file the commit runs on a writer thread (status-commit-worker.ts) with its own
 * connection, so this thread keeps parsing reports while the disk writes; otherwise in-thread.
 */
import { isUtf8 } from 'node:buffer';
import { Worker } from 'node:worker_threads';
import type { StatusReport } from '../../protocol/agent-wire.js';
import type { AgentStore } from '../../drivers/agent/agent-store.js';

export const GROUP_WINDOW_MS = 2;

/** A group of rows as it crosses to the writer thread. */
export interface PackedGroup {
  /** Per row: agent id, arrival time and byte length, fields split by U+0000, rows by U+0001. */
  meta: string;
  /** The reports' bytes one after another from offset 0; shared with the writer thread, not copied. */
  data: SharedArrayBuffer;
}

/**
 * Bytes of the buffer reused for every group: one group is in flight at a time, so the writer thread is
 * done with it when the next is packed. 1 MiB holds 256 reports of 3 KB; a larger group gets its own.
 */
export const SHARED_GROUP_BYTES = 1 << 20;

/**
 * Rows for the writer thread: the reports' UTF-8 bytes are copied once into a shared buffer (`into`
 * when they fit: allocating and transferring a fresh buffer per group cost about twice as much, and
 * cloning the reports as strings about a fifth of the server's CPU at 3 KB a report); the rest is one
 * short string. An agent id is a UUID and a time a number: neither holds U+0000/U+0001.
 */
export function packGroup(rows: ReadonlyArray<[string, number, Buffer]>, into?: SharedArrayBuffer): PackedGroup {
  let size = 0;
  for (const r of rows) size += r[2].length;
  const data = into && into.byteLength >= size ? into : new SharedArrayBuffer(size);
  const view = new Uint8Array(data);
  let meta = '';
  let at = 0;
  for (const r of rows) {
    view.set(r[2], at);
    at += r[2].length;
    meta += `${r[0]}\u0000${r[1]}\u0000${r[2].length}\u0001`;
  }
  return { meta, data };
}

export function unpackGroup(group: PackedGroup): Array<[string, number, Buffer]> {
  const rows: Array<[string, number, Buffer]> = [];
  const { meta } = group;
  let i = 0;
  let at = 0;
  while (i < meta.length) {
    const a = meta.indexOf('\u0000', i);
    const b = meta.indexOf('\u0000', a + 1);
    const c = meta.indexOf('\u0001', b + 1);
    const len = Number(meta.slice(b + 1, c));
    rows.push([meta.slice(i, a), Number(meta.slice(a + 1, b)), Buffer.from(group.data, at, len)]);
    at += len;
    i = c + 1;
  }
  return rows;
}

/** The report's bytes as stored: the body as received when it is valid UTF-8 (as nearly always), else its decoded text re-encoded. */
export function reportBytes(raw: string | Buffer): Buffer {
  if (typeof raw === 'string') return Buffer.from(raw, 'utf8');
  return isUtf8(raw) ? raw : Buffer.from(raw.toString('utf8'), 'utf8');
}

export const MAX_GROUP = 1024;

/** Told once a report is committed (no error) or not (the commit's error). */
export type Committed = (err: unknown) => void;

interface Pending {
  agentId: string;
  receivedAtMs: number;
  json: Buffer;
  report: StatusReport;
  then: Committed;
}

export interface StatusWriterStats {
  commits: number;
  reports: number;
  largestGroup: number;
}

type Commit = (rows: Array<[string, number, Buffer]>) => Promise<void>;

export class StatusWriter {
  private batch: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** When the first report of the batch arrived (performance.now()). */
  private batchSince = 0;
  private inflight: Promise<void> | null = null;
  private readonly commit: Commit;
  private worker: Worker | null = null;
  readonly stats: StatusWriterStats = { commits: 0, reports: 0, largestGroup: 0 };

  constructor(
    store: AgentStore,
    /** Runs after the commit, for each report in order (the driver's observations). */
    private readonly committed: (agentId: string, report: StatusReport, atMs: number) => void,
    /** A failure after the commit (the report is durable and answered; the observation is lost until the next one). */
    private readonly onError: (err: unknown) => void = () => {},
    /** The database file for the writer thread; null commits in this thread. */
    file: string | null = null,
  ) {
    if (file) {
      const worker = new Worker(new URL('./status-commit-worker.js', import.meta.url), { workerData: { file } });
      const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
      let next = 0;
      worker.on('message', (m: { id: number; ok: boolean; error?: string }) => {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.ok) w?.resolve();
        else w?.reject(new Error(m.error));
      });
      worker.on('error', (err) => {
        for (const w of waiting.values()) w.reject(err);
        waiting.clear();
      });
      worker.unref(); // never what keeps a process alive (a failed start, a test)
      this.worker = worker;
      const shared = new SharedArrayBuffer(SHARED_GROUP_BYTES);
      this.commit = (rows) => new Promise((resolve, reject) => {
        const id = next++;
        waiting.set(id, { resolve, reject });
        // The shared buffer is free: flush() sends a group only when the last one's commit has returned.
        worker.postMessage({ id, group: packGroup(rows, shared) });
      });
    } else {
      this.commit = async (rows) => store.putStatuses(rows.map(([agentId, receivedAtMs, json]) => ({ agentId, receivedAtMs, json: json.toString('utf8') })));
    }
  }

  /** `raw`: the report as received (stored as sent, not re-serialised). */
  write(agentId: string, report: StatusReport, raw: string | Buffer, receivedAtMs: number): Promise<void> {
    return new Promise((resolve, reject) => this.submit(agentId, report, raw, receivedAtMs, (err) => (err === null ? resolve() : reject(err))));
  }

  /**
   * The same with a callback (null: committed): the lean agent handler's path, which answers thousands of
   * reports a second and is spared a promise and its microtask per report.
   */
  submit(agentId: string, report: StatusReport, raw: string | Buffer, receivedAtMs: number, then: Committed): void {
    if (this.batch.length === 0) this.batchSince = performance.now();
    this.batch.push({ agentId, receivedAtMs, json: reportBytes(raw), report, then });
    if (this.inflight) return; // the group goes when the commit in flight returns (see flush)
    if (this.batch.length >= MAX_GROUP) this.flushSoon(0);
    else if (!this.timer) this.flushSoon(GROUP_WINDOW_MS);
  }

  /** Waits for what is queued, then stops the writer thread. */
  async close(): Promise<void> {
    this.worker?.ref();
    while (this.inflight || this.batch.length > 0) {
      if (!this.inflight) this.flush();
      await this.inflight;
    }
    if (this.worker) {
      const w = this.worker;
      this.worker = null;
      w.ref(); // until it has closed the database
      await new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.postMessage('close');
      });
    }
  }

  private flushSoon(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), ms);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.inflight) return;
    const group = this.batch.splice(0, MAX_GROUP);
    if (group.length === 0) return;
    this.inflight = this.commit(group.map((p) => [p.agentId, p.receivedAtMs, p.json])).then(
      () => this.done(group),
      (err) => {
        for (const p of group) p.then(err ?? new Error('the status commit failed'));
      },
    ).finally(() => {
      this.inflight = null;
      // What arrived during the commit goes as one group once GROUP_WINDOW_MS have passed since its first
      // report: after a quick commit it would hold only a few, and a commit costs the writer thread about
      // as much CPU as ten rows (the transaction, the fsync, the messages both ways).
      if (this.batch.length === 0) return;
      const wait = this.batchSince + GROUP_WINDOW_MS - performance.now();
      if (wait <= 0 || this.batch.length >= MAX_GROUP) this.flush();
      else this.flushSoon(wait);
    });
  }

  private done(group: Pending[]): void {
    this.stats.commits++;
    this.stats.reports += group.length;
    if (group.length > this.stats.largestGroup) this.stats.largestGroup = group.length;
    for (const p of group) {
      try {
        this.committed(p.agentId, p.report, p.receivedAtMs);
      } catch (err) {
        this.onError(err);
      }
      p.then(null);
    }
  }
}
