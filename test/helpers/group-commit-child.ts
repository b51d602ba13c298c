/**
 * A child process for test/group-commit.test.ts: runs the test's scenario on SQLite with group commit
 * and SIGKILLs itself after a given number of steps. Every action is written to `sentLog` (synchronously,
 * at the moment it leaves) and each step says whether a group was open, so the parent can check what
 * the kill lost. Usage: node group-commit-child.js DB SENT_LOG STEPS [journal]
 * (`journal`: group commit through the journal and its apply worker, as `sim` does; halfway the child
 * pauses 300 ms, so the worker has applied part of the journal when the kill comes; `journal@K`: the
 * kill comes at the K-th send instead, just after a group was appended, before the worker applied it.)
 */
import { appendFileSync } from 'node:fs';
import { compileScenario } from '../../src/sim/scenario.js';
import { Simulation } from '../../src/sim/simulator.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { baseScenario } from './harness.js';

/** Failures, rollbacks, retries and health reports: ticks with and without actions. */
export function groupScenario(): Record<string, unknown> {
  return baseScenario({
    seed: 5,
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.08, installFailure: 0.05, rollbackFailure: 0.2 } } },
    events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }],
  });
}

/**
 * groupScenario on a new SQLite file with group commit through the journal: 20 steps, then the apply worker
 * is killed and 200 more steps run, so the journal holds groups the store has not applied while it holds the file.
 */
export async function workerKilledRun(file: string): Promise<SqliteStore> {
  const scenario = compileScenario(groupScenario(), 'journal');
  const store = SqliteStore.open(file, { mode: 'new' });
  store.importState(scenario.state);
  // The default stall bound while the worker lives (a loaded machine can hold it past a short one), 300 ms once killed.
  store.groupCommits({ ticks: 1000, wallMs: 10_000 }, undefined, { journal: true });
  const sim = new Simulation(scenario, { store });
  sim.driver.observe = () => {};
  for (let i = 0; i < 20 && sim.step(); i++);
  store.load();
  await (store as unknown as { journal: { killWorkerForTest(stallMs: number): Promise<number> } }).journal.killWorkerForTest(300);
  for (let i = 0; i < 200 && sim.step(); i++);
  return store;
}

function main(db: string, sentLog: string, steps: number, mode: string | undefined): void {
  const journal = mode?.startsWith('journal') ?? false;
  const killAtSend = mode?.startsWith('journal@') ? Number(mode.slice(8)) : Number.POSITIVE_INFINITY;
  let sends = 0;
  const scenario = compileScenario(groupScenario(), 'group');
  const store = SqliteStore.open(db, { mode: 'new' });
  store.importState(scenario.state);
  // JOURNAL_DROP_AFTER: a small threshold, so that the journal is emptied during the run too.
  const dropAfterBytes = process.env.JOURNAL_DROP_AFTER ? Number(process.env.JOURNAL_DROP_AFTER) : undefined;
  store.groupCommits({ ticks: 1000, wallMs: 10_000 }, undefined, { journal, ...(dropAfterBytes ? { dropAfterBytes } : {}) });
  const sim = new Simulation(scenario, { store });
  const send = sim.driver.send.bind(sim.driver);
  sim.driver.send = (a) => {
    appendFileSync(sentLog, `sent ${a.key}\n`);
    send(a);
    if (++sends >= killAtSend) process.kill(process.pid, 'SIGKILL');
  };
  for (let i = 0; i < steps && sim.step(); i++) {
    appendFileSync(sentLog, `step ${store.openGroupCommits}\n`);
    if (journal && i === Math.floor(steps / 2)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  }
  process.kill(process.pid, 'SIGKILL');
}

const args = process.argv;
if (args[1]?.endsWith('group-commit-child.js') && (args.length === 5 || args.length === 6)) main(args[2]!, args[3]!, Number(args[4]), args[5]);
