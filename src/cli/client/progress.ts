/**
 * `--wait`: polls until the rollouts a command started or resumed end, with a progress bar on standard
 * error (a bar redrawn in place on a terminal, a line per change otherwise). Resolves with the ended
 * rollouts; the caller decides the exit code (a stopped or cancelled one is not a success).
 */
import type { Client } from './http.js';

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

export async function waitForRollouts(client: Client, ids: readonly string[], opts: { intervalMs?: number; out?: NodeJS.WriteStream } = {}): Promise<RolloutView[]> {
  const out = opts.out ?? process.stderr;
  const tty = out.isTTY === true;
  let last = '';
  for (;;) {
    const views = await Promise.all(ids.map((id) => client.get(`/phasewise/rollouts/${encodeURIComponent(id)}`) as Promise<RolloutView>));
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
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 1_000));
  }
}
