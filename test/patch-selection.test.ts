/**
 * Which patches an installation selects (src/model/patches.ts `selectPatches`), on random catalogues
 * and requests (fast-check): every patch lands in exactly one of selected, excluded and not selected;
 * an exclusion always wins; a selected patch has a requested classification or was named; masks match
 * with `*` wildcards, case-insensitively, and nothing else is a wildcard.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AvailablePatch, PatchClassification, PatchInstallRequest } from '../src/model/patches.js';
import { LINUX_CLASSIFICATIONS, matchesMask, selectPatches } from '../src/model/patches.js';

const names = ['openssl', 'libssl3', 'linux-image-azure', 'curl', 'systemd', 'python3.12', 'bash'];
const patch = fc.record({
  name: fc.constantFrom(...names),
  cls: fc.constantFrom(...LINUX_CLASSIFICATIONS),
  reboot: fc.constantFrom('NeverReboots' as const, 'AlwaysRequiresReboot' as const, 'CanRequestReboot' as const),
});
const mask = fc.oneof(fc.constantFrom(...names), fc.constantFrom('lib*', '*ssl*', 'linux-*', 'PYTHON3*', '*'));

test('R75: every available patch is selected, excluded or not selected — exactly one; exclusions win', () => {
  fc.assert(fc.property(
    fc.array(patch, { maxLength: 30 }), fc.subarray([...LINUX_CLASSIFICATIONS]), fc.array(mask, { maxLength: 3 }), fc.array(mask, { maxLength: 3 }),
    (ps, classes, include, exclude) => {
      const available: AvailablePatch[] = ps.map((p, i) => ({ patchId: `p${i}`, name: p.name, version: '1', classifications: [p.cls], rebootBehavior: p.reboot, publishedDate: '2026-01-01' }));
      const req: PatchInstallRequest = { key: 'k', maximumDurationMs: 3_600_000, rebootSetting: 'IfRequired', classifications: classes as PatchClassification[], include, exclude };
      const { selected, excluded, notSelected } = selectPatches('linux', available, req);
      const ids = [...selected, ...excluded, ...notSelected].map((p) => p.patchId).sort();
      assert.deepEqual(ids, available.map((p) => p.patchId).sort());
      for (const p of excluded) assert.ok(exclude.some((m) => matchesMask(p.name, m)));
      for (const p of selected) {
        assert.ok(!exclude.some((m) => matchesMask(p.name, m)), `${p.name} is excluded by a mask`);
        const named = include.some((m) => matchesMask(p.name, m));
        assert.ok(named || (include.length === 0 && (classes as string[]).includes(p.classifications[0]!)), `${p.name} was neither named nor of a requested classification`);
      }
    },
  ), { numRuns: 300 });
});

test('masks: * is the only wildcard, matching is whole-name and case-insensitive', () => {
  assert.ok(matchesMask('openssl', 'OpenSSL'));
  assert.ok(matchesMask('libssl3', '*ssl*'));
  assert.ok(!matchesMask('libssl3', 'ssl'));
  assert.ok(!matchesMask('python3x12', 'python3.12'), 'a dot is a dot');
  assert.ok(matchesMask('python3.12', 'python3.*'));
});
