/**
 * The package manager adapters' parsing, on recorded and transcribed output of apt, dnf, yum and zypper
 * (test/fixtures/patching/README.md says which is which): assessment and installation, errors included.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { Apt } from '../src/agent/patching/apt.js';
import { Dnf, parseNevra } from '../src/agent/patching/dnf.js';
import { fnmatch, maskMatches, selectionOf } from '../src/agent/patching/selection.js';
import { AssessmentError, invalidPackage } from '../src/agent/patching/types.js';
import type { AvailablePatch, CommandOutput } from '../src/agent/patching/types.js';
import { Zypper } from '../src/agent/patching/zypper.js';
import { selectPatches } from '../src/model/patches.js';
import { ROOT } from './helpers/cli.js';

const fx = (p: string) => readFileSync(join(ROOT, 'test/fixtures/patching', p), 'utf8');
const out = (p: string, exitCode: number | null = 0): CommandOutput => ({ stdout: fx(p), exitCode });
const byName = (ps: AvailablePatch[]) => new Map(ps.map((p) => [p.name, p]));

test('apt: the recorded Debian 12 simulation lists its 129 upgrades, security-pocket ones as Security', () => {
  const ps = new Apt().parseAssessment([out('apt/update-ok.txt'), out('apt/dist-upgrade-sim.txt')]);
  assert.equal(ps.length, 129);
  const m = byName(ps);
  assert.deepEqual(m.get('openssl'), {
    name: 'openssl', version: '3.0.22-1~deb12u2', fromVersion: '3.0.19-1~deb12u2', arch: 'amd64', classifications: ['Security'], rebootBehavior: 'CanRequestReboot',
  });
  assert.deepEqual(m.get('base-files')?.classifications, ['Other']);
  assert.equal(m.get('tzdata')?.arch, 'all');
  // An archive of both pockets: the security one decides.
  assert.deepEqual(m.get('libgcrypt20')?.classifications, ['Security']);
  assert.ok(ps.filter((p) => p.classifications[0] === 'Security').length > 20);
});

test('apt: new kernel packages (no installed version) are listed and need a reboot; no updates is an empty list', () => {
  const ps = new Apt().parseAssessment([out('apt/update-ok.txt'), out('apt/dist-upgrade-sim-ubuntu-kernel.txt')]);
  assert.equal(ps.length, 10);
  const img = byName(ps).get('linux-image-5.15.0-91-generic')!;
  assert.equal(img.fromVersion, undefined);
  assert.equal(img.version, '5.15.0-91.101');
  assert.equal(img.rebootBehavior, 'AlwaysRequiresReboot');
  assert.deepEqual(byName(ps).get('tzdata')?.classifications, ['Other']);
  assert.deepEqual(new Apt().parseAssessment([out('apt/update-ok.txt'), out('apt/dist-upgrade-sim-none.txt')]), []);
});

test('apt: a failed apt-get update fails the assessment with its E: line', () => {
  assert.throws(() => new Apt().parseAssessment([out('apt/update-error.txt', 100), out('apt/dist-upgrade-sim.txt')]),
    (e: Error) => e instanceof AssessmentError && /no longer signed/.test(e.message));
});

test('apt: installation output says what dpkg set up, and which package failed and why', () => {
  const ok = new Apt().parseInstall(out('apt/install-ok.txt'));
  // dpkg's libssl3:amd64 is kept under both names: the assessment names the machine's own architecture's package libssl3.
  assert.deepEqual([...ok.installed], [['libssl3', '3.0.22-1~deb12u2'], ['libssl3:amd64', '3.0.22-1~deb12u2'], ['libssl-dev', '3.0.22-1~deb12u2'],
    ['libssl-dev:amd64', '3.0.22-1~deb12u2'], ['openssl', '3.0.22-1~deb12u2']]);
  assert.equal(ok.error, null);
  const dpkg = new Apt().parseInstall(out('apt/install-dpkg-error.txt', 100));
  assert.equal(dpkg.installed.has('postgresql-15'), false, 'set up but its configure failed: not installed');
  assert.match(dpkg.failed.get('postgresql-15')!, /error processing package postgresql-15/);
  const unknown = new Apt().parseInstall(out('apt/install-sim-unknown.txt', 100));
  assert.match(unknown.failed.get('nosuchpkg-phasewise')!, /Unable to locate package/);
  const version = new Apt().parseInstall(out('apt/install-sim-badversion.txt', 100));
  assert.match(version.failed.get('openssl')!, /Version '9\.9\.9-1' for 'openssl' was not found/);
  const lock = new Apt().parseInstall(out('apt/install-lock.txt', 100));
  assert.equal(lock.failed.size, 0);
  assert.match(lock.error!, /Could not get lock/);
});

test('apt: name:arch (a foreign architecture, as apt and dpkg print it) is parsed, installable with apt only, set up under both names, and matched by :arch masks', () => {
  const sim = [
    'Inst libc6:i386 [2.36-9+deb12u3] (2.36-9+deb12u4 Debian-Security:12/oldstable-security [i386])',
    'Inst libc6 [2.36-9+deb12u3] (2.36-9+deb12u4 Debian-Security:12/oldstable-security [amd64])',
  ].join('\n');
  const [foreign, own] = new Apt().parseAssessment([{ stdout: '', exitCode: 0 }, { stdout: sim, exitCode: 0 }]);
  assert.deepEqual([foreign!.name, foreign!.arch, own!.name, own!.arch], ['libc6:i386', 'i386', 'libc6', 'amd64']);
  assert.equal(invalidPackage(foreign!, true), null, 'apt takes name:arch');
  assert.match(invalidPackage(foreign!) ?? '', /is not a package name/, 'dnf and zypper do not');
  for (const bad of ['libc6:', 'libc6:i3 86', 'libc6:i386:x', ':i386', 'libc6:-o']) assert.match(invalidPackage({ name: bad, version: '1' }, true) ?? '', /is not a package name/, bad);
  assert.deepEqual(new Apt().installCommand(foreign!).slice(-2), ['--', 'libc6:i386=2.36-9+deb12u4']);
  const done = new Apt().parseInstall({ stdout: 'Setting up libc6:amd64 (2.36-9+deb12u4) ...\nSetting up libc6:i386 (2.36-9+deb12u4) ...\n', exitCode: 0 });
  assert.equal(done.installed.get('libc6'), '2.36-9+deb12u4');
  assert.equal(done.installed.get('libc6:i386'), '2.36-9+deb12u4');
  const failed = new Apt().parseInstall({ stdout: 'Setting up libc6:i386 (2.36-9+deb12u4) ...\ndpkg: error processing package libc6:i386 (--configure):\n', exitCode: 100 });
  assert.equal(failed.installed.has('libc6:i386'), false);
  assert.match(failed.failed.get('libc6:i386')!, /error processing package libc6:i386/);
  const m = (mask: string) => [maskMatches(mask, foreign!), maskMatches(mask, own!)];
  assert.deepEqual(m('libc6:i386'), [true, false]);
  assert.deepEqual(m('libc6:amd64'), [false, true], 'the machine\'s own architecture, as apt list --upgradable names it');
  assert.deepEqual(m('libc6'), [true, true], 'a name without :arch, whatever the architecture');
  assert.deepEqual(m('*:i386'), [true, false]);
  assert.deepEqual(m('libc6:*=2.36-9+deb12u4'), [true, true]);
  assert.deepEqual(m('libc6:i386=2.35*'), [false, false]);
});

test('dnf: check-update with advisories: Critical, Security and Other; a wrapped name; the obsoletes tail ignored', () => {
  const ps = new Dnf('dnf').parseAssessment([out('dnf/check-update.txt', 100), out('dnf/updateinfo.txt')]);
  const m = byName(ps);
  assert.equal(ps.length, 11);
  assert.deepEqual(m.get('openssl-libs'), { name: 'openssl-libs', version: '1:3.0.7-18.el9_2', arch: 'x86_64', classifications: ['Critical'], rebootBehavior: 'CanRequestReboot' });
  assert.deepEqual(m.get('kernel-core')?.classifications, ['Security']);
  assert.equal(m.get('kernel')?.rebootBehavior, 'AlwaysRequiresReboot');
  assert.deepEqual(m.get('python3-unbound')?.classifications, ['Other']);
  assert.equal(m.get('selinux-policy-targeted-with-a-very-long-package-name')?.version, '38.1.11-2.el9_2.3');
  assert.equal(m.has('grub2-tools'), false);
});

test('dnf: exit 0 is no updates; exit 1 fails the assessment with its Error: line; a failing updateinfo leaves Other', () => {
  assert.deepEqual(new Dnf('dnf').parseAssessment([{ stdout: '', exitCode: 0 }, { stdout: '', exitCode: 0 }]), []);
  assert.throws(() => new Dnf('dnf').parseAssessment([out('dnf/check-update-error.txt', 1), { stdout: '', exitCode: 1 }]),
    (e: Error) => e instanceof AssessmentError && /Failed to download metadata for repo 'appstream'/.test(e.message));
  const ps = new Dnf('dnf').parseAssessment([out('dnf/check-update.txt', 100), { stdout: 'Error: no updateinfo', exitCode: 1 }]);
  assert.ok(ps.every((p) => p.classifications[0] === 'Other'));
});

test('yum (CentOS 7): plugin noise skipped, epochs kept, a Critical kernel advisory', () => {
  const ps = new Dnf('yum').parseAssessment([out('yum/check-update.txt', 100), out('yum/updateinfo.txt')]);
  const m = byName(ps);
  assert.deepEqual([...m.keys()], ['bind-export-libs', 'kernel', 'openssh', 'openssh-clients', 'openssh-server', 'tzdata']);
  assert.equal(m.get('bind-export-libs')?.version, '32:9.11.4-26.P2.el7_9.15');
  assert.deepEqual(m.get('kernel')?.classifications, ['Critical']);
  assert.deepEqual(m.get('tzdata')?.classifications, ['Other']);
  assert.deepEqual(new Dnf('yum').installCommand(m.get('kernel')!), ['yum', '-y', 'upgrade', '--', 'kernel-3.10.0-1160.99.1.el7.x86_64']);
});

test('dnf: installation: the Upgraded section, no match, already installed, a transaction test error', () => {
  const ok = new Dnf().parseInstall(out('dnf/install-ok.txt'));
  assert.deepEqual([...ok.installed], [['openssl', '1:3.0.7-18.el9_2'], ['openssl-libs', '1:3.0.7-18.el9_2']]);
  const none = new Dnf().parseInstall(out('dnf/install-nomatch.txt', 1));
  assert.match(none.failed.get('curl')!, /No match for argument/);
  const already = new Dnf().parseInstall(out('dnf/install-already.txt'));
  assert.equal(already.installed.get('tzdata'), '2023c-1.el9');
  const boot = new Dnf().parseInstall(out('dnf/install-scriptlet-error.txt', 1));
  assert.equal(boot.installed.size, 0);
  assert.match(boot.error!, /^Error: Transaction test error/);
});

test('parseNevra splits name, epoch:version-release and arch', () => {
  assert.deepEqual(parseNevra('openssl-libs-1:3.0.7-18.el9_2.x86_64'), { name: 'openssl-libs', version: '1:3.0.7-18.el9_2', arch: 'x86_64' });
  assert.equal(parseNevra('nodash.x86_64'), null);
});

test('zypper: updates classified by the needed patches that name them; applied patches ignored', () => {
  const z = new Zypper();
  const first = [out('zypper/list-updates.xml', 100), out('zypper/list-patches.xml', 100)];
  const follow = z.followUpCommands(first)!;
  assert.deepEqual(follow, [['zypper', '--non-interactive', 'info', '-t', 'patch', 'SUSE-SLE-Module-Basesystem-15-SP5-2023-3736', 'SUSE-SLE-Module-Basesystem-15-SP5-2023-3644']]);
  const ps = z.parseAssessment([...first, out('zypper/info-patch.txt')]);
  const m = byName(ps);
  assert.equal(ps.length, 5);
  assert.deepEqual(m.get('kernel-default'), { name: 'kernel-default', version: '5.14.21-150500.55.31.1', arch: 'x86_64', classifications: ['Security'], rebootBehavior: 'CanRequestReboot' });
  assert.deepEqual(m.get('libopenssl1_1')?.classifications, ['Critical']);
  assert.deepEqual(m.get('openssl-1_1')?.classifications, ['Critical']);
  assert.deepEqual(m.get('timezone')?.classifications, ['Other']);
  assert.deepEqual(m.get('vim')?.classifications, ['Other'], 'its security patch is already applied');
});

test('zypper: a repository error fails the assessment with zypper\'s own message', () => {
  assert.throws(() => new Zypper().parseAssessment([out('zypper/list-updates-error.xml', 4), out('zypper/list-patches.xml', 100)]),
    (e: Error) => e instanceof AssessmentError && /Problem retrieving files from 'Basesystem_Module/.test(e.message));
});

test('zypper: installation: done lines, an rpm error, a missing version, the lock held', () => {
  const ok = new Zypper().parseInstall(out('zypper/install-ok.txt'));
  assert.deepEqual([...ok.installed], [['libopenssl1_1', '1.1.1l-150500.17.19.1'], ['openssl-1_1', '1.1.1l-150500.17.19.1']]);
  const rpm = new Zypper().parseInstall(out('zypper/install-rpm-error.txt', 8));
  assert.match(rpm.failed.get('kernel-default')!, /\[error\]/);
  const nf = new Zypper().parseInstall(out('zypper/install-notfound.txt', 104));
  assert.match(nf.failed.get('vim')!, /No provider of 'vim=9\.9\.9-1\.1' found/);
  const lock = new Zypper().parseInstall(out('zypper/install-locked.txt', 7));
  assert.match(lock.error!, /System management is locked/);
  assert.equal(new Zypper().parseInstall({ stdout: '', exitCode: 102 }).error, null, '102 (reboot needed) is not an error');
});

test('masks are fnmatch-style: *, ?, classes, negated classes, name=version; exclusion wins', () => {
  assert.ok(fnmatch('linux-image-*', 'linux-image-5.15.0-91-generic'));
  assert.ok(fnmatch('open?sh', 'openssh'));
  assert.ok(fnmatch('lib[cs]*', 'libssl3'));
  assert.ok(!fnmatch('lib[!s]*', 'libssl3'));
  assert.ok(fnmatch('OpenSSL', 'openssl'), 'case-insensitive');
  assert.ok(!fnmatch('ssl', 'openssl'), 'whole names only');
  const p: AvailablePatch = { name: 'openssl', version: '3.0.22-1', classifications: ['Security'], rebootBehavior: 'CanRequestReboot' };
  const rules = { classificationsToInclude: ['Critical' as const], packageNameMasksToInclude: [] as string[], packageNameMasksToExclude: [] as string[] };
  assert.equal(selectionOf(p, rules), 'NotSelected');
  assert.equal(selectionOf(p, { ...rules, classificationsToInclude: ['Security'] }), 'Selected');
  assert.equal(selectionOf(p, { ...rules, packageNameMasksToInclude: ['open*=3.0.*'] }), 'Selected', 'an include mask selects whatever the classification');
  assert.equal(selectionOf(p, { ...rules, packageNameMasksToInclude: ['open*=4.*'] }), 'NotSelected');
  assert.equal(selectionOf(p, { ...rules, classificationsToInclude: ['Security'], packageNameMasksToExclude: ['*ssl*'] }), 'Excluded');
});

test('a mask without wildcards matches exactly its own name (property)', () => {
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9][a-z0-9.+-]{0,20}$/), fc.stringMatching(/^[a-z0-9][a-z0-9.+-]{0,20}$/), (a, b) => {
    assert.equal(fnmatch(a, b), a === b);
  }));
});

test('the agent selects exactly what the control plane\'s selectPatches selects (property, `*` masks)', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
  const mask = fc.oneof(name, name.map((n) => `${n.slice(0, 2)}*`), fc.constant('*'), name.map((n) => `*${n.slice(-2)}`));
  const cls = fc.constantFrom<'Critical' | 'Security' | 'Other'>('Critical', 'Security', 'Other');
  fc.assert(fc.property(
    // A machine lists each package once: the generator keeps names unique (two packages named alike would
    // share one patch id, and the verdicts below are keyed by it).
    fc.uniqueArray(fc.record({ name, c: cls }), { selector: (p) => p.name, maxLength: 12 }), fc.subarray(['Critical', 'Security', 'Other'] as const),
    fc.array(mask, { maxLength: 3 }), fc.array(mask, { maxLength: 3 }),
    (pkgs, classes, include, exclude) => {
      const available = pkgs.map((p) => ({ patchId: p.name, name: p.name, version: '1', classifications: [p.c], rebootBehavior: 'CanRequestReboot' as const, publishedDate: '' }));
      const model = selectPatches('linux', available, { key: 'k', maximumDurationMs: 1, rebootSetting: 'Never', classifications: [...classes], include, exclude });
      const verdicts = new Map<string, string>();
      for (const p of model.selected) verdicts.set(p.patchId, 'Selected');
      for (const p of model.excluded) verdicts.set(p.patchId, 'Excluded');
      for (const p of model.notSelected) verdicts.set(p.patchId, 'NotSelected');
      for (const p of pkgs) {
        const agent = selectionOf({ name: p.name, version: '1', classifications: [p.c], rebootBehavior: 'CanRequestReboot' }, { classificationsToInclude: classes, packageNameMasksToInclude: include, packageNameMasksToExclude: exclude });
        assert.equal(agent, verdicts.get(p.name), `${p.name} (${p.c}) with include ${JSON.stringify(include)} exclude ${JSON.stringify(exclude)} classes ${JSON.stringify(classes)}`);
      }
    },
  ));
});
