/**
 * One `agent run` per state folder: `<lib>/.agent/agent.lock` names the owner (pid and its start time
 * from /proc). Two agents on one journal would each run the same steps (and overwrite each other's
 * journal), so a second one refuses to start. A lock whose process is gone, or whose pid now belongs to
 * another process (reused after a reboot), is stale and taken over. The server's store has the same
 * rule (src/store/sqlite/database.ts); the agent cannot import it (it runs without the server's code).
 */
import { closeSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir } from './atomic-file.js';
import { agentDir } from './layout.js';
import type { AgentDirs } from './layout.js';

export const agentLockPath = (d: AgentDirs): string => join(agentDir(d), 'agent.lock');

interface Owner {
  pid: number;
  start: string | null;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); null without /proc or process. */
export function startTimeOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function running(o: Owner): boolean {
  try {
    process.kill(o.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = startTimeOf(o.pid);
  return o.start === null || start === null || start === o.start;
}

function ownerOf(text: string): Owner | null {
  try {
    const v = JSON.parse(text) as { pid?: unknown; start?: unknown };
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return null;
    return { pid: v.pid as number, start: typeof v.start === 'string' ? v.start : null };
  } catch {
    return null; // half-written by a crash between create and write: nobody holds it
  }
}

/**
 * Created whole or not at all: a temporary file linked to the lock's name (link fails if it exists). The
 * temporary file goes whatever fails: on a full disk its write failed and it stayed, one more at every
 * restart (systemd restarts the agent every 5 s).
 */
function createExclusive(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    // The bare "ENOSPC: no space left on device, write" named neither the file nor what to do.
    throw new Error(`cannot write the agent's lock ${path}: ${(err as Error).message}; free space or make the folder writable, then start the agent again`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export class AgentLocked extends Error {}

/** Takes the lock or throws AgentLocked naming the running owner; returns the release function. */
export function acquireAgentLock(dirs: AgentDirs): () => void {
  const path = agentLockPath(dirs);
  const me = JSON.stringify({ pid: process.pid, start: startTimeOf(process.pid) });
  for (let tries = 0; tries < 2; tries++) {
    if (createExclusive(path, me)) {
      fsyncDir(agentDir(dirs));
      return () => rmSync(path, { force: true });
    }
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      // removed by its owner meanwhile: try again
    }
    const owner = ownerOf(text);
    if (owner && owner.pid !== process.pid && running(owner)) {
      throw new AgentLocked(`another phasewise agent (pid ${owner.pid}) is running on ${dirs.lib}; stop it first (two agents would run the same steps twice)`);
    }
    rmSync(path, { force: true }); // stale: its owner is gone
  }
  throw new AgentLocked(`could not take the lock ${path}`);
}
