/**
 * The patch checker (src/audit/patches.ts) catches what it promises to: an installation outside its
 * window, a maximumDuration past the window's end, a reboot announced too late or not at all, pending
 * patches without maintenanceWindowExceeded. Random logs (fast-check) built to be valid pass.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PatchChecker } from '../src/audit/patches.js';
import type { EngineEvent } from '../src/model/events.js';
import { maintenanceWindow, windowInstances } from '../src/schedule/window.js';

const MIN = 60_000;
const CFG = 'cfg';
const W = maintenanceWindow({ startDateTime: '2026-01-01 22:00', expirationDateTime: null, duration: '03:00', timeZone: 'UTC', recurEvery: 'Day' });
const placement = { region: 'westus', zone: null, setId: null, setKind: 'none' as const, updateDomain: null, faultDomain: null, subscription: 's' };
const iso = (t: number) => new Date(t).toISOString();

function runLog(at: number, windowEnd: number, o: { noticeMs?: number; announce?: boolean; pending?: number; exceeded?: boolean; rebootMs?: number } = {}): EngineEvent[] {
  let seq = 0;
  const base = (t: number) => ({ seq: ++seq, time: iso(t), machineId: 'm1', placement });
  const runId = `r@${at}`;
  const notice = o.noticeMs ?? 15 * MIN;
  const out: EngineEvent[] = [{ ...base(at), type: 'patch.run.started', configuration: CFG, runId, windowStart: iso(at), windowEnd: iso(windowEnd), maximumDurationMs: windowEnd - at, reason: '' }];
  if (o.announce !== false) out.push({ ...base(at), type: 'machine.reboot.announced', runId, eventId: 'e', notBefore: iso(at + notice), reason: '' });
  out.push({ ...base(at), type: 'patch.run.completed', configuration: CFG, runId, status: 'Succeeded', installed: 3, failed: 0, pending: o.pending ?? 0,
    maintenanceWindowExceeded: o.exceeded ?? false, rebootStatus: 'Completed', reason: '' });
  out.push({ ...base(at), type: 'availability.impact', cause: 'Reboot', state: 'Unavailable', startTime: iso(at + notice), durationSec: (o.rebootMs ?? 5 * MIN) / 1000, planned: true, reason: '',
    runId });
  return out;
}

const check = (log: EngineEvent[]) => {
  const c = new PatchChecker({ windowOf: (id) => (id === CFG ? W : undefined), noticeMs: 15 * MIN });
  c.onEvents(log);
  return c.violations;
};

const first = windowInstances(W, Date.parse('2026-01-05T00:00:00Z')).next().value!;

test('R75, R83: a valid run passes; each broken rule is caught', () => {
  assert.deepEqual(check(runLog(first.start + MIN, first.end)), []);
  assert.match(check(runLog(first.start - 10 * MIN, first.end)).join(), /outside the windows/);
  assert.match(check(runLog(first.start + MIN, first.end + 30 * MIN)).join(), /reaches past the window's end/);
  assert.match(check(runLog(first.start + MIN, first.end, { noticeMs: 5 * MIN })).join(), /less than 15/);
  assert.match(check(runLog(first.start + MIN, first.end, { announce: false })).join(), /never announced/);
  assert.match(check(runLog(first.start + MIN, first.end, { pending: 2 })).join(), /without maintenanceWindowExceeded/);
  assert.match(check(runLog(first.end - 16 * MIN, first.end, { rebootMs: 5 * MIN })).join(), /past the end of its window/);
});

test('R75: runs started anywhere inside a window with a 15-minute notice and a reboot that fits pass the checker', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 159 }), (day, minute) => {
    const inst = windowInstances(W, first.start + day * 86_400_000).next().value!;
    const at = inst.start + minute * MIN; // ≤ 2 h 39: the 15-minute notice and a 5-minute reboot fit in 3 h
    assert.deepEqual(check(runLog(at, inst.end)), []);
  }), { numRuns: 200 });
});
