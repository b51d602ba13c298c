/**
 * Group commit of status reports: reports that arrive within a short window after the first of a group
 * (GROUP_WINDOW_MS, or until MAX_GROUP are waiting) are written in one transaction, and each is
 * answered only after that commit (the store's synchronous=FULL makes it durable). One fsync serves
 * the whole group; the window costs each report at most a few milliseconds of latency.
 */
import type { StatusReport } from '../../protocol/agent-wire.js';
import type { AgentStore } from '../../drivers/agent/agent-store.js';

export const GROUP_WINDOW_MS = 2;
export const MAX_GROUP = 1024;

interface Pending {
  agentId: string;
  receivedAtMs: number;
  json: string;
  report: StatusReport;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface StatusWriterStats {
  commits: number;
  reports: number;
  largestGroup: number;
}

export class StatusWriter {
  private batch: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  readonly stats: StatusWriterStats = { commits: 0, reports: 0, largestGroup: 0 };

  constructor(
    private readonly store: AgentStore,
    /** Runs after the commit, for each report in order (the driver's observations). */
    private readonly committed: (agentId: string, report: StatusReport, atMs: number) => void,
    /** A failure after the commit (the report is durable and answered; the observation is lost until the next one). */
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  write(agentId: string, report: StatusReport, json: string, receivedAtMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ agentId, receivedAtMs, json, report, resolve, reject });
      if (this.batch.length >= MAX_GROUP) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        setImmediate(() => this.flush());
      } else if (!this.timer) {
        this.timer = setTimeout(() => this.flush(), GROUP_WINDOW_MS);
      }
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const group = this.batch;
    this.batch = [];
    if (group.length === 0) return;
    try {
      this.store.putStatuses(group);
    } catch (err) {
      for (const p of group) p.reject(err);
      return;
    }
    this.stats.commits++;
    this.stats.reports += group.length;
    if (group.length > this.stats.largestGroup) this.stats.largestGroup = group.length;
    for (const p of group) {
      try {
        this.committed(p.agentId, p.report, p.receivedAtMs);
      } catch (err) {
        this.onError(err);
      }
      p.resolve();
    }
  }
}
