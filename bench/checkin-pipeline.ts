/**
 * bench:checkin-pipeline — what a status report costs the server beyond HTTP and TLS, without the network's
 * noise: the bench:checkin report (3,062 bytes) from bytes to acknowledgement in one process — bounds and
 * parse, shape check, group commit on the writer thread (a real SQLite file, synchronous=FULL), the agent
 * driver's onReport — for 256 agents in a closed loop. Prints the process's CPU (all its threads) per
 * report. Run it pinned to one core (`taskset -c 0`), as bench:checkin pins the server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { readStatusReport, submitStatusReport } from '../src/api/agent/agent-channel.js';
import type { AgentServices } from '../src/api/agent/services.js';
import { StatusWriter } from '../src/api/agent/status-writer.js';
import { AgentDriver } from '../src/drivers/agent/agent-driver.js';
import { AgentStore } from '../src/drivers/agent/agent-store.js';
import { emptyFleet } from '../src/engine/state.js';
import { machineLine } from './machine.js';
import { sampleReport } from './status-sample.js';

const AGENTS = 256;
const PER_AGENT = Number(process.env.BENCH_PIPELINE_REPORTS ?? 240);

const dir = mkdtempSync(join(os.tmpdir(), 'phasewise-pipeline-'));
const file = join(dir, 'phasewise.sqlite');
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
const store = new AgentStore(db);
const driver = new AgentDriver({ store, fleet: () => emptyFleet(), engineNow: () => Date.now(), wallNow: () => Date.now(), statusIntervalSeconds: 3600, hasPackage: () => true });
const ids = Array.from({ length: AGENTS }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
for (const id of ids) {
  driver.bind({
    agentId: id, machineId: `m-${id}`, resourceId: `/bench/${id}`, fingerprint: `F-${id}`, machineCertPem: '', thumbprint: 'T', enrolledAtMs: Date.now(), revokedAtMs: null,
    info: { agentVersion: 'bench', osName: 'Linux', osVersion: '6', computerName: id },
  });
}
const status = new StatusWriter(store, (id, report, at) => driver.onReport(id, report, at), (err) => console.error(err), file);
const svc = { status, wallNow: () => Date.now() } as unknown as AgentServices;
const [pre, post] = JSON.stringify(sampleReport(424242424)).split('424242424') as [string, string];
let seq = 100_000_000;

/** One agent: its next report as soon as the last is committed (the body arrives as bytes, as from a socket). */
async function agent(id: string, count: number): Promise<void> {
  for (let k = 0; k < count; k++) {
    const bytes = Buffer.from(`${pre}${seq++}${post}`);
    const report = readStatusReport(bytes.toString('utf8'));
    await new Promise<void>((resolve, reject) => submitStatusReport(svc, id, report, bytes, () => {}, (err) => (err ? reject(err) : resolve())));
  }
}

const keepAlive = setInterval(() => {}, 1000); // the writer thread is unref'd
await Promise.all(ids.map((id) => agent(id, 40))); // warm-up
const commits0 = status.stats.commits;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(ids.map((id) => agent(id, PER_AGENT)));
const cpu = process.cpuUsage(cpu0);
const n = AGENTS * PER_AGENT;
const commits = status.stats.commits - commits0;
console.log(`bench:checkin-pipeline · ${machineLine()}`);
console.log(`${n} reports of ${Buffer.byteLength(`${pre}${seq}${post}`)} bytes, ${AGENTS} agents: ${((cpu.user + cpu.system) / n).toFixed(1)} µs of CPU per report `
  + `(user ${(cpu.user / n).toFixed(1)}, system ${(cpu.system / n).toFixed(1)}), ${((performance.now() - t0) * 1000 / n).toFixed(1)} µs of wall time; `
  + `${commits} commits (${(n / commits).toFixed(0)} reports each)`);
clearInterval(keepAlive);
await status.close();
db.close();
rmSync(dir, { recursive: true, force: true });
