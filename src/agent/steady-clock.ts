/**
 * The agent's clock for deadlines and stamps: milliseconds since the epoch that only move with the
 * monotonic clock. The wall clock can be stepped by hours (NTP fixing a bad RTC, an operator's `date -s`)
 * while a command runs; a deadline of `startedAt + timeout` read on the wall clock would then kill a
 * healthy install at once (forward) or let a hung one run for hours (backward).
 *
 * steady = anchor + monotonic, with anchor = wall − monotonic taken once per boot and kept in
 * `<lib>/.agent/clock.json` with the boot id. CLOCK_MONOTONIC counts from boot for every process, so an
 * agent restarted in the same boot continues the same clock and a journaled `startedAt` keeps its meaning.
 * After a reboot (new boot id) the clock is anchored again on the wall clock.
 */
import { readJsonFile, writeJsonAtomic } from './atomic-file.js';

export interface ClockSources {
  /** Wall clock, ms since the epoch. */
  wall: () => number;
  /** Monotonic ms since boot, shared by all processes of one boot (CLOCK_MONOTONIC). */
  mono: () => number;
  /** This boot's id, or null when the system does not say (then the anchor is per process). */
  bootId: string | null;
  /** Where the anchor is kept. */
  file: string;
  log?: (line: string) => void;
}

/** CLOCK_MONOTONIC in ms (process.hrtime reads it on Linux). */
export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/** The steady clock for this agent process (see the module comment). */
export function steadyClock(src: ClockSources): () => number {
  let anchor: number | null = null;
  if (src.bootId !== null) {
    try {
      const kept = readJsonFile(src.file, 4096) as { bootId?: unknown; anchorMs?: unknown } | undefined;
      if (kept && kept.bootId === src.bootId && Number.isSafeInteger(kept.anchorMs)) anchor = kept.anchorMs as number;
    } catch (err) {
      src.log?.(`clock anchor unreadable, anchoring on the wall clock again: ${(err as Error).message}`);
    }
  }
  if (anchor === null) {
    anchor = src.wall() - src.mono();
    if (src.bootId !== null) {
      try {
        writeJsonAtomic(src.file, { bootId: src.bootId, anchorMs: anchor });
      } catch (err) {
        // Without the file the next start anchors again: only a wall-clock step in between is taken in.
        src.log?.(`clock anchor not saved: ${(err as Error).message}`);
      }
    }
  }
  const a = anchor;
  return () => a + src.mono();
}
