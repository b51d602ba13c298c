/**
 * bench:patching — the agent's package manager parsers on large outputs, and the largest status report
 * patching can make against the channel's bounds (256 KiB, 4,096 JSON keys) and the server's validation.
 *
 * Parsers: the recorded Debian 12 `apt-get -s dist-upgrade` (129 `Inst` lines) repeated to 10,000
 * updates; dnf check-update and updateinfo of 10,000 packages; zypper list-updates of 10,000 elements.
 * Each is parsed 20 times after 3 warm-ups; the median is printed. Report: an install result of 256
 * patches (the per-report limit) with long names and failure messages, plus 64 extensions' status.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Apt } from '../src/agent/patching/apt.js';
import { Dnf } from '../src/agent/patching/dnf.js';
import { Zypper } from '../src/agent/patching/zypper.js';
import { MAX_JSON_KEYS, parseAgentJson, statusReportSchema } from '../src/api/agent/status-schema.js';
import { LIMITS, PATCH_LIMITS } from '../src/protocol/agent-wire.js';
import type { PatchOperationReport, StatusReport } from '../src/protocol/agent-wire.js';
import { statusReport } from '../test/helpers/agent-client.js';
import { machineLine } from './machine.js';

const N = 10_000;
const fixture = (p: string) => readFileSync(fileURLToPath(new URL(`../../test/fixtures/patching/${p}`, import.meta.url)), 'utf8');

function median(fn: () => number): { ms: number; n: number } {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  let n = 0;
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    n = fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[10]!, n };
}

function aptOutput(): string {
  const inst = fixture('apt/dist-upgrade-sim.txt').split('\n').filter((l) => l.startsWith('Inst '));
  const lines: string[] = [];
  for (let i = 0; lines.length < N; i++) for (const l of inst) if (lines.length < N) lines.push(l.replace(/^Inst (\S+)/, `Inst $1-${i}`));
  return lines.join('\n');
}

function dnfOutputs(): [string, string] {
  const check: string[] = [''];
  const info: string[] = [];
  for (let i = 0; i < N; i++) {
    check.push(`package-number-${i}.x86_64`.padEnd(43) + '1:3.0.7-18.el9_2'.padEnd(35) + 'baseos');
    if (i % 3 === 0) info.push(`RHSA-2023:${i} Important/Sec. package-number-${i}-1:3.0.7-18.el9_2.x86_64`);
  }
  return [check.join('\n'), info.join('\n')];
}

function zypperOutput(): string {
  const els: string[] = [];
  for (let i = 0; i < N; i++) els.push(`<update name="package-${i}" edition="1.1.1l-150500.17.19.1" arch="x86_64" kind="package" >\n  <summary>s</summary>\n</update>`);
  return `<?xml version='1.0'?>\n<stream>\n<update-status version="0.6">\n<update-list>\n${els.join('\n')}\n</update-list>\n</update-status>\n</stream>\n`;
}

function largestReport(): StatusReport {
  const long = (i: number) => `lib${'x'.repeat(100)}-${i}`.slice(0, PATCH_LIMITS.patchNameChars);
  const r: PatchOperationReport = {
    operationId: 'install:' + 'k'.repeat(190), kind: 'install', status: 'CompletedWithWarnings', packageManager: 'zypper',
    startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(),
    counts: { critical: 10, security: 200, other: 9790, installed: 128, failed: 128, pending: 0, notSelected: 9744, excluded: 0 },
    patches: Array.from({ length: PATCH_LIMITS.patchesPerReport }, (_, i) => ({
      name: long(i), version: '1.1.1l-150500.17.19.1.'.padEnd(PATCH_LIMITS.patchVersionChars, '9'), classifications: ['Security' as const], rebootBehavior: 'CanRequestReboot' as const,
      installationState: i % 2 ? ('Installed' as const) : ('Failed' as const), ...(i % 2 ? {} : { message: `dpkg: error processing package ${long(i)} (--configure): ${'y'.repeat(300)}` }),
    })),
    truncated: true, rebootPending: true, rebootStatus: 'Required', maintenanceWindowExceeded: true, error: null,
  };
  const ext = Object.fromEntries(Array.from({ length: LIMITS.extensionsPerGoalState }, (_, i) => [`Contoso.Ext${i}`, { version: '1.0.0', op: { id: `op-${i}`, outcome: 'succeeded' as const } }]));
  return { ...statusReport({ ext }), patchOperations: [r] };
}

console.log(`bench:patching · ${machineLine()}`);
const apt = aptOutput();
const a = median(() => new Apt().parseAssessment([{ stdout: '', exitCode: 0 }, { stdout: apt, exitCode: 0 }]).length);
console.log(`apt dist-upgrade simulation, ${a.n} updates (${(apt.length / 1024).toFixed(0)} KiB): ${a.ms.toFixed(1)} ms (${Math.round(a.n / a.ms * 1000).toLocaleString('en')} updates/s)`);
const [check, info] = dnfOutputs();
const d = median(() => new Dnf().parseAssessment([{ stdout: check, exitCode: 100 }, { stdout: info, exitCode: 0 }]).length);
console.log(`dnf check-update + updateinfo, ${d.n} updates: ${d.ms.toFixed(1)} ms (${Math.round(d.n / d.ms * 1000).toLocaleString('en')} updates/s)`);
const zx = zypperOutput();
const z = median(() => new Zypper().parseAssessment([{ stdout: zx, exitCode: 100 }, { stdout: '<stream></stream>', exitCode: 0 }]).length);
console.log(`zypper list-updates, ${z.n} updates: ${z.ms.toFixed(1)} ms (${Math.round(z.n / z.ms * 1000).toLocaleString('en')} updates/s)`);
const report = largestReport();
const text = JSON.stringify(report);
let tooDeep = false;
try {
  parseAgentJson(text);
} catch {
  tooDeep = true; // over a bound of the agent channel (depth, keys)
}
let keys = 0;
for (const c of text.matchAll(/":/g)) keys += c ? 1 : 0;
const v = median(() => (statusReportSchema.safeParse(parseAgentJson(text)).success ? 1 : 0));
const size = `${text.length.toLocaleString('en')} bytes of ${LIMITS.statusReportBytes.toLocaleString('en')}, ~${keys.toLocaleString('en')} keys of ${MAX_JSON_KEYS.toLocaleString('en')}`;
console.log(`largest patch report (256 patches, 64 extensions): ${size}${tooDeep ? ' (over the channel\'s bounds!)' : ''}; parse + validate ${v.ms.toFixed(2)} ms, valid: ${v.n === 1}`);
