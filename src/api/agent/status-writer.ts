/**
 * Group commit of status reports: reports that arrive while a commit is being prepared (one turn of
 * the event loop) are written in one transaction, and each is answered only after that commit (the
 * store's synchronous=FULL makes it durable). One fsync serves the whole group.
 */
import type { StatusReport } from '../../protocol/agent-wire.js';
import type { AgentStore } from '../../drivers/agent/agent-store.js';

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
  private scheduled = false;
  readonly stats: StatusWriterStats = { commits: 0, reports: 0, largestGroup: 0 };

  constructor(
    private readonly store: AgentStore,
    /** Runs after the commit, for each report in order (the driver's observations). */
    private readonly committed: (agentId: string, report: StatusReport, atMs: number) => void,
  ) {}

  write(agentId: string, report: StatusReport, json: string, receivedAtMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ agentId, receivedAtMs, json, report, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // After the I/O callbacks of this turn: every report parsed in it joins the group.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
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
      } finally {
        p.resolve();
      }
    }
  }
}
