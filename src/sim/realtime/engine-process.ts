/**
 * The control plane as a process of its own, for real-time runs: the production engine on an
 * accelerated clock, its state in SQLite, its actions and observations over the IPC channel to the
 * fleet host that forked it. It may be killed at any instant; started again on the same database it
 * carries on from the last commit.
 *
 *   node engine-process.js SCENARIO DATABASE SIM_START_MS REAL_START_MS FACTOR
 */
import type { Driver } from '../../engine/driver.js';
import { Engine } from '../../engine/engine.js';
import { SqliteStore } from '../../store/sqlite/sqlite-store.js';
import { loadScenarioFile } from '../scenario.js';
import { applyDueActions, tickIfDue } from '../simulator.js';
import { AcceleratedClock } from './accelerated-clock.js';
import type { EngineMessage, HostMessage } from './messages.js';

/** Real milliseconds between two looks at what is due. */
const LOOP_MS = 5;

function post(m: EngineMessage): void {
  process.send!(m);
}

function main(): void {
  const [scenarioFile, dbFile, simStartMs, realStartMs, factor] = process.argv.slice(2);
  if (!process.send || factor === undefined) throw new Error('usage: fork engine-process.js SCENARIO DATABASE SIM_START_MS REAL_START_MS FACTOR');
  const scenario = loadScenarioFile(scenarioFile!);
  const clock = new AcceleratedClock({ simStartMs: Number(simStartMs), realStartMs: Number(realStartMs), factor: Number(factor) });

  post({ type: 'opening' });
  const store = SqliteStore.open(dbFile!, { mode: 'either' });
  const resumed = store.isInitialised();
  // A first start imports the fleet; a crash before that commit leaves nothing, so this start is again a first.
  if (!resumed) store.importState(scenario.state);
  const state = store.load()!;

  const driver: Driver = {
    send: (action) => post({ type: 'action', action }),
    observe: (machineIds) => post({ type: 'observe', machineIds: [...machineIds] }),
  };
  const engine = new Engine({
    clock,
    driver,
    store,
    state,
    profiles: scenario.profiles,
    ...(scenario.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}),
  });

  process.on('message', (m: HostMessage) => {
    if (m.type === 'obs') engine.observe(m.obs);
    else if (m.type === 'stop') {
      store.close();
      process.exit(0);
    }
  });
  // Without the fleet host there is nobody to talk to (and no orphan should outlive a test).
  process.on('disconnect', () => process.exit(0));

  const { resent, observed } = resumed ? engine.recover(store.pendingActions()) : { resent: 0, observed: 0 };
  post({ type: 'ready', resumed, resent, observed });

  const actions = scenario.actions;
  let doneSent = false;
  const loop = setInterval(() => {
    try {
      const now = clock.now();
      applyDueActions(engine, actions, now);
      tickIfDue(engine, now);
      if (!doneSent && (state.marks.scenarioActions ?? 0) >= actions.length && ![...state.rollouts.values()].some((r) => r.status === 'running')) {
        doneSent = true;
        post({ type: 'done' });
      }
    } catch (err) {
      clearInterval(loop);
      fatal(err);
    }
  }, LOOP_MS);
}


/** Tells the host why, then dies: a crash the host did not cause is a finding, never retried. */
function fatal(err: unknown): void {
  const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`${error}\n`);
  if (process.connected) process.send!({ type: 'fatal', error } satisfies EngineMessage, () => process.exit(1));
  else process.exit(1);
}

try {
  main();
} catch (err) {
  fatal(err);
}
