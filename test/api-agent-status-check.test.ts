/**
 * The hand-written status-report check (src/api/agent/status-check.ts) against the zod schema it stands
 * in for: on random mutations of a full report (values of every type, strings and arrays at and past each
 * bound, missing and extra fields), the two accept and refuse the same reports. A report the check
 * refuses gets zod's message, so the same answers mean the same errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkStatusReport } from '../src/api/agent/agent-channel.js';
import { isStatusReport } from '../src/api/agent/status-check.js';
import { statusReportSchema } from '../src/api/agent/status-schema.js';

/** A report with every optional part present, so every field can be mutated. */
function fullReport(): Record<string, unknown> {
  const now = '2026-12-05T18:00:00.000Z';
  const msg = (message: string) => ({ lang: 'en-US', message });
  const names = ['Contoso.Monitor', 'Microsoft.ManagedServices.ApplicationHealthLinux'];
  return {
    version: '1.1', timestampUTC: now, goalStateId: 7,
    aggregateStatus: {
      guestAgentStatus: { version: '0.1.0', status: 'Ready', formattedMessage: msg('running') },
      handlerAggregateStatus: names.map((n) => ({
        handlerName: n, handlerVersion: '1.0.0.0', status: 'Ready', code: 0, formattedMessage: msg('enabled'),
        runtimeSettingsStatus: {
          sequenceNumber: 2,
          settingsStatus: {
            version: 1, timestampUTC: now,
            status: {
              name: n, operation: 'Enable', configurationAppliedTime: now, status: 'success', code: 0, formattedMessage: msg('ok'),
              substatus: [{ name: 'sub', status: 'success', code: 0, formattedMessage: msg('fine') }],
            },
          },
        },
      })),
      vmArtifactsAggregateStatus: { goalStateAggregateStatus: { inSvdSeqNo: 7, status: 'Success', code: 0, timestampUTC: now, formattedMessage: msg('done') } },
    },
    guestOSInfo: { computerName: 'host', osName: 'Ubuntu', osVersion: '24.04', version: '0.1.0' },
    agentState: Object.fromEntries(names.map((n) => [n, {
      state: 'Enabled', installedVersion: '1.0.0.0', lastKnownGood: '1.0.0.0',
      lastOperation: { operationId: 'op-1', outcome: 'succeeded', version: '1.0.0.0', message: 'enabled', finishedAt: now },
    }])),
    applicationHealth: { state: 'Healthy', extensionName: 'health' },
    agentConfiguration: { extensionsEnabled: true, extensionsAllowList: ['A.B'], extensionsBlockList: [] },
  };
}

type Path = Array<string | number>;

function pathsOf(v: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...at, i])));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

const BOUNDS = [0, 1, 16, 17, 32, 33, 64, 65, 256, 257, 4096, 4097];
const WORDS = ['1.1', '1.0', 'Ready', 'NotReady', 'Unresponsive', 'success', 'error', 'transitioning', 'warning', 'Enabled', 'Failed', 'Blocked',
  'succeeded', 'rolledBack', 'Healthy', 'Unknown', 'Success', 'Flying', 'ready', ''];

/** What a mutation puts at a path (undefined: the field is removed). */
const replacement = fc.oneof(
  fc.constantFrom<unknown>(undefined, null, true, false, 0, -1, 1.5, 2 ** 53, -0, 1e300, [], {}, '7', [1], { lang: 'en', message: 'm' }),
  fc.constantFrom(...WORDS),
  fc.constantFrom(...BOUNDS).map((n) => 'x'.repeat(n)),
);

type Mutation = { pick: number; kind: 'set'; value: unknown } | { pick: number; kind: 'stretch'; to: number } | { pick: number; kind: 'grow'; to: number }
  | { pick: number; kind: 'extra'; key: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ pick: fc.nat(), kind: fc.constant('set' as const), value: replacement }),
  // A string field at or just past each bound.
  fc.record({ pick: fc.nat(), kind: fc.constant('stretch' as const), to: fc.constantFrom(...BOUNDS) }),
  // Arrays (bounds 32, 64, 256) and objects (agentState: 64) at or past their bounds.
  fc.record({ pick: fc.nat(), kind: fc.constant('grow' as const), to: fc.constantFrom(0, 1, 32, 33, 64, 65, 256, 257) }),
  fc.record({ pick: fc.nat(), kind: fc.constant('extra' as const), key: fc.constantFrom('extra', 'x'.repeat(256), 'x'.repeat(257), 'Other.Ext') }),
);

function apply(report: Record<string, unknown>, m: Mutation): void {
  const all = pathsOf(report);
  const valueAt = (p: Path) => p.reduce<any>((o, k) => o[k], report);
  const paths = m.kind === 'set' ? all : all.filter((p) => m.kind === 'stretch' ? typeof valueAt(p) === 'string' : typeof valueAt(p) === 'object' && valueAt(p) !== null);
  if (paths.length === 0) return;
  const path = paths[m.pick % paths.length]!;
  if (path.length === 0) return;
  const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], report);
  const key = path[path.length - 1]!;
  const target = parent[key];
  if (m.kind === 'stretch') {
    parent[key] = 'x'.repeat(m.to);
  } else if (m.kind === 'set') {
    if (m.value === undefined && !Array.isArray(parent)) delete parent[key];
    else parent[key] = structuredClone(m.value);
  } else if (m.kind === 'grow' && Array.isArray(target)) {
    const proto = target[0] ?? 'A.B';
    target.length = 0;
    for (let i = 0; i < m.to; i++) target.push(structuredClone(proto));
  } else if (m.kind === 'grow' && typeof target === 'object' && target !== null) {
    // Objects grow by copies of their first member under new names (agentState: the 64-extension bound).
    const first = Object.values(target)[0];
    for (let i = Object.keys(target).length; i < m.to; i++) target[`Ext.N${i}`] = structuredClone(first ?? {});
  } else if (m.kind === 'extra' && typeof target === 'object' && target !== null && !Array.isArray(target)) {
    target[m.key] = structuredClone(Object.values(target)[0] ?? 1);
  }
}

const VALUES: unknown[] = [undefined, null, true, false, 0, -1, 1.5, 2 ** 53, 1e300, [], {}, '7', [1], { lang: 'en', message: 'm' }, ...WORDS, ...BOUNDS.map((n) => 'x'.repeat(n))];

test('every single mutation of every field: the hand-written check and zod give the same answer', () => {
  const report0 = fullReport();
  const paths = pathsOf(report0);
  const valueAt = (p: Path) => p.reduce<any>((o, k) => o[k], report0);
  const strings = paths.filter((p) => typeof valueAt(p) === 'string').length;
  const containers = paths.filter((p) => typeof valueAt(p) === 'object' && valueAt(p) !== null).length;
  const all: Mutation[] = [];
  for (let pick = 0; pick < paths.length; pick++) for (const value of VALUES) all.push({ pick, kind: 'set', value });
  for (let pick = 0; pick < strings; pick++) for (const to of BOUNDS) all.push({ pick, kind: 'stretch', to });
  for (let pick = 0; pick < containers; pick++) {
    for (const to of [0, 32, 33, 64, 65, 256, 257]) all.push({ pick, kind: 'grow', to });
    all.push({ pick, kind: 'extra', key: 'x'.repeat(257) }, { pick, kind: 'extra', key: 'extra' });
  }
  const wrong: string[] = [];
  for (const m of all) {
    const report = fullReport();
    apply(report, m);
    if (isStatusReport(report) !== statusReportSchema.safeParse(report).success) wrong.push(JSON.stringify(m).slice(0, 200));
  }
  assert.deepEqual(wrong, []);
});

test('random combinations of mutations: the hand-written check accepts exactly the reports zod accepts', () => {
  assert.equal(isStatusReport(fullReport()), true);
  assert.equal(statusReportSchema.safeParse(fullReport()).success, true);
  let refused = 0;
  fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
    const report = fullReport();
    for (const m of ms) apply(report, m);
    const zod = statusReportSchema.safeParse(report).success;
    if (!zod) refused++;
    assert.equal(isStatusReport(report), zod, JSON.stringify(ms).slice(0, 500));
  }), { numRuns: 1000, seed: 11 });
  assert.ok(refused > 300, `the mutations refuse a good share of reports (${refused})`);
});

test('a refused report gets zod\'s first issue as its ARM error', () => {
  const r = fullReport();
  (r.aggregateStatus as any).guestAgentStatus.status = 'Sleeping';
  assert.throws(() => checkStatusReport(r), (err: any) => err.status === 400 && err.code === 'InvalidParameter' && err.target === 'aggregateStatus.guestAgentStatus.status'
    && /expected one of "Ready", "NotReady"/.test(err.message));
});
