/**
 * The small interface every package manager adapter implements (apt, dnf/yum, zypper). Adapters name
 * the commands and parse what they print; running them (journaled, at most once) is the agent's job,
 * so parsing stays pure and is tested on recorded output. Windows Update is out of reach (docs/agent.md).
 */
import type { PatchClassification, PatchRebootBehavior } from '../../protocol/agent-wire.js';

export type ManagerName = 'apt' | 'dnf' | 'yum' | 'zypper';

/** One update the package manager offers. */
export interface AvailablePatch {
  name: string;
  /** The version the update brings (as the manager spells it, epoch included when it shows one). */
  version: string;
  /** The installed version, when the manager says (absent: a new package pulled in by an upgrade). */
  fromVersion?: string;
  arch?: string;
  classifications: PatchClassification[];
  rebootBehavior: PatchRebootBehavior;
}

/** What one command printed and how it ended. */
export interface CommandOutput {
  stdout: string;
  exitCode: number | null;
}

/** A command as argv (no shell): the binary is resolved in the adapter's bin folder. */
export type Argv = readonly string[];

/** What one install command did, by package name → version it set up. */
export interface InstallOutcome {
  /** Packages the command upgraded or installed (dependencies too), name → version. */
  installed: Map<string, string>;
  /** Names the command says failed, with the manager's line. */
  failed: Map<string, string>;
  /** A failure not tied to one package (lock held, repository unreachable), or null. */
  error: string | null;
}

export interface PackageManager {
  readonly name: ManagerName;
  /** The commands of one assessment, run in order (their outputs go to `parseAssessment` in the same order). */
  assessCommands(): Argv[];
  /** Some assessments need a second round (zypper: the packages of the needed patches); null when done. */
  followUpCommands?(first: CommandOutput[]): Argv[] | null;
  /** The patches on offer; throws AssessmentError when the output says the assessment failed. */
  parseAssessment(outputs: CommandOutput[]): AvailablePatch[];
  /** Installs (upgrades) one package to one version, non-interactively. */
  installCommand(p: AvailablePatch): Argv;
  parseInstall(out: CommandOutput): InstallOutcome;
  /** A command whose exit code says whether a reboot is pending, or a file whose existence says it. */
  rebootCheck(): { argv: Argv; requiredWhen: (o: CommandOutput) => boolean } | { file: string };
}

export class AssessmentError extends Error {}

/** Packages whose update only takes effect after a reboot (the kernel, its modules, the C library, init). */
const REBOOT_NAMES = /^(linux-image|linux-modules|linux-generic|linux-signed|kernel|kernel-core|kernel-modules|kernel-default|glibc|libc6|systemd|dbus)([-_.].*)?$/;

/** apt and dnf say nothing per package about reboots: the names that need one, else CanRequestReboot. */
export function rebootBehaviorByName(name: string): PatchRebootBehavior {
  return REBOOT_NAMES.test(name) ? 'AlwaysRequiresReboot' : 'CanRequestReboot';
}

/** Lines of text, without the trailing carriage returns some terminals leave. */
export const linesOf = (text: string): string[] => text.split('\n').map((l) => l.replace(/\r$/, ''));

/**
 * What a package name, version and architecture may be made of (Debian policy and RPM together): they come
 * from the package manager's output, which a repository writes. Anything else — a name starting with `-`,
 * which the manager would take for an option, spaces, `=`, quotes, control characters — is refused.
 */
const PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._@-]{0,127}$/;
/** apt's `name:arch` (`libc6:i386`, how apt names a package of a foreign architecture): apt-get installs `name:arch=version`. */
const APT_PACKAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9+._@-]{0,127}(?::[A-Za-z0-9_]{1,32})?$/;
const PACKAGE_VERSION = /^[A-Za-z0-9][A-Za-z0-9.+~:_^-]{0,95}$/;
const PACKAGE_ARCH = /^[A-Za-z0-9_]{1,32}$/;

/**
 * Why `p` cannot be handed to a package manager, or null when it can. `archQualified`: the manager takes
 * `name:arch` (apt; dnf and zypper would read the colon otherwise).
 */
export function invalidPackage(p: Pick<AvailablePatch, 'name' | 'version' | 'arch'>, archQualified = false): string | null {
  const shown = (s: string) => JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
  if (!(archQualified ? APT_PACKAGE_NAME : PACKAGE_NAME).test(p.name)) {
    return `refused: ${shown(p.name)} is not a package name (letters, digits and + . _ @ -, starting with a letter or digit${archQualified ? ', then :arch or not' : ''})`;
  }
  if (!PACKAGE_VERSION.test(p.version)) return `refused: ${shown(p.version)} is not a package version`;
  if (p.arch !== undefined && !PACKAGE_ARCH.test(p.arch)) return `refused: ${shown(p.arch)} is not a package architecture`;
  return null;
}
