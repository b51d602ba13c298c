/**
 * Ends handler commands nobody waits for. A wrapper still running whose step no open operation has (the
 * journal write that recorded it was lost, or its operation closed while the agent was killed) would run
 * for ever: no step's deadline covers it, and it may work against the handler's next operation. From the
 * sweep that first finds it, it gets the longest handler timeout (what its own step would have allowed);
 * then its process group gets SIGTERM, and SIGKILL after `killAfterMs` if it is still there. Each step is
 * logged. Times are the agent's steady clock; a restart of the agent starts the grace again.
 */
import { isAlive, killGroup } from './handler-process.js';
import type { OrphanWrapper } from './handler-process.js';
import { runBase } from './layout.js';
import type { AgentDirs } from './layout.js';

interface Sighting {
  pid: number;
  since: number;
  termAt: number | null;
  killed: boolean;
}

export class OrphanReaper {
  private readonly seen = new Map<string, Sighting>();

  constructor(
    private readonly dirs: AgentDirs,
    private readonly now: () => number,
    private readonly graceMs: number,
    private readonly killAfterMs: number,
    private readonly log: (line: string) => void,
    /** The signal sender (tests); the wrapper's whole process group. */
    private readonly signal: (pid: number, sig: NodeJS.Signals) => void = killGroup,
  ) {}

  /** The live orphans of a sweep (trimRunOutputs with the open steps); those not listed are forgotten. */
  note(orphans: readonly OrphanWrapper[]): void {
    const now = this.now();
    const listed = new Set<string>();
    for (const o of orphans) {
      const key = `${o.runId}:${o.pid}`;
      listed.add(key);
      let s = this.seen.get(key);
      if (!s) {
        s = { pid: o.pid, since: now, termAt: null, killed: false };
        this.seen.set(key, s);
        this.log(`handler command ${o.runId} (wrapper pid ${o.pid}) is still running but no open operation has it; ` +
          `its process group is ended in ${Math.round(this.graceMs / 1000)} s unless it ends first`);
        continue;
      }
      if (s.termAt === null && now - s.since >= this.graceMs) {
        s.termAt = now;
        this.signal(o.pid, 'SIGTERM');
        this.log(`handler command ${o.runId} (wrapper pid ${o.pid}): no open operation has it after ${Math.round(this.graceMs / 1000)} s; sent SIGTERM to its process group`);
      } else if (s.termAt !== null && !s.killed && now - s.termAt >= this.killAfterMs && isAlive(o.pid, runBase(this.dirs, o.runId))) {
        s.killed = true;
        this.signal(o.pid, 'SIGKILL');
        this.log(`handler command ${o.runId} (wrapper pid ${o.pid}) outlived SIGTERM by ${Math.round(this.killAfterMs / 1000)} s; sent SIGKILL to its process group`);
      }
    }
    for (const key of [...this.seen.keys()]) if (!listed.has(key)) this.seen.delete(key);
  }
}
