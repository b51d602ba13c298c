/**
 * The agent's own state, `<lib>/.agent/state.json`, written atomically after every change: per
 * extension what is installed, the last known good version, the operation in flight with the steps it
 * has started and finished, and a bounded history of outcomes by operationId. A step is journaled as
 * `running` BEFORE its command is spawned, so after `kill -9` the agent knows what may be running.
 */
import type { AgentExtensionState, GoalState, GoalStatePatchOperation, GoalStateExtension, OperationOutcome, PackageReference } from '../protocol/agent-wire.js';
import type { PatchInstallationState, PatchOperationReport } from '../protocol/agent-wire.js';
import type { AvailablePatch } from './patching/types.js';
import { LIMITS } from '../protocol/agent-wire.js';
import { rmSync } from 'node:fs';
import { readJsonFile, writeJsonAtomic } from './atomic-file.js';
import { readJsonKeepingWhole } from './torn-json.js';
import { PAST_EPOCHS_KEPT } from './goal-state-order.js';
import { goalStatePath, previousStatePath, runBase, statePath } from './layout.js';
import type { AgentDirs } from './layout.js';

export interface StepRecord {
  state: 'running' | 'done';
  startedAt: number;
  timeoutMs: number;
  /** The wrapper's pid, which is also its process group (spawned detached). */
  pid: number | null;
  runId: string;
  exitCode: number | null;
  timedOut: boolean;
  /** How often this step was started again because its process vanished without an exit code. */
  restarts: number;
  output: string;
  finishedAt: number | null;
}

export interface OperationJournal {
  operationId: string;
  /** The goal-state entry as it was when the operation started: a restart finishes this, not a newer one. */
  ext: GoalStateExtension;
  fromVersion: string | null;
  fromState: AgentExtensionState;
  startedAt: number;
  steps: Record<string, StepRecord>;
  /** Non-command steps done (unpack, copy, delete …), so a replay skips them. */
  marks: string[];
  /** When each bounded wait (terminal status, health gate) began: a restart keeps the deadline. */
  waits: Record<string, number>;
  /** The last known good version when the operation started: what a rollback reinstalls. */
  lastKnownGood: LastKnownGood | null;
  /** Transient failure (download): try again at this time; `attempts` doubles the wait, capped. */
  retryAt: number | null;
  attempts: number;
  lastError: string | null;
  /** Set when the forward sequence failed: a replay goes straight to the rollback with it. */
  failure?: { message: string; code: number };
}

export interface LastKnownGood {
  version: string;
  seq: number;
  package: PackageReference;
}

export interface OutcomeRecord {
  operationId: string;
  outcome: OperationOutcome;
  version: string | null;
  message: string;
  finishedAt: string;
  /** Rollback substatus, when the outcome is rolledBack or a failed rollback. */
  rollback?: { status: 'success' | 'error'; message: string };
}

export interface ExtensionRecord {
  name: string;
  state: AgentExtensionState;
  installedVersion: string | null;
  installedSeq: number | null;
  /** The package of the installed version, kept so its cached zip can be checked again before reuse. */
  installedPackage: PackageReference | null;
  lastKnownGood: LastKnownGood | null;
  op: OperationJournal | null;
  history: OutcomeRecord[];
  /** The last error to show at handler level (download, verify, command failures). */
  lastError: { code: number; message: string } | null;
}

export interface AgentState {
  version: 1;
  /** The last goal state the agent accepted (kept so a restart knows its target before the server answers). */
  goalState: GoalState | null;
  etag: string | null;
  /**
   * The agent (enrollment) the goal state and ETag were sent to; null in files of agents before it was kept.
   * Goal state ids count per agent: after `agent connect --force` they start again (Agent.start).
   */
  goalStateAgentId: string | null;
  /** Server epochs the agent has moved on from, newest first (goal-state-order.ts): their goal states are refused. */
  pastEpochs: string[];
  extensions: Record<string, ExtensionRecord>;
  /** Guest OS patch operations: the one in flight, results, the ids done (patch-journal.ts). */
  patches: PatchState;
}

export const HISTORY_LIMIT = 20;

/** One guest OS patch operation in flight (patch-operation.ts runs it). */
export interface PatchOpJournal {
  request: GoalStatePatchOperation;
  startedAt: number;
  /** The package manager that runs it ('none' when the machine has none the agent knows). */
  manager: string;
  /** What the assessment found, kept: a restart installs from this list, never from a new one. */
  available: AvailablePatch[] | null;
  rebootPending: boolean | null;
  /** Per package name, once decided (Installed, Failed, Pending when the window closed). */
  results: Record<string, { state: PatchInstallationState; message?: string }>;
  /** The install commands, journaled like handler commands (`install:<name>`). */
  steps: Record<string, StepRecord>;
  windowExceeded: boolean;
  /** After the installation: a reboot pending as the package manager says. */
  rebootRequired: boolean | null;
  reboot: { eventId: string; notBefore: number; approved: boolean; state: 'announced' | 'started'; bootId: string | null } | null;
  /** The machine approved the server's notice of this run's reboot before the agent announced it (R83). */
  rebootApprovedEarly?: boolean;
  error: { code: string; message: string } | null;
}

export interface PatchState {
  current: PatchOpJournal | null;
  /** Finished operations, newest first (bounded); `bootId` when a reboot was started, to tell it happened. */
  history: Array<{ report: PatchOperationReport; bootId: string | null }>;
  /** Operation ids done, newest first (bounded, longer than history): never run again. */
  doneIds: string[];
  /** Bumped whenever the agent's own scheduled events change (part of DocumentIncarnation). */
  eventSeq: number;
}

export const emptyPatchState = (): PatchState => ({ current: null, history: [], doneIds: [], eventSeq: 0 });

const MAX_STATE_BYTES = 64 * 1024 * 1024;

/** The state file as read, before it is trusted: a torn one may lack any part. */
type RawState = Partial<Pick<AgentState, 'version' | 'extensions'>> & { patches?: Partial<PatchState> };

/** Every member of the patch state is there: the cut (if any) came after it (a cut member is dropped whole). */
const patchStateWhole = (p: Partial<PatchState> | undefined): boolean => p !== undefined && Object.keys(emptyPatchState()).every((k) => k in p);

/** The journal one write before, when it is whole and of this format; null otherwise (it is only a fallback). */
function readPreviousState(dirs: AgentDirs): RawState | null {
  try {
    const v = readJsonFile(previousStatePath(dirs), MAX_STATE_BYTES) as RawState | undefined;
    return v?.version === 1 && typeof v.extensions === 'object' && v.extensions !== null ? v : null;
  } catch {
    return null;
  }
}

/**
 * A torn journal completed from the one written before it. What is whole in the torn file is newer and
 * wins; what the cut dropped comes from the previous write, one change behind and never more. So a record
 * cut off keeps its operation's journaled steps, and the patch ids done are the union of both: a patch
 * operation that finished is never run again, one in flight is continued, not started afresh.
 */
export function completeTornState(torn: RawState, prev: RawState | null): RawState {
  if (!prev) return torn;
  const extensions = { ...prev.extensions, ...torn.extensions };
  const t = torn.patches;
  if (patchStateWhole(t)) return { ...torn, extensions };
  const p = { ...emptyPatchState(), ...prev.patches };
  const doneIds = [...new Set([...(t?.doneIds ?? []), ...p.doneIds])];
  // A current kept whole in the torn file is the newest; null there may mean it just finished: the
  // previous one is continued (its steps are journaled) unless its id is known done.
  const current = t?.current ?? (p.current && !doneIds.includes(p.current.request.operationId) ? p.current : null);
  const patches: PatchState = { current, history: t?.history ?? p.history, doneIds, eventSeq: Math.max(t?.eventSeq ?? 0, p.eventSeq) };
  return { version: 1, extensions, patches };
}

export class Journal {
  readonly state: AgentState;

  /**
   * With `log` (the agent itself), a journal cut short is repaired: its whole records are kept, what the
   * cut dropped is taken from the journal as it was one write before (`state.prev.json`), one line is
   * logged and the file rewritten clean. Without (`agent status`), the same is read and the files left for
   * the agent. A cut goal state is dropped whole: the server sends it again.
   */
  constructor(private readonly dirs: AgentDirs, log: ((line: string) => void) | null = null) {
    const path = statePath(dirs);
    const read = readJsonKeepingWhole(path, MAX_STATE_BYTES);
    const cut = read.cutAt !== null;
    const torn = read.value as RawState | undefined;
    if (torn !== undefined && ((torn.version !== 1 && !(cut && torn.version === undefined)) || (!cut && typeof torn.extensions !== 'object') || torn.extensions === null)) {
      throw new Error(`${path} is not a state file this agent understands`);
    }
    const prev = cut ? readPreviousState(dirs) : null;
    const raw = torn && cut ? completeTornState(torn, prev) : torn;
    const goalFile = readJsonKeepingWhole(goalStatePath(dirs), 2 * LIMITS.goalStateBytes);
    const goal = goalFile.cutAt === null ? goalFile.value as { goalState: GoalState | null; etag: string | null; pastEpochs?: unknown; goalStateAgentId?: unknown } | undefined : undefined;
    const extensions = raw?.extensions ?? {};
    const pastEpochs = Array.isArray(goal?.pastEpochs) ? goal.pastEpochs.filter((e): e is string => typeof e === 'string').slice(0, PAST_EPOCHS_KEPT) : [];
    this.state = { version: 1, extensions, patches: { ...emptyPatchState(), ...raw?.patches }, goalState: goal?.goalState ?? null, etag: goal?.etag ?? null, pastEpochs,
      goalStateAgentId: typeof goal?.goalStateAgentId === 'string' ? goal.goalStateAgentId : null };
    if (!log) return;
    if (cut) {
      const whole = Object.keys(torn?.extensions ?? {}).length;
      const fromPrev = prev ? `; from the write before it: ${Object.keys(extensions).length - whole} extension record(s)${patchStateWhole(torn?.patches) ? '' : ' and the patch state'}` : '';
      log(`${path} was cut at byte ${read.cutAt} (a torn write): kept ${whole} whole extension record(s), dropped the torn tail${fromPrev}; rewritten clean`);
      this.save(false); // state.prev.json stays the whole one until the clean file is on disk
    }
    if (goalFile.cutAt !== null) {
      log(`${goalStatePath(dirs)} was cut at byte ${goalFile.cutAt} (a torn write): dropped; the server sends the goal state again`);
      this.saveGoalState();
    }
  }

  /**
   * The per-extension journal; written after every step, so it leaves the (up to 1 MiB) goal state out.
   * The file it replaces is kept as `state.prev.json` (a hard link): a torn write is completed from it.
   */
  save(keepPrevious = true): void {
    const state = { version: 1, extensions: this.state.extensions, patches: this.state.patches };
    writeJsonAtomic(statePath(this.dirs), state, 0o600, keepPrevious ? previousStatePath(this.dirs) : null);
  }

  /** The accepted goal state and its ETag, together: a crash between them would make the agent miss one. */
  saveGoalState(): void {
    this.commitGoalState({});
  }

  /**
   * Writes goalstate.json with `next` and only then takes it in memory. A write that fails (a read-only or full
   * disk) leaves the held goal state and its ETag: the next poll fetches the new goal state again. Taken first,
   * the new ETag drew 304s and the new goal state was never worked on until the agent restarted.
   */
  commitGoalState(next: Partial<Pick<AgentState, 'goalState' | 'etag' | 'pastEpochs' | 'goalStateAgentId'>>): void {
    const s = this.state;
    const merged = { goalState: s.goalState, etag: s.etag, pastEpochs: s.pastEpochs, goalStateAgentId: s.goalStateAgentId, ...next };
    writeJsonAtomic(goalStatePath(this.dirs), merged);
    Object.assign(this.state, merged);
  }

  record(name: string): ExtensionRecord {
    let rec = this.state.extensions[name];
    if (!rec) {
      rec = {
        name,
        state: 'NotInstalled',
        installedVersion: null,
        installedSeq: null,
        installedPackage: null,
        lastKnownGood: null,
        op: null,
        history: [],
        lastError: null,
      };
      this.state.extensions[name] = rec;
    }
    return rec;
  }

  outcomeOf(name: string, operationId: string): OutcomeRecord | undefined {
    return this.state.extensions[name]?.history.find((h) => h.operationId === operationId);
  }

  /** Closes the operation in flight with its outcome (kept in the bounded history). */
  finish(rec: ExtensionRecord, outcome: OutcomeRecord): void {
    const steps = rec.op?.steps ?? {};
    rec.history = [outcome, ...rec.history.filter((h) => h.operationId !== outcome.operationId)].slice(0, HISTORY_LIMIT);
    rec.op = null;
    this.save();
    this.forgetRuns(steps);
  }

  /** The run ids of every step of the operations in flight (extensions' and the patch operation's). */
  openRunIds(): Set<string> {
    const ops = [...Object.values(this.state.extensions).map((e) => e.op), this.state.patches.current];
    return new Set(ops.flatMap((op) => (op ? Object.values(op.steps).map((s) => s.runId) : [])));
  }

  /**
   * Removes the exit files the steps of a closed operation kept, once the save that closed it is done:
   * the write before it (now `state.prev.json`) has every step done, so no completed journal can show
   * one of them still running.
   */
  forgetRuns(steps: Record<string, StepRecord>): void {
    for (const s of Object.values(steps)) rmSync(`${runBase(this.dirs, s.runId)}.exit`, { force: true, recursive: true });
  }
}
