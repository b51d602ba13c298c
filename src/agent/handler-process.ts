/**
 * Runs one handler command so that a crash of the agent cannot run it twice.
 *
 *   journal {running, startedAt, timeout, runId}  ──spawn──▶  wrapper (own process group, detached):
 *        │                                                    echo $$ > run/<id>.pid
 *        │                                                    sh -c "<command>"  (cwd = base dir)
 *        ▼                                                    echo $? > run/<id>.exit (tmp + mv)
 *   journal {pid}  ──poll──▶  exit file?  → done (code)
 *                             past startedAt + timeout? → SIGKILL the whole group → done (timed out, 1011)
 *                             wrapper gone, no exit file? → killed from outside (reboot): run again, once
 *
 * After a restart the same loop picks up a `running` step: the exit file if the command finished while
 * the agent was down, else wait for the live group (the original deadline still holds), else re-run.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import type { Journal, OperationJournal, StepRecord } from './journal.js';
import { runDir } from './layout.js';
import { heldOpen } from './open-files.js';
import type { AgentDirs } from './layout.js';

export interface CommandSpec {
  /** Unique within the operation, e.g. `install@1.2.0`. */
  key: string;
  command: string;
  cwd: string;
  env: Record<string, string>;
  timeoutMs: number;
  /** Where a line per command goes (CommandExecution.log in the handler's log folder). */
  logFile: string;
  /** Characters of output kept (default 3,200, the handlers' status message budget). */
  outputKeep?: number;
}

export interface CommandResult {
  exitCode: number | null;
  timedOut: boolean;
  output: string;
}

export interface ProcessRuntime {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  pollMs: number;
  log: (line: string) => void;
}

const OUTPUT_KEEP = 3200;
/**
 * The wrapper: its pid file first, then the command in its own shell, then the exit code, atomically.
 * It exits with the command's code too: when the exit file cannot be written (a full disk), the agent
 * that spawned it still learns the code and does not take the finished command for a killed one.
 */
const WRAPPER = 'echo $$ > "$2.pid"; sh -c "$1"; c=$?; echo $c > "$2.exit.tmp" && mv "$2.exit.tmp" "$2.exit"; exit $c';

/** Exit codes of wrappers this agent process spawned, by run file base (a signal is not an exit code). */
const spawnedExits = new Map<string, number>();

export function isAlive(pid: number, runBase: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A zombie (nobody reaped it) is dead; a reused pid runs something else than our wrapper.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(runBase);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

export function killGroup(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function readExit(runBase: string): number | null {
  try {
    const text = readFileSync(`${runBase}.exit`, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : 255;
  } catch {
    return null;
  }
}

function readPid(runBase: string): number | null {
  try {
    const text = readFileSync(`${runBase}.pid`, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/**
 * The first `keep` characters of a command's output. Only the bytes they can take are read (UTF-8: at most
 * 4 per character): a handler that wrote gigabytes must not make the agent load them (a string over
 * V8's limit throws, and the output would be lost).
 */
export function readOutput(runBase: string, keep = OUTPUT_KEEP): string {
  let fd: number;
  try {
    fd = openSync(`${runBase}.out`, 'r');
  } catch {
    return '';
  }
  try {
    const buf = Buffer.alloc(keep * 4);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    const text = buf.subarray(0, n).toString('utf8');
    return text.length > keep ? text.slice(0, keep) : text;
  } catch {
    return '';
  } finally {
    closeSync(fd);
  }
}

/**
 * Cuts a running command's output file to what readOutput can use: a handler that writes without end
 * would otherwise fill the disk until its timeout. Checked at every poll, so the file stays within what
 * the command writes between two polls.
 */
function capOutput(runBase: string, keep: number): void {
  const path = `${runBase}.out`;
  try {
    if (statSync(path).size > keep * 4) truncateSync(path, keep * 4);
  } catch {
    // not there yet, or gone with the step
  }
}

/** The most any command keeps of its output (patching's 256 Ki characters), as bytes: no `.out` needs more. */
export const MAX_OUTPUT_FILE_BYTES = 256 * 1024 * 4;
/** Run files looked at per sweep: the folder is the agent's own, this only bounds one sweep's work. */
const SWEEP_LIMIT = 10_000;

/**
 * Cuts every command output file in the run folder to MAX_OUTPUT_FILE_BYTES. capOutput only trims the
 * step being polled: output written while the agent was down, or while the worker was busy with another
 * extension, or by a handler that outlived its step, grew without bound. The agent sweeps at start-up and
 * with every status scan. Only regular files are touched (a link a handler planted is not followed).
 *
 * With `removeIdle` (every tenth sweep: it reads every process's open files), an output file no step owns
 * any more is removed once no process holds it open: a step's end only empties its file, as a process the
 * handler left behind may still write to it. With `openRuns` (the run ids of the open operations' steps,
 * given once the journal is known to name every step that may run), the run files of no open step are
 * removed too: exit files of an operation that closed while the agent was being killed, or of one a journal
 * cut short dropped, and the pid files of wrappers gone without an exit code. A live wrapper's are left.
 */
export function trimRunOutputs(dirs: AgentDirs, maxBytes = MAX_OUTPUT_FILE_BYTES, removeIdle = false, openRuns?: ReadonlySet<string>): SweepResult {
  let names: string[];
  try {
    names = readdirSync(runDir(dirs));
  } catch {
    return { trimmed: 0, removed: 0, leftovers: 0 }; // no command has run yet
  }
  const swept = names.slice(0, SWEEP_LIMIT);
  const orphans: OrphanWrapper[] = [];
  const leftovers = openRuns ? removeLeftovers(dirs, swept, openRuns, orphans) : new Set<string>();
  const present = new Set(swept.filter((n) => !leftovers.has(n)));
  let trimmed = 0;
  const idle: string[] = [];
  for (const n of present) {
    if (!n.endsWith('.out')) continue;
    const path = join(runDir(dirs), n);
    try {
      const st = lstatSync(path);
      if (!st.isFile()) continue;
      const base = n.slice(0, -'.out'.length);
      const owned = openRuns?.has(base) === true || present.has(`${base}.pid`) || present.has(`${base}.exit`);
      if (removeIdle && !owned) idle.push(path);
      if (st.size <= maxBytes) continue;
      truncateSync(path, maxBytes);
      trimmed++;
    } catch {
      // gone with its step meanwhile
    }
  }
  return { trimmed, removed: idle.length === 0 ? 0 : removeUnheld(idle), leftovers: leftovers.size, ...(openRuns ? { orphans } : {}) };
}

/** A live handler wrapper whose step no open operation has (orphan-reaper.ts ends it after a grace). */
export interface OrphanWrapper {
  runId: string;
  pid: number;
}

export interface SweepResult {
  /** Output files cut to the bound. */
  trimmed: number;
  /** Output files no step owns and no process holds, removed. */
  removed: number;
  /** Exit and pid files of no open step, removed. */
  leftovers: number;
  /** With `openRuns`: the live wrappers of no open step (their files are left while they run). */
  orphans?: OrphanWrapper[];
}

/** Removes the `.exit`, `.exit.tmp` and `.pid` files of runs no open step owns; returns their names. */
function removeLeftovers(dirs: AgentDirs, names: readonly string[], openRuns: ReadonlySet<string>, orphans: OrphanWrapper[]): Set<string> {
  const removed = new Set<string>();
  for (const n of names) {
    const m = /^(.+?)\.(exit|exit\.tmp|pid)$/.exec(n);
    if (!m || openRuns.has(m[1]!)) continue;
    const base = join(runDir(dirs), m[1]!);
    if (m[2] === 'pid') {
      // A wrapper still running writes its exit file when its command ends; a later sweep takes both.
      const pid = readPid(base);
      if (pid !== null && isAlive(pid, base)) {
        orphans.push({ runId: m[1]!, pid });
        continue;
      }
    }
    rmSync(join(runDir(dirs), n), { force: true, recursive: true });
    removed.add(n);
  }
  return removed;
}

/** Removes those of `paths` no process holds open; none when that cannot be told. */
function removeUnheld(paths: string[]): number {
  const held = heldOpen(paths);
  if (held === null) return 0;
  let removed = 0;
  for (const p of paths) {
    if (held.has(p)) continue;
    rmSync(p, { force: true });
    removed++;
  }
  return removed;
}

/** The code a wrapper this process spawned exited with, once it is no longer alive; else null. */
function spawnedExitOf(runBase: string): number | null {
  const code = spawnedExits.get(runBase);
  return code === undefined ? null : code;
}

/** With `keepExit`, the exit file stays (see finish); the operation's end removes it (Journal.forgetRuns). */
function cleanup(runBase: string, keepExit = false): void {
  spawnedExits.delete(runBase);
  // Emptied, not removed: a handler that outlives its step (its own session, escaped the group kill) may
  // write on into it, and an unlinked file grows on the disk out of any sweep's reach. Telling whether some
  // process holds it means reading every process's open files, too slow for each step's end: the sweep
  // (trimRunOutputs) does that once for all, and removes the file once no step owns it and nobody holds it.
  const out = `${runBase}.out`;
  let keepOut = false;
  try {
    if (lstatSync(out).isFile()) {
      truncateSync(out, 0);
      keepOut = true;
    }
  } catch {
    // no output file
  }
  // recursive: whatever a handler left under these names (even a folder) must not fail the step's end.
  const exts = ['.pid', '.exit.tmp', ...(keepExit ? [] : ['.exit']), ...(keepOut ? [] : ['.out'])];
  for (const ext of exts) rmSync(`${runBase}${ext}`, { force: true, recursive: true });
}

export function runIdOf(ext: string, operationId: string, key: string): string {
  return createHash('sha1').update(`${ext}\n${operationId}\n${key}`).digest('hex').slice(0, 20);
}

/** Starts the step's wrapper; returns why it could not be started (spawn refused its arguments), else null. */
function start(dirs: AgentDirs, rec: StepRecord, spec: CommandSpec, journal: Journal, rt: ProcessRuntime): string | null {
  const base = join(runDir(dirs), rec.runId);
  cleanup(base);
  rec.startedAt = rt.now();
  rec.pid = null;
  journal.save(); // announced before it exists: a crash right here is "never started" on restart
  mkdirSync(runDir(dirs), { recursive: true, mode: 0o700 });
  // Append mode: capOutput can cut the file while the command still writes (its next write lands at the new end).
  const out = openSync(`${base}.out`, 'a', 0o600);
  let child: ReturnType<typeof spawn>;
  try {
    // Detached: the handler gets its own session and process group, which a timeout kills as a whole.
    child = spawn('sh', ['-c', WRAPPER, 'phasewise-handler', spec.command, base], {
      cwd: existsSync(spec.cwd) ? spec.cwd : '/',
      env: spec.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
  } catch (err) {
    // Thrown before any process exists (a NUL byte in the command or the environment): nothing ran, and
    // trying again cannot help; the step ends failed saying why, not "killed from outside twice".
    return `the command could not be started: ${(err as Error).message}`;
  } finally {
    closeSync(out);
  }
  child.on('error', () => undefined); // a spawn failure shows as "gone without an exit code"
  spawnedExits.delete(base);
  child.on('exit', (code) => {
    if (code !== null) spawnedExits.set(base, code);
  });
  child.unref();
  rec.pid = child.pid ?? null;
  journal.save();
  return null;
}

/** Runs `spec` as step `spec.key` of `op`, or returns what it did if the journal says it finished. */
export async function runStep(dirs: AgentDirs, journal: Journal, extName: string, op: Pick<OperationJournal, 'operationId' | 'steps'>, spec: CommandSpec, rt: ProcessRuntime): Promise<CommandResult> {
  let rec = op.steps[spec.key];
  if (rec?.state === 'done') return { exitCode: rec.exitCode, timedOut: rec.timedOut, output: rec.output };
  const runId = runIdOf(extName, op.operationId, spec.key);
  const base = join(runDir(dirs), runId);
  if (!rec) {
    rec = { state: 'running', startedAt: rt.now(), timeoutMs: spec.timeoutMs, pid: null, runId, exitCode: null, timedOut: false, restarts: 0, output: '', finishedAt: null };
    op.steps[spec.key] = rec;
    if (existsSync(`${base}.pid`) || existsSync(`${base}.exit`)) {
      // Its run files say it was spawned, yet the journal has no record of it: the write announcing it
      // was lost (a torn journal completed from the write before). Picked up, never started again.
      journal.save();
      rt.log(`${extName}: ${spec.key} has run files but no journal record (a journal write was lost); picking it up, not starting it again`);
    } else {
      const refused = start(dirs, rec, spec, journal, rt);
      if (refused !== null) return notStarted(journal, rec, base, spec, extName, refused, rt);
      rt.log(`${extName}: ${spec.key} started: ${spec.command}`);
    }
  } else {
    rt.log(`${extName}: ${spec.key} was running when the agent stopped; picking it up (pid ${rec.pid ?? 'unknown'})`);
  }
  let missingSince: number | null = null;
  for (;;) {
    // Cut before anything is read: a picked-up step's output may have grown while the agent was down.
    capOutput(base, spec.outputKeep ?? OUTPUT_KEEP);
    const code = readExit(base) ?? spawnedExitOf(base);
    if (code !== null) return finish(journal, rec, base, spec, { exitCode: code, timedOut: false, output: readOutput(base, spec.outputKeep) }, rt);
    const pid = rec.pid ?? readPid(base);
    if (rt.now() >= rec.startedAt + rec.timeoutMs) {
      if (pid !== null) killGroup(pid);
      rt.log(`${extName}: ${spec.key} timed out after ${Math.round(rec.timeoutMs / 1000)} s; its process group was killed`);
      return finish(journal, rec, base, spec, { exitCode: null, timedOut: true, output: readOutput(base, spec.outputKeep) }, rt);
    }
    const alive = pid !== null && isAlive(pid, base);
    if (alive) missingSince = null;
    else {
      // Give a just-spawned wrapper a moment to write its pid file before calling it gone.
      missingSince ??= rt.now();
      if (rt.now() - missingSince >= 500 && readExit(base) === null) {
        if (pid !== null) killGroup(pid); // leftovers of a killed wrapper
        if (rec.restarts >= 1) {
          rt.log(`${extName}: ${spec.key} vanished again without an exit code; counted as failed`);
          return finish(journal, rec, base, spec, { exitCode: null, timedOut: false, output: 'the command was killed from outside twice' }, rt);
        }
        rec.restarts++;
        rt.log(`${extName}: ${spec.key} is gone without an exit code (killed from outside, e.g. a reboot); running it again`);
        const refused = start(dirs, rec, spec, journal, rt);
        if (refused !== null) return notStarted(journal, rec, base, spec, extName, refused, rt);
        missingSince = null;
      }
    }
    await rt.sleep(rt.pollMs);
  }
}

/** CommandExecution.log and patching.log are kept to this size, plus one older file (`.1`). */
export const COMMAND_LOG_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Appends to a command log, moving it to `<file>.1` first when the entry would take it past
 * COMMAND_LOG_MAX_BYTES: a machine that runs commands for years (patching keeps 256 KiB of each
 * package install) must not fill its disk with their logs.
 */
export function appendRotated(file: string, entry: string, maxBytes = COMMAND_LOG_MAX_BYTES): void {
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    // first entry
  }
  if (size > 0 && size + Buffer.byteLength(entry) > maxBytes) renameSync(file, `${file}.1`);
  appendFileSync(file, entry);
}

function notStarted(journal: Journal, rec: StepRecord, base: string, spec: CommandSpec, extName: string, why: string, rt: ProcessRuntime): CommandResult {
  rt.log(`${extName}: ${spec.key}: ${why}`);
  return finish(journal, rec, base, spec, { exitCode: null, timedOut: false, output: why }, rt);
}

function finish(journal: Journal, rec: StepRecord, base: string, spec: CommandSpec, r: CommandResult, rt: ProcessRuntime): CommandResult {
  rec.state = 'done';
  rec.exitCode = r.exitCode;
  rec.timedOut = r.timedOut;
  rec.output = r.output;
  rec.finishedAt = rt.now();
  journal.save();
  // The exit file stays until the operation ends: should this write be lost (a torn journal completed
  // from the write before, where the step is still running), a restart reads the code, never re-runs.
  cleanup(base, true);
  const how = r.timedOut ? 'timed out' : `exit ${r.exitCode ?? 'unknown'}`;
  try {
    appendRotated(spec.logFile, `${new Date(rt.now()).toISOString()} ${spec.key} ${spec.command}: ${how}\n${r.output}\n`);
  } catch {
    // the log folder is the handler's; a missing one must not fail the step
  }
  return r;
}
