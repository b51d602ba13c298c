/**
 * `--wait`: polls until the rollouts a command started or resumed end, with a progress bar on standard
 * error (a bar redrawn in place on a terminal, a line per change otherwise). Resolves with the ended
 * rollouts; the caller decides the exit code (a stopped or cancelled one is not a success).
 */
import type { Client } from './http.js';
import { ClientError, EXIT } from './http.js';

interface RolloutView {
  id: string;
  status: string;
  reason: string | null;
  counts: { eligible: number; open: number; upgraded: number };
}

const WIDTH = 30;

export function progressBar(done: number, total: number): string {
  const share = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(share * WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${done}/${total} (${Math.round(share * 100)}%)`;
}

/** `--timeout` of `--wait`: as `az … wait`, an hour unless told; at most 30 days. */
export const DEFAULT_WAIT_S = 3600;
export const MAX_WAIT_S = 30 * 86_400;

/** A rollout as the server shows it, or a ClientError: a server answering something else must not crash the wait. */
function rolloutView(v: unknown, id: string): RolloutView {
  const r = v as Partial<RolloutView> | null;
  const c = r?.counts as Partial<RolloutView['counts']> | undefined;
  const count = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (!r || typeof r !== 'object' || typeof r.status !== 'string' || !c || typeof c !== 'object' || !count(c.eligible) || !count(c.open)) {
    throw new ClientError(`phasewise: the server's answer for rollout ${id.slice(0, 100)} is not a rollout (no status and counts)`, EXIT.error);
  }
  return { id: typeof r.id === 'string' ? r.id : id, status: r.status, reason: typeof r.reason === 'string' ? r.reason : null, counts: c as RolloutView['counts'] };
}

export interface WaitOptions {
  intervalMs?: number;
  out?: NodeJS.WriteStream;
  /** Give up after this long (the rollouts go on): exit code 4. */
  timeoutMs?: number;
  now?: () => number;
}

export async function waitForRollouts(client: Client, ids: readonly string[], opts: WaitOptions = {}): Promise<RolloutView[]> {
  const out = opts.out ?? process.stderr;
  const tty = out.isTTY === true;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_WAIT_S * 1000;
  const giveUpAt = now() + timeoutMs;
  let last = '';
  for (;;) {
    const views = (await Promise.all(ids.map((id) => client.get(`/phasewise/rollouts/${encodeURIComponent(id)}`)))).map((v, i) => rolloutView(v, ids[i]!));
    const total = views.reduce((n, v) => n + v.counts.eligible, 0);
    const done = views.reduce((n, v) => n + v.counts.eligible - v.counts.open, 0);
    const running = views.filter((v) => v.status === 'running').length;
    const line = `${ids.join(', ')}: ${progressBar(done, total)} settled, ${running} running`;
    if (line !== last) out.write(tty ? `\r${line}` : `${line}\n`);
    last = line;
    if (running === 0) {
      if (tty) out.write('\n');
      return views;
    }
    const left = giveUpAt - now();
    if (left <= 0) {
      if (tty) out.write('\n');
      const still = views.filter((v) => v.status === 'running').map((v) => v.id).join(', ');
      throw new ClientError(`phasewise: --wait gave up after ${Math.round(timeoutMs / 1000)} s; still running (they go on): ${still}; see phasewise rollout show ID`, EXIT.waitTimedOut);
    }
    await new Promise((r) => setTimeout(r, Math.min(opts.intervalMs ?? 1_000, left)));
  }
}
