/**
 * Which of some files a process still holds open (Linux: the links in /proc/<pid>/fd). A handler may
 * leave a process behind that keeps writing to the command's output file (a daemon started with `&`, its
 * own session out of reach of the group kill): that file must not be unlinked, or what it writes grows
 * on the disk out of every sweep's reach. Processes of other users the agent cannot look at are skipped
 * (the handlers run as the agent's user).
 */
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';

/** Processes looked at per call: this only bounds one call's work on a host with very many. */
const PROCESS_LIMIT = 100_000;

/** The subset of `paths` some process holds open; null when this host cannot tell (no /proc). */
export function heldOpen(paths: readonly string[], proc = '/proc'): Set<string> | null {
  const wanted = new Map<string, string>(); // real path → the path as given
  for (const p of paths) {
    try {
      wanted.set(realpathSync(p), p);
    } catch {
      // gone already: nobody can open it any more
    }
  }
  if (wanted.size === 0) return new Set();
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((n) => /^\d+$/.test(n)).slice(0, PROCESS_LIMIT);
    readdirSync(`${proc}/self/fd`); // a /proc without fd links tells nothing
  } catch {
    return null;
  }
  const held = new Set<string>();
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${pid}/fd`);
    } catch {
      continue; // gone meanwhile, or another user's
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`${proc}/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const given = wanted.get(target);
      if (given === undefined) continue;
      held.add(given);
      if (held.size === wanted.size) return held;
    }
  }
  return held;
}
