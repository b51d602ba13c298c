/**
 * dnf and yum (Fedora, RHEL and its rebuilds, Amazon Linux, older CentOS). Assessment:
 * `check-update` (exit 100: updates listed as `name.arch  version  repo`; 0: none; 1: error) and
 * `updateinfo list updates` (advisories as `ID  Severity/Sec.  nevra`). A package named by a security
 * advisory is Security, Critical when the advisory's severity is Critical; every other is Other.
 * Installation: one `upgrade name-version.arch` per package; the closing `Upgraded:` / `Installed:`
 * sections say what it did. Reboot pending: `needs-restarting -r` exits 1.
 */
import type { PatchClassification } from '../../protocol/agent-wire.js';
import { AssessmentError, linesOf, rebootBehaviorByName } from './types.js';
import type { Argv, AvailablePatch, CommandOutput, InstallOutcome, ManagerName, PackageManager } from './types.js';

/** name, version (epoch:version-release) and arch of a NEVRA such as `openssl-libs-1:3.0.7-18.el9_2.x86_64`. */
export function parseNevra(nevra: string): { name: string; version: string; arch: string } | null {
  const dot = nevra.lastIndexOf('.');
  if (dot <= 0) return null;
  const arch = nevra.slice(dot + 1);
  const nvr = nevra.slice(0, dot);
  const r = nvr.lastIndexOf('-');
  const v = r > 0 ? nvr.lastIndexOf('-', r - 1) : -1;
  if (v <= 0) return null;
  return { name: nvr.slice(0, v), version: nvr.slice(v + 1), arch };
}

const NOISE = /^(Last metadata expiration check|Loaded plugins|Loading mirror speeds|Security: |Updating Subscription|This system is|Repository .* is listed more than once| \* )/;

export function parseCheckUpdate(text: string): Array<{ name: string; arch: string; version: string; repo: string }> {
  const out: Array<{ name: string; arch: string; version: string; repo: string }> = [];
  let carry = '';
  for (const raw of linesOf(text)) {
    if (/^Obsoleting Packages/.test(raw)) break;
    if (raw.trim() === '' || NOISE.test(raw)) continue;
    const line = carry ? `${carry} ${raw.trim()}` : raw.trim();
    const cols = line.split(/\s+/);
    if (cols.length === 1) {
      // A name too long for its column: dnf wraps the rest onto the next line.
      carry = cols[0]!;
      continue;
    }
    carry = '';
    if (cols.length !== 3) continue;
    const [na, version, repo] = cols as [string, string, string];
    const dot = na.lastIndexOf('.');
    if (dot <= 0 || !/^[0-9]/.test(version.replace(/^\d+:/, ''))) continue;
    out.push({ name: na.slice(0, dot), arch: na.slice(dot + 1), version, repo });
  }
  return out;
}

const RANK: Record<PatchClassification, number> = { Other: 0, Security: 1, Critical: 2 };

/** name.arch → the highest classification any advisory gives it. */
export function parseUpdateInfo(text: string): Map<string, PatchClassification> {
  const out = new Map<string, PatchClassification>();
  for (const line of linesOf(text)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length !== 3 || !/^[A-Z][A-Za-z0-9]*-/.test(cols[0]!)) continue;
    const [, type, nevra] = cols as [string, string, string];
    const p = parseNevra(nevra);
    if (!p) continue;
    const security = /\/Sec\.$|^security$/i.test(type);
    const c: PatchClassification = security ? (/^Critical\//i.test(type) ? 'Critical' : 'Security') : 'Other';
    const key = `${p.name}.${p.arch}`;
    const had = out.get(key);
    if (!had || RANK[c] > RANK[had]) out.set(key, c);
  }
  return out;
}

function errorLine(text: string): string {
  const lines = linesOf(text).filter((l) => l.trim() !== '');
  return (lines.find((l) => /^Error:/.test(l)) ?? lines.at(-1) ?? 'no output').slice(0, 500);
}

export function parseDnfInstall(out: CommandOutput): InstallOutcome {
  const installed = new Map<string, string>();
  const failed = new Map<string, string>();
  let section = false;
  for (const line of linesOf(out.stdout)) {
    if (/^(Upgraded|Installed|Reinstalled|Downgraded):\s*$/.test(line)) {
      section = true;
      continue;
    }
    if (section && /^\s+\S/.test(line)) {
      for (const tok of line.trim().split(/\s+/)) {
        const p = parseNevra(tok);
        if (p) installed.set(p.name, p.version);
      }
      continue;
    }
    section = false;
    let m = /^(?:Error: Unable to find a match|No match for argument): (\S+)/.exec(line);
    if (m) {
      const p = parseNevra(m[1]!);
      failed.set(p?.name ?? m[1]!, line);
    }
    m = /^Package (\S+) is already installed\.?$/.exec(line);
    if (m) {
      const p = parseNevra(m[1]!);
      if (p) installed.set(p.name, p.version);
    }
  }
  const error = out.exitCode === 0 ? null : errorLine(out.stdout);
  return { installed, failed, error: failed.size > 0 ? null : error };
}

export class Dnf implements PackageManager {
  constructor(readonly name: Extract<ManagerName, 'dnf' | 'yum'> = 'dnf') {}

  assessCommands(): Argv[] {
    return [[this.name, '-q', 'check-update'], [this.name, '-q', 'updateinfo', 'list', 'updates']];
  }

  parseAssessment(outputs: CommandOutput[]): AvailablePatch[] {
    const [check, info] = outputs;
    if (!check || !info) throw new AssessmentError(`${this.name}: the assessment commands did not all run`);
    if (check.exitCode !== 0 && check.exitCode !== 100) throw new AssessmentError(`${this.name} check-update failed (exit ${check.exitCode ?? 'none'}): ${errorLine(check.stdout)}`);
    if (check.exitCode === 0) return [];
    // An updateinfo that fails (no advisories in the repositories) leaves every update Other.
    const classes = info.exitCode === 0 ? parseUpdateInfo(info.stdout) : new Map<string, PatchClassification>();
    return parseCheckUpdate(check.stdout).map((u) => ({
      name: u.name, version: u.version, arch: u.arch,
      classifications: [classes.get(`${u.name}.${u.arch}`) ?? 'Other'],
      rebootBehavior: rebootBehaviorByName(u.name),
    }));
  }

  installCommand(p: AvailablePatch): Argv {
    return [this.name, '-y', 'upgrade', '--', `${p.name}-${p.version}${p.arch ? `.${p.arch}` : ''}`];
  }

  parseInstall(out: CommandOutput): InstallOutcome {
    return parseDnfInstall(out);
  }

  rebootCheck() {
    return { argv: ['needs-restarting', '-r'], requiredWhen: (o: CommandOutput) => o.exitCode === 1 };
  }
}
