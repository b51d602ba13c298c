/**
 * zypper (SUSE, openSUSE). Assessment: `--xmlout list-updates` (packages: name, edition, arch) and
 * `--xmlout list-patches` (patches: category security/recommended/optional…, severity, restart), then
 * `info -t patch <needed security patches>` whose `Conflicts` lines (`pkg.arch < version`) name the
 * packages each patch fixes: those are Security (Critical when the patch's severity is critical), the
 * rest Other; a package of a patch that asks for a restart CanRequestReboot. Installation: one
 * `install name=version` per package; `(n/m) Installing: name-version.arch ...[done]` says what it did.
 * Exit codes 100–103 are information, not errors. Reboot pending: `needs-rebooting` exits 102.
 */
import type { PatchClassification } from '../../protocol/agent-wire.js';
import { AssessmentError, linesOf, rebootBehaviorByName } from './types.js';
import type { Argv, AvailablePatch, CommandOutput, InstallOutcome, PackageManager } from './types.js';

/** zypper's informational exit codes (updates needed, patches needed, reboot needed, restart zypper). */
const INFO_EXIT = new Set([0, 100, 101, 102, 103]);

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescape = (s: string) => s.replace(/&(amp|lt|gt|quot|apos);/g, (_, e: string) => ENTITIES[e]!);

/** The attributes of every `<update …>` element of zypper's XML output (its format is fixed and flat). */
export function updateElements(xml: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const m of xml.matchAll(/<update\s([^>]*?)\/?>/g)) {
    const attrs: Record<string, string> = {};
    for (const a of m[1]!.matchAll(/([a-z-]+)="([^"]*)"/g)) attrs[a[1]!] = unescape(a[2]!);
    out.push(attrs);
  }
  return out;
}

/** zypper's own error messages in its XML (`<message type="error">`). */
function xmlErrors(xml: string): string[] {
  return [...xml.matchAll(/<message type="error">([^<]*)<\/message>/g)].map((m) => unescape(m[1]!).trim());
}

export interface ZypperPatch { name: string; category: string; severity: string; restart: boolean; status: string }

export function parsePatches(xml: string): ZypperPatch[] {
  return updateElements(xml)
    .filter((a) => a.kind === 'patch')
    .map((a) => ({ name: a.name ?? '', category: a.category ?? '', severity: a.severity ?? '', restart: a.restart === 'true', status: a.status ?? 'needed' }));
}

/** Patch name → the package names its `Conflicts` list (the packages it updates), from `info -t patch`. */
export function parsePatchInfo(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let patch: string | null = null;
  let inConflicts = false;
  for (const line of linesOf(text)) {
    const head = /^Information for patch (\S+):/.exec(line);
    if (head) {
      patch = head[1]!;
      out.set(patch, []);
      inConflicts = false;
      continue;
    }
    if (/^Conflicts\s*:/.test(line)) {
      inConflicts = true;
      continue;
    }
    if (inConflicts && /^\s+\S/.test(line) && patch) {
      const m = /^\s+(\S+?)(?:\.(?:x86_64|i586|i686|noarch|aarch64|ppc64le|s390x|src))?\s+</.exec(line);
      if (m) out.get(patch)!.push(m[1]!);
      continue;
    }
    if (/^\S/.test(line)) inConflicts = false;
  }
  return out;
}

function classOf(p: ZypperPatch): PatchClassification {
  if (p.category !== 'security') return 'Other';
  return p.severity === 'critical' ? 'Critical' : 'Security';
}

const RANK: Record<PatchClassification, number> = { Other: 0, Security: 1, Critical: 2 };

export function parseZypperInstall(out: CommandOutput): InstallOutcome {
  const installed = new Map<string, string>();
  const failed = new Map<string, string>();
  let error: string | null = null;
  for (const line of linesOf(out.stdout)) {
    const m = /^\(\d+\/\d+\) Installing: (\S+)-([^-\s]+-[^-\s]+)\.([a-z0-9_]+) \.+\[(done|error)\]/.exec(line);
    if (m) {
      if (m[4] === 'done') installed.set(m[1]!, m[2]!);
      else failed.set(m[1]!, line);
      continue;
    }
    const nf = /^(?:No provider of|Package) '([^'=]+)(?:=[^']*)?' (?:found|not found)/.exec(line);
    if (nf) failed.set(nf[1]!, line.trim());
    if (!error && /^(System management is locked|Problem retrieving|Error|Installation has completed with error)/.test(line.trim())) error = line.trim();
  }
  if (INFO_EXIT.has(out.exitCode ?? -1)) error = null;
  else error ??= `zypper exited with ${out.exitCode ?? 'no exit code'}`;
  return { installed, failed, error: failed.size > 0 ? null : error };
}

export class Zypper implements PackageManager {
  readonly name = 'zypper' as const;

  assessCommands(): Argv[] {
    return [['zypper', '--non-interactive', '--xmlout', 'list-updates'], ['zypper', '--non-interactive', '--xmlout', 'list-patches']];
  }

  /** The packages of needed security patches: one `info -t patch` with all of their names. */
  followUpCommands(first: CommandOutput[]): Argv[] | null {
    const needed = parsePatches(first[1]?.stdout ?? '').filter((p) => p.category === 'security' && p.status === 'needed').map((p) => p.name);
    return needed.length === 0 ? null : [['zypper', '--non-interactive', 'info', '-t', 'patch', ...needed.slice(0, 200)]];
  }

  parseAssessment(outputs: CommandOutput[]): AvailablePatch[] {
    const [updates, patches, info] = outputs;
    if (!updates || !patches) throw new AssessmentError('zypper: the assessment commands did not all run');
    for (const [what, o] of [['list-updates', updates], ['list-patches', patches]] as const) {
      if (!INFO_EXIT.has(o.exitCode ?? -1)) {
        const why = xmlErrors(o.stdout)[0] ?? linesOf(o.stdout).filter(Boolean).at(-1) ?? 'no output';
        throw new AssessmentError(`zypper ${what} failed (exit ${o.exitCode ?? 'none'}): ${why.slice(0, 500)}`);
      }
    }
    const byPatch = info ? parsePatchInfo(info.stdout) : new Map<string, string[]>();
    const classes = new Map<string, { c: PatchClassification; restart: boolean }>();
    for (const p of parsePatches(patches.stdout)) {
      if (p.status !== 'needed') continue;
      for (const pkg of byPatch.get(p.name) ?? []) {
        const had = classes.get(pkg);
        const c = classOf(p);
        classes.set(pkg, { c: had && RANK[had.c] > RANK[c] ? had.c : c, restart: (had?.restart ?? false) || p.restart });
      }
    }
    return updateElements(updates.stdout)
      .filter((a) => a.kind === 'package' && a.name && a.edition)
      .map((a) => {
        const k = classes.get(a.name!);
        return {
          name: a.name!, version: a.edition!, ...(a.arch ? { arch: a.arch } : {}),
          classifications: [k?.c ?? 'Other'],
          rebootBehavior: k?.restart ? 'CanRequestReboot' : rebootBehaviorByName(a.name!),
        } satisfies AvailablePatch;
      });
  }

  installCommand(p: AvailablePatch): Argv {
    return ['zypper', '--non-interactive', 'install', '--auto-agree-with-licenses', '--no-recommends', '--', `${p.name}=${p.version}`];
  }

  parseInstall(out: CommandOutput): InstallOutcome {
    return parseZypperInstall(out);
  }

  rebootCheck() {
    return { argv: ['zypper', 'needs-rebooting'], requiredWhen: (o: CommandOutput) => o.exitCode === 102 };
  }
}
