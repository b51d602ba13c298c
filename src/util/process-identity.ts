/**
 * Who holds a lock: a pid alone is not enough, since pids are reused after a restart of the machine
 * or container. A process is named by its pid and its start time (Linux: field 22 of /proc/PID/stat,
 * in clock ticks since boot); the same pid with another start time is another process.
 */
import { readFileSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Start time as the system reports it; null where it cannot be read (not Linux). */
  start: string | null;
}

export function selfIdentity(): ProcessIdentity {
  return { pid: process.pid, start: startTimeOf(process.pid) };
}

/** The start time of a running process, or null when unknown or gone. */
export function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall
  } catch {
    return null;
  }
}

/** True when this process (same pid and, where known, same start time) is still running. */
export function isRunning(id: ProcessIdentity): boolean {
  if (!pidAlive(id.pid)) return false;
  if (id.start === null) return true;
  const now = startTimeOf(id.pid);
  return now === null || now === id.start;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
