/** Polling for tests that watch real processes: bounded waits that stop by themselves. */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `cond` every `everyMs` until it holds or `ms` pass; true when it held. */
export async function waitFor(cond: () => boolean, ms: number, everyMs = 5): Promise<boolean> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() >= until) return false;
    await sleep(everyMs);
  }
  return true;
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
