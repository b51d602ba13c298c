/**
 * Finding the machine's package manager and running its read-only commands (assessment, the reboot
 * check) with bounded output and time. Binaries are resolved in the configured folders and run by
 * absolute path, without a shell: tests point the agent at a folder of scripted managers, never at
 * the machine's own. Output is read in the C locale, the one the parsers know.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { Apt } from './apt.js';
import { Dnf } from './dnf.js';
import type { Argv, CommandOutput, ManagerName, PackageManager } from './types.js';
import { Zypper } from './zypper.js';

export const DEFAULT_BIN_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'];
const MAX_OUTPUT = 16 * 1024 * 1024;

export interface ManagerConfig {
  /** 'auto' looks for apt-get, dnf, yum, zypper in that order. */
  manager: ManagerName | 'auto';
  binDirs: string[];
  /** apt's reboot flag file. */
  rebootFlag?: string;
}

export const commandEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  LC_ALL: 'C',
  LANG: 'C',
  DEBIAN_FRONTEND: 'noninteractive',
  ...(process.env.HOME ? { HOME: process.env.HOME } : {}),
});

/** The absolute path of `name` in the first folder that has it executable, or null. */
export function resolveBinary(name: string, dirs: readonly string[]): string | null {
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

const BINARY: Record<ManagerName, string> = { apt: 'apt-get', dnf: 'dnf', yum: 'yum', zypper: 'zypper' };

export function managerOf(name: ManagerName, cfg: ManagerConfig): PackageManager {
  if (name === 'apt') return new Apt(cfg.rebootFlag);
  if (name === 'zypper') return new Zypper();
  return new Dnf(name);
}

/** The package manager of this machine, or null when it has none the agent knows (Windows, Alpine …). */
export function detectManager(cfg: ManagerConfig): PackageManager | null {
  const names: ManagerName[] = cfg.manager === 'auto' ? ['apt', 'dnf', 'yum', 'zypper'] : [cfg.manager];
  for (const n of names) if (resolveBinary(BINARY[n], cfg.binDirs)) return managerOf(n, cfg);
  return null;
}

/** Runs argv (binary resolved in `dirs`); a missing binary is exit code 127, as a shell would say. */
export function runArgv(argv: Argv, dirs: readonly string[], timeoutMs: number): Promise<CommandOutput> {
  const bin = resolveBinary(argv[0]!, dirs);
  if (!bin) return Promise.resolve({ stdout: `${argv[0]}: command not found in ${dirs.join(':')}`, exitCode: 127 });
  return new Promise((resolve) => {
    execFile(bin, argv.slice(1), { env: commandEnv(), timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean }) | null;
      const exitCode = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      const note = e?.killed ? `\n(killed after ${Math.round(timeoutMs / 1000)} s)` : '';
      resolve({ stdout: `${stdout}${stderr ? `\n${stderr}` : ''}${note}`, exitCode });
    });
  });
}

/** A shell command line for argv, each word single-quoted (for the journaled runner, which uses sh). */
export function shellLine(bin: string, args: readonly string[]): string {
  return [bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
}
