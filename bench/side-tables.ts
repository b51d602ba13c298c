/**
 * bench:side-tables — what mirroring serve's side tables to PostgreSQL costs on the busiest of them,
 * agent_status (status reports of 3,062 bytes, written in groups as the status writer does):
 * 1. the capture triggers on SQLite's group commit: CPU per report with and without them, rounds
 *    alternated in one process (WAL, synchronous=NORMAL so the disk's fsync does not hide the CPU);
 * 2. building the SQL text of a group's changes (takeChanges): CPU per row, text size;
 * 3. shipping it to a throw-away PostgreSQL on loopback (fsync on): wall time per ship, rows per second;
 * 4. one ARM document written, and the same with its ship text built after it (CPU per write).
 * BENCH_SIDE_AGENTS agents (default 2,000), groups of BENCH_SIDE_GROUP reports (default 256).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Documents } from '../src/api/arm/documents.js';
import { AgentStore } from '../src/drivers/agent/agent-store.js';
import { connect, migrate } from '../src/store/postgres/connect.js';
import { startEmbeddedPostgres } from '../src/store/postgres/embedded-server.js';
import { dropCapture, installCapture, takeChanges } from '../src/store/postgres/side-capture.js';
import { loadSideTables } from '../src/store/postgres/side-load.js';
import { emptySqlite } from '../src/store/postgres/snapshot.js';
import { sampleReport } from './status-sample.js';

const AGENTS = Number(process.env.BENCH_SIDE_AGENTS ?? 2_000);
const GROUP = Number(process.env.BENCH_SIDE_GROUP ?? 256);
const ROUNDS = 6;
const GROUPS_PER_ROUND = 200;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function groups(seed: number, count: number): Array<Array<{ agentId: string; receivedAtMs: number; json: string }>> {
  const json = JSON.stringify(sampleReport(seed));
  return Array.from({ length: count }, (_, g) => Array.from({ length: GROUP }, (_, i) => ({ agentId: `agent-${(g * GROUP + i) % AGENTS}`, receivedAtMs: g * GROUP + i, json })));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'phasewise-side-bench-'));
  const pgServer = await startEmbeddedPostgres();
  try {
    const client = await connect(pgServer.url);
    await migrate(client, pgServer.url);
    const db = emptySqlite(join(dir, 'side.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    await loadSideTables(client, db);
    const store = new AgentStore(db);
    const work = groups(1, GROUPS_PER_ROUND);
    const cpu = os.cpus()[0]?.model.split(' ').slice(0, 2).join(' ');
    console.log(`bench:side-tables · node ${process.version} · ${os.cpus().length} × ${cpu} · load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    console.log(`${AGENTS} agents, groups of ${GROUP} reports of ${work[0]![0]!.json.length} bytes, ${GROUPS_PER_ROUND} groups a round`);

    // 1. capture off / on, alternated.
    const perReport: Record<'off' | 'on', number[]> = { off: [], on: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        if (mode === 'on') installCapture(db);
        else dropCapture(db);
        const start = cpuMs();
        for (const g of work) store.putStatuses(g);
        perReport[mode].push(((cpuMs() - start) * 1000) / (GROUPS_PER_ROUND * GROUP));
        db.exec('DELETE FROM side_changes');
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const off = median(perReport.off);
    const on = median(perReport.on);
    const rounds = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
    console.log(`1. group commit CPU per report: ${off.toFixed(1)} µs without capture, ${on.toFixed(1)} µs with (×${(on / off).toFixed(2)}); `
      + `rounds: off ${rounds(perReport.off)}, on ${rounds(perReport.on)}`);

    // 2 and 3: every group written, its changes built, then shipped (closed loop).
    installCapture(db);
    let buildMs = 0;
    let shipMs = 0;
    let bytes = 0;
    const ships = groups(2, GROUPS_PER_ROUND);
    const wallStart = performance.now();
    for (const g of ships) {
      store.putStatuses(g);
      const t0 = cpuMs();
      const sql = takeChanges(db)!;
      buildMs += cpuMs() - t0;
      bytes += sql.length;
      const t1 = performance.now();
      await client.query(sql);
      shipMs += performance.now() - t1;
    }
    const wall = (performance.now() - wallStart) / 1000;
    const rows = GROUPS_PER_ROUND * GROUP;
    console.log(`2. takeChanges: ${((buildMs * 1000) / rows).toFixed(1)} µs CPU per row, ${(bytes / GROUPS_PER_ROUND / 1024).toFixed(0)} KiB of SQL per group`);
    console.log(`3. ship to PostgreSQL: ${(shipMs / GROUPS_PER_ROUND).toFixed(1)} ms per group of ${GROUP} (wall), ${Math.round(rows / (shipMs / 1000)).toLocaleString('en-US')} rows/s shipping; `
      + `write + build + ship in a closed loop: ${Math.round(rows / wall).toLocaleString('en-US')} reports/s`);
    // 4. one small API write and its ship text, as a leader does before answering (the text is not sent here).
    const docs = new Documents(db);
    const single = (ship: boolean) => {
      const start = cpuMs();
      for (let i = 0; i < 20_000; i++) {
        docs.put(`/subscriptions/s/resourceGroups/rg/providers/p/vm/${i % 50}`, '/subscriptions/s/resourceGroups/rg', 'virtualMachine', { i, tags: { a: 'b' } });
        if (ship) takeChanges(db);
      }
      return ((cpuMs() - start) * 1000) / 20_000;
    };
    single(true);
    const [alone, withText] = [single(false), single(true)];
    console.log(`4. one document written: ${alone.toFixed(1)} µs CPU; written and its text built: ${withText.toFixed(1)} µs`);
    const check = (await client.query<{ n: string }>('SELECT count(*) AS n FROM agent_status')).rows[0]!.n;
    console.log(`PostgreSQL holds ${check} agent_status rows (expected ${Math.min(AGENTS, rows)})`);
    await client.end();
    db.close();
  } finally {
    await pgServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
