/** `phasewise sim`: run a scenario, print the summary, write the event log and the report. */
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { renderHtmlReport } from '../report/html-report.js';
import { JsonlWriter, OutputFileError } from '../report/jsonl-writer.js';
import { formatSummary, SummaryCollector } from '../report/summary.js';
import type { RolloutSummary } from '../report/summary.js';
import { quietEndNote } from '../sim/run-end.js';
import { loadScenarioFile } from '../sim/scenario.js';
import { Simulation } from '../sim/simulator.js';
import type { SimResult } from '../sim/simulator.js';
import { isPostgresUrl } from '../store/postgres/connect.js';
import { PgStore } from '../store/postgres/pg-store.js';
import { StoreError } from '../store/sqlite/database.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import { journalPaths } from '../store/sqlite/journal-file.js';
import { UsageError } from './errors.js';
import { PatchChecker } from '../audit/patches.js';
import { REBOOT_NOTICE_MS } from '../model/patch-runs.js';
import { checkGroupCommit, DEFAULT_GROUP_COMMIT, GroupCommitError } from '../store/sqlite/group-commit.js';
import type { GroupCommitSettings } from '../store/sqlite/group-commit.js';

export function parseSeed(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--seed: expected a whole number, got "${text}"`);
  return Number(text);
}

/** The scenario argument and output paths: an empty one (an unset shell variable) is a mistake, not "none". */
export function nonEmptyPath(text: string, what: string): string {
  if (text.trim() === '') throw new UsageError(`${what}: empty; name a file`);
  return text;
}

export interface SimOptions {
  seed?: string;
  events?: string;
  report?: string;
  quiet?: boolean;
  store?: string;
  replace?: boolean;
  groupTicks?: string;
  groupMs?: string;
}

/** `--group-ticks` and `--group-ms`: whole numbers in range, checked before anything is opened. */
export function parseGroupCommit(opts: Pick<SimOptions, 'groupTicks' | 'groupMs'>): GroupCommitSettings {
  const num = (text: string | undefined, option: string, fallback: number): number => {
    if (text === undefined) return fallback;
    if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${option}: expected a whole number, got "${text}"`);
    return Number(text);
  };
  const settings = { ticks: num(opts.groupTicks, '--group-ticks', DEFAULT_GROUP_COMMIT.ticks), wallMs: num(opts.groupMs, '--group-ms', DEFAULT_GROUP_COMMIT.wallMs) };
  try {
    return checkGroupCommit(settings);
  } catch (err) {
    if (!(err instanceof GroupCommitError)) throw err;
    throw new UsageError(err.message.replace(/^group ticks/, '--group-ticks').replace(/^group wall ms/, '--group-ms'));
  }
}

type SimStore = { kind: 'sqlite'; store: SqliteStore } | { kind: 'postgres'; store: PgStore };

/**
 * `memory`, `sqlite:FILE` or `postgres://…`. A SQLite file is new (or replaced on request); a PostgreSQL
 * database must hold no fleet (it is never emptied for you). Either receives the scenario's fleet.
 */
async function openStore(spec: string | undefined, replace: boolean): Promise<SimStore | null> {
  if (spec === undefined || spec === 'memory') return null;
  if (isPostgresUrl(spec)) {
    if (replace) throw new UsageError('--replace: only for --store sqlite:FILE; a PostgreSQL database is never emptied by sim (give an empty one)');
    const store = await PgStore.open(spec);
    if (store.isInitialised()) {
      await store.end();
      throw new StoreError('STORE_EXISTS', `${store.name} already holds a fleet; sim needs an empty database (it never overwrites one)`);
    }
    return { kind: 'postgres', store };
  }
  const m = /^sqlite:(.+)$/.exec(spec);
  if (!m) throw new UsageError(`--store: expected memory, sqlite:FILE or postgres://USER@HOST/DATABASE, got "${spec}"`);
  const file = m[1]!;
  if (replace) removeDatabase(file);
  // The generic "choose a new file or remove it first" left out the option made for this (README, docs/store.md).
  else if (existsSync(file)) throw new StoreError('STORE_EXISTS', `${file} already exists; give --replace to replace it, or choose a new file`);
  mkdirSync(dirname(file), { recursive: true });
  return { kind: 'sqlite', store: SqliteStore.open(file, { mode: 'new' }) };
}

/** Removes a database file with its WAL companions and group-commit journal, unless a running Phasewise holds it. */
function removeDatabase(file: string): void {
  if (!existsSync(file)) return;
  SqliteStore.open(file, { mode: 'existing' }).close(); // refuses a file in use, or one that is not a database
  for (const f of [file, `${file}-wal`, `${file}-shm`, ...journalPaths(file)]) rmSync(f, { force: true });
}

export async function simCommand(file: string, opts: SimOptions): Promise<void> {
  const seed = parseSeed(opts.seed);
  const group = parseGroupCommit(opts);
  if ((opts.groupTicks !== undefined || opts.groupMs !== undefined) && !(opts.store ?? 'memory').startsWith('sqlite:')) {
    throw new UsageError('--group-ticks and --group-ms apply to --store sqlite:FILE only');
  }
  nonEmptyPath(file, 'the scenario');
  if (opts.events !== undefined) nonEmptyPath(opts.events, '--events');
  if (opts.report !== undefined) nonEmptyPath(opts.report, '--report');
  const scenario = loadScenarioFile(file, seed === undefined ? {} : { seed });
  // Output folders are made (and said so) before the run, so a path that cannot be written fails at once.
  const created = [opts.events && outputFolder(opts.events, '--events'), opts.report && outputFolder(opts.report, '--report')].filter((x): x is string => Boolean(x));
  const opened = await openStore(opts.store, opts.replace === true);
  const store = opened?.store ?? null;
  try {
    if (opened?.kind === 'postgres') await opened.store.importState(scenario.state, { load: false });
    else opened?.store.importState(scenario.state);
  } catch (err) {
    if (opened?.kind === 'postgres') await opened.store.end();
    throw err;
  }
  if (opened?.kind === 'sqlite') opened.store.groupCommits(group, undefined, { journal: true });
  const summary = new SummaryCollector();
  const writer = opts.events ? new JsonlWriter(opts.events, undefined, '--events') : null;
  const tty = !opts.quiet && process.stderr.isTTY === true;
  const wallStart = process.hrtime.bigint();
  // R75/R83: a scenario with patch schedules has its log checked as it is written; a violation fails the run.
  const schedules = new Map(scenario.patchSchedules.map((s) => [s.id, s.window]));
  const patchChecker = schedules.size > 0 ? new PatchChecker({ windowOf: (id) => schedules.get(id), noticeMs: REBOOT_NOTICE_MS }) : null;
  const sim = new Simulation(scenario, {
    ...(store ? { store } : {}),
    onEvents: (events) => {
      summary.onEvents(events);
      writer?.onEvents(events);
      patchChecker?.onEvents(events);
    },
    ...(tty
      ? {
          onProgress: (t: number) => {
            const day = (t - scenario.startMs) / 86_400_000;
            process.stderr.write(`\r  simulating: day ${day.toFixed(1)} of at most ${(scenario.horizonMs / 86_400_000).toFixed(0)} · ${summary.events.toLocaleString('en')} events   `);
          },
          progressEveryTicks: opened?.kind === 'postgres' ? 200 : 2_000,
        }
      : {}),
  });
  // PostgreSQL commits each tick asynchronously: each is waited for (a failed one ends the run with its error).
  let result: SimResult;
  if (opened?.kind === 'postgres') {
    const pgStore = opened.store;
    try {
      result = await sim.runCommitted(() => pgStore.settled());
    } finally {
      await pgStore.end();
    }
  } else {
    result = sim.run();
  }
  if (tty) process.stderr.write('\r\x1b[K');
  writer?.close();
  if (opened?.kind === 'sqlite') opened.store.close();
  const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
  const rollouts = summary.result();
  const out: string[] = [];
  out.push(`Scenario ${scenario.name} (${file}), seed ${scenario.seed}: ${scenario.state.fleet.machines.size.toLocaleString('en')} machines in ${scenario.state.fleet.regions.size} regions`);
  const running = rollouts.filter((r) => r.status === 'running').map((r) => r.id);
  const quiet = result.hitHorizon ? '' : quietEndNote(result.engine.state, running);
  const ended = `${result.hitHorizon ? '; stopped at the horizon with work still open' : ''}${heldAtEnd(rollouts)}${quiet}`;
  out.push(`Simulated ${((result.endMs - scenario.startMs) / 86_400_000).toFixed(1)} days in ${(wallMs / 1000).toFixed(2)} s wall; ${summary.events.toLocaleString('en')} events${ended}`);
  out.push('');
  out.push(rollouts.length === 0 ? 'No rollout started: no release found eligible machines.' : formatSummary(rollouts, opts.events ?? null));
  if (writer) out.push(`Event log: ${opts.events} (${writer.written.toLocaleString('en')} events, JSON Lines)`);
  if (opened?.kind === 'sqlite') out.push(`State and event log kept in ${opened.store.file} (phasewise db check --db ${opened.store.file})`);
  if (opened?.kind === 'postgres') out.push(`State and event log kept in ${opened.store.name} (${opened.store.commits.toLocaleString('en')} commits; phasewise db check --db URL)`);
  out.push(...created);
  if (opts.report) {
    const about = { name: scenario.name, description: scenario.description, file, seed: scenario.seed, machines: scenario.state.fleet.machines.size, regions: scenario.state.fleet.regions.size };
    writeOutput(opts.report, '--report', renderHtmlReport({ scenario: about, rollouts }));
    out.push(`Report: ${opts.report}`);
  }
  if (patchChecker) {
    const v = patchChecker.violations;
    out.push(v.length === 0 ? `Patch schedules: ${patchChecker.checkedStarts} run starts and ${patchChecker.checkedReboots} reboots checked, no violation`
      : `Patch schedules: ${v.length} violation(s) of R75/R83:\n  ${v.join('\n  ')}`);
    if (v.length > 0) process.exitCode = 1;
  }
  process.stdout.write(out.join('\n') + '\n');
}

function writeOutput(file: string, option: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new OutputFileError(option, file, 'write', err);
  }
}

/** Makes the folder an output file goes into; returns a line saying so when it was created. */
function outputFolder(file: string, option: string): string | null {
  // Checked before the store is opened, so a bad path leaves nothing behind.
  if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`${option}: ${file} is a folder; expected a file to write`);
  const dir = dirname(file);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new UsageError(`${option}: ${dir} is not a folder`);
    return null;
  }
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UsageError(`${option}: cannot create the folder ${dir}: ${(err as Error).message}`);
  }
  return `(created the folder ${dir} for ${option})`;
}

/** Why a run ended before its rollouts did: a release held fleet-wide waits for an operator, who a simulation has not. */
function heldAtEnd(rollouts: readonly RolloutSummary[]): string {
  const held = rollouts.filter((r) => r.status === 'held').map((r) => r.id);
  return held.length === 0 ? '' : `; ended with the release of rollout ${held.join(', ')} held fleet-wide (nothing moves until an operator resumes it)`;
}
