/**
 * apt (Debian, Ubuntu). Assessment: `apt-get update`, then `apt-get -s dist-upgrade`, whose `Inst`
 * lines name every package the upgrade would set up, with the installed version in brackets and the
 * archives it comes from: an archive of the security pocket (`…-security`) makes it a Security update
 * (as Azure's Linux patch extension classifies; apt knows no "critical"). Installation: one
 * `apt-get install name=version` per package; dpkg's `Setting up name (version)` lines say what it did.
 * Reboot pending: /var/run/reboot-required (written by update-notifier's hooks).
 */
import type { PatchClassification } from '../../protocol/agent-wire.js';
import { AssessmentError, linesOf, rebootBehaviorByName } from './types.js';
import type { Argv, AvailablePatch, CommandOutput, InstallOutcome, PackageManager } from './types.js';

const INST = /^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+) (.*?)(?: \[([^\]]+)\])?\)/;
/** dpkg names a Multi-Arch package `name:arch` (`libc6:amd64`, its own architecture too); apt names it `name` or `name:arch`. */
const SETTING_UP = /^Setting up ([^\s:]+)(:\S+)? \(([^)]+)\)/;

/** The first `E:` line of apt's output (its errors), or the last line when there is none. */
function errorLine(text: string): string {
  const lines = linesOf(text).filter((l) => l.trim() !== '');
  return (lines.find((l) => l.startsWith('E: ')) ?? lines.at(-1) ?? 'no output').slice(0, 500);
}

export function parseAptSimulation(text: string): AvailablePatch[] {
  const out: AvailablePatch[] = [];
  for (const line of linesOf(text)) {
    const m = INST.exec(line);
    if (!m) continue;
    const [, name, from, version, sources, arch] = m as unknown as [string, string, string | undefined, string, string, string | undefined];
    const security = sources.split(', ').some((s) => /-security\b|Security:/i.test(s));
    const classifications: PatchClassification[] = [security ? 'Security' : 'Other'];
    out.push({
      name, version, ...(from ? { fromVersion: from } : {}), ...(arch ? { arch } : {}),
      classifications, rebootBehavior: rebootBehaviorByName(name),
    });
  }
  return out;
}

export function parseAptInstall(out: CommandOutput): InstallOutcome {
  const installed = new Map<string, string>();
  const failed = new Map<string, string>();
  for (const line of linesOf(out.stdout)) {
    let m = SETTING_UP.exec(line);
    // Under both names: the assessment's own (`libc6` for the machine's architecture, `libc6:i386` for another).
    if (m) for (const key of [m[1]!, ...(m[2] ? [m[1]! + m[2]] : [])]) installed.set(key, m[3]!);
    m = /^E: Unable to locate package (\S+)/.exec(line) ?? /^E: Version '[^']*' for '([^']+)' was not found/.exec(line);
    if (m) failed.set(m[1]!.split('=')[0]!, line);
    m = /^dpkg: error processing package ([^\s:]+)(:\S+)? /.exec(line);
    if (m) {
      for (const key of [m[1]!, ...(m[2] ? [m[1]! + m[2]] : [])]) {
        failed.set(key, line);
        installed.delete(key);
      }
    }
    m = /^(\S+) is already the newest version \(([^)]+)\)/.exec(line);
    if (m) installed.set(m[1]!, m[2]!);
  }
  const error = out.exitCode === 0 ? null : errorLine(out.stdout);
  return { installed, failed, error: failed.size > 0 ? null : error };
}

export class Apt implements PackageManager {
  readonly name = 'apt' as const;

  constructor(private readonly rebootFlag = '/var/run/reboot-required') {}

  assessCommands(): Argv[] {
    return [['apt-get', '-q', 'update'], ['apt-get', '-s', '-q', '-o', 'Debug::NoLocking=true', 'dist-upgrade']];
  }

  parseAssessment(outputs: CommandOutput[]): AvailablePatch[] {
    const [update, sim] = outputs;
    if (!update || !sim) throw new AssessmentError('apt: the assessment commands did not all run');
    if (update.exitCode !== 0) throw new AssessmentError(`apt-get update failed (exit ${update.exitCode ?? 'none'}): ${errorLine(update.stdout)}`);
    if (sim.exitCode !== 0) throw new AssessmentError(`apt-get -s dist-upgrade failed (exit ${sim.exitCode ?? 'none'}): ${errorLine(sim.stdout)}`);
    return parseAptSimulation(sim.stdout);
  }

  installCommand(p: AvailablePatch): Argv {
    return ['apt-get', 'install', '-y', '-q', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', '--', `${p.name}=${p.version}`];
  }

  parseInstall(out: CommandOutput): InstallOutcome {
    return parseAptInstall(out);
  }

  rebootCheck(): { file: string } {
    return { file: this.rebootFlag };
  }
}
