/**
 * What an operation needs from the agent, and the small steps every sequence is made of: handler
 * commands (journaled, see handler-process), marks for idempotent file steps, bounded waits whose
 * start is journaled, and the verified package in the rollback cache.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { GoalStateExtension, HandlerStatusBody, PackageReference } from '../protocol/agent-wire.js';
import { fsyncDir } from './atomic-file.js';
import { isTerminal, readHandlerStatus } from './handler-files.js';
import type { HandlerCommand } from './handler-manifest.js';
import { readManifest } from './handler-manifest.js';
import { runStep } from './handler-process.js';
import type { CommandResult, ProcessRuntime } from './handler-process.js';
import type { ExtensionRecord, Journal, OperationJournal } from './journal.js';
import { cachedPackagePath, downloadsDir, handlerDir, handlerLogDir, packagesDir } from './layout.js';
import type { AgentDirs } from './layout.js';
import type { LocalPolicy } from './local-policy.js';
import { verifyPackageFile } from './package-verify.js';

/** The timeouts of §3.1 in seconds: install 900, enable 300, update 900, disable 900, uninstall 300. */
export const DEFAULT_TIMEOUTS_S: Record<HandlerCommand, number> = { install: 900, enable: 300, update: 900, disable: 900, uninstall: 300 };

/** What the health gate can ask of the Application Health monitor. */
export interface HealthView {
  /** True when the goal state runs the Application Health extension, so upgrades are gated on it. */
  active(): boolean;
  /** 'Healthy' or 'Unhealthy' once committed from probes made after `sinceMs`; null while undecided. */
  verdictSince(sinceMs: number): 'Healthy' | 'Unhealthy' | null;
  /** The committed state, for messages. */
  state(): string;
}

export interface AgentRuntime extends ProcessRuntime {
  dirs: AgentDirs;
  journal: Journal;
  timeoutsMs: Record<HandlerCommand, number>;
  /** How long to wait for a terminal status after enable (WALinuxAgent waits up to 90 min for dependents). */
  statusWaitMs: number;
  statusPollMs: number;
  /** Fetches a package into `dest` (resuming it); throws DownloadError (retry later) or DownloadRejected. */
  fetchPackage(ref: PackageReference, dest: string): Promise<void>;
  health: HealthView;
  policy(): LocalPolicy;
  /** AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS for handlers: the control plane's host, or unset. */
  wireAddress: string | null;
  /** Retry a failed download after this long (then doubling, capped). */
  downloadRetryMs: number;
}

/** An operation step failed: the code WALinuxAgent would report, and a sentence. */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export const ERROR_CODES: Record<HandlerCommand, number> = { install: 1007, enable: 1009, update: 1008, disable: 1010, uninstall: 1000 };
export const TIMEOUT_CODE = 1011;

export function commandEnv(rt: AgentRuntime, ext: GoalStateExtension, version: string, extra: Record<string, string>): Record<string, string> {
  const handlerVars: Record<string, string> = {
    AZURE_GUEST_AGENT_EXTENSION_PATH: handlerDir(rt.dirs, ext.name, version),
    AZURE_GUEST_AGENT_EXTENSION_VERSION: version,
    AZURE_GUEST_AGENT_EXTENSION_SUPPORTED_FEATURES: '[{"Key":"ExtensionTelemetryPipeline","Value":"1.0"}]',
    ConfigSequenceNumber: String(ext.settingsSeqNo),
    // Not an Azure variable: lets a handler (and the tests) tie a call to the operation's key.
    PHASEWISE_OPERATION_ID: ext.operationId,
    ...extra,
  };
  if (rt.wireAddress) handlerVars.AZURE_GUEST_AGENT_WIRE_PROTOCOL_ADDRESS = rt.wireAddress;
  const agentEnv = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { ...handlerVars, ...agentEnv }; // the agent's environment is merged last, as WALinuxAgent does
}

/**
 * Runs handler command `cmd` of `version` (from that version's manifest, in its base dir) as step
 * `key`. Resolves to the result; a missing manifest or folder counts as a failed command.
 */
export async function runCommand(
  rt: AgentRuntime,
  rec: ExtensionRecord,
  op: OperationJournal,
  key: string,
  cmd: HandlerCommand,
  version: string,
  extraEnv: Record<string, string>,
  runIn: string = version,
): Promise<CommandResult> {
  const done = op.steps[key];
  if (done?.state === 'done') return { exitCode: done.exitCode, timedOut: done.timedOut, output: done.output };
  const base = handlerDir(rt.dirs, op.ext.name, runIn);
  let command: string;
  try {
    command = readManifest(base).commands[cmd];
  } catch (err) {
    return { exitCode: null, timedOut: false, output: `cannot run ${cmd}: ${(err as Error).message}` };
  }
  return runStep(
    rt.dirs,
    rt.journal,
    rec.name,
    op,
    {
      key,
      command,
      cwd: base,
      // PATH/VERSION name the handler whose command runs (the old one for a downgrade's update).
      env: commandEnv(rt, op.ext, runIn, extraEnv),
      timeoutMs: rt.timeoutsMs[cmd],
      logFile: join(handlerLogDir(rt.dirs, rec.name), 'CommandExecution.log'),
    },
    rt,
  );
}

export const succeeded = (r: CommandResult): boolean => r.exitCode === 0 && !r.timedOut;
export const exitCodeText = (r: CommandResult | null): string => (r === null ? 'NOT_RUN' : r.timedOut ? 'TIMEOUT' : String(r.exitCode ?? -1));

export function failureOf(rt: AgentRuntime, cmd: HandlerCommand, version: string, r: CommandResult): StepFailure {
  if (r.timedOut) {
    const s = Math.round(rt.timeoutsMs[cmd] / 1000);
    return new StepFailure(`${cmd} of ${version} timed out after ${s} s; its process group was killed`, TIMEOUT_CODE);
  }
  const tail = r.output.trim().split('\n').slice(-3).join(' | ').slice(0, 300);
  return new StepFailure(`${cmd} of ${version} failed with exit code ${r.exitCode ?? 'unknown'}${tail ? `: ${tail}` : ''}`, ERROR_CODES[cmd]);
}

/** Runs `fn` once per operation: idempotent file steps are marked so a replay after a crash skips them. */
export async function once(rt: AgentRuntime, op: OperationJournal, mark: string, fn: () => void | Promise<void>): Promise<void> {
  if (op.marks.includes(mark)) return;
  await fn();
  op.marks.push(mark);
  rt.journal.save();
}

function waitStart(rt: AgentRuntime, op: OperationJournal, key: string): number {
  let t = op.waits[key];
  if (t === undefined) {
    t = rt.now();
    op.waits[key] = t;
    rt.journal.save();
  }
  return t;
}

/** Waits (bounded, from a journaled start) for the handler's terminal status for the operation's seq. */
export async function waitTerminalStatus(rt: AgentRuntime, op: OperationJournal, version: string): Promise<HandlerStatusBody> {
  const base = handlerDir(rt.dirs, op.ext.name, version);
  const start = waitStart(rt, op, `status@${version}`);
  for (;;) {
    const { body } = readHandlerStatus(base, op.ext.settingsSeqNo);
    if (isTerminal(body.status)) return body;
    if (!existsSync(base)) throw new StepFailure(`the handler folder of ${version} disappeared (the handler deleted it?)`, 1009);
    if (rt.now() - start >= rt.statusWaitMs) {
      throw new StepFailure(`no terminal status from ${op.ext.name} ${version} within ${Math.round(rt.statusWaitMs / 1000)} s (last: ${body.status})`, 1009);
    }
    await rt.sleep(rt.statusPollMs);
  }
}

/** The health gate (R22): Healthy from probes made after enable, within rollback.healthGateSeconds. */
export async function waitHealthy(rt: AgentRuntime, op: OperationJournal, version: string, enabledAt: number): Promise<void> {
  const gateMs = op.ext.rollback.healthGateSeconds * 1000;
  if (!rt.health.active() || gateMs === 0) return;
  const start = waitStart(rt, op, `health@${version}`);
  for (;;) {
    const verdict = rt.health.verdictSince(enabledAt);
    if (verdict === 'Healthy') return;
    if (verdict === 'Unhealthy') throw new StepFailure(`the application turned Unhealthy after ${op.ext.name} ${version} was enabled`, 1009);
    if (rt.now() - start >= gateMs) {
      throw new StepFailure(`the application was not Healthy within ${op.ext.rollback.healthGateSeconds} s of enabling ${version} (state ${rt.health.state()})`, 1009);
    }
    await rt.sleep(rt.statusPollMs);
  }
}

/**
 * The verified zip of `name` `version` in the rollback cache, downloading it first when needed. A
 * cached zip is checked again (size, digest, signature) before every use.
 */
export async function ensurePackage(rt: AgentRuntime, name: string, version: string, ref: PackageReference): Promise<string> {
  const cache = cachedPackagePath(rt.dirs, name, version);
  if (existsSync(cache)) {
    try {
      await verifyPackageFile(rt.dirs, cache, name, version, ref);
      return cache;
    } catch {
      // A different build under the same version, or damage: fetch it again. The cached zip stays
      // until a verified one replaces it, so a failed download cannot lose the last known good.
    }
  }
  mkdirSync(downloadsDir(rt.dirs), { recursive: true, mode: 0o700 });
  mkdirSync(packagesDir(rt.dirs), { recursive: true, mode: 0o700 });
  const dest = join(downloadsDir(rt.dirs), `${ref.sha256.toLowerCase()}.part`);
  await rt.fetchPackage(ref, dest);
  try {
    await verifyPackageFile(rt.dirs, dest, name, version, ref);
  } catch (err) {
    rmSync(dest, { force: true });
    throw err;
  }
  renameSync(dest, cache);
  fsyncDir(packagesDir(rt.dirs));
  return cache;
}
