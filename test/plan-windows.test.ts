/**
 * The plan as people read it (`describePlan`, `phasewise plan`) with maintenance windows (R70, R40): the
 * window every windowed batch is expected to run in, in the local time of the window's zone, and the
 * rollout's expected end.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DateTime } from 'luxon';
import { stringify } from 'yaml';
import { windowsOfKey } from '../src/model/maintenance.js';
import { describePlan } from '../src/planner/describe.js';
import type { Plan, PlanBatch, PlanUnit } from '../src/planner/types.js';
import { baseScenario, simulate } from './helpers/harness.js';
import { cli } from './helpers/cli.js';


function scenario(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return baseScenario({
    canaryRegions: ['west'],
    maintenance: {
      configurations: [{ name: 'weekend', startDateTime: '2026-01-03 22:00', duration: '06:00', timeZone: 'Pacific Standard Time', recurEvery: 'Week Saturday,Sunday' }],
      assignments: [{ configuration: 'weekend', scaleSet: 'ss-east' }],
    },
    events: [{ at: 'P1D', publish: { extension: 'agent', version: '1.1.0.0' } }],
    ...overrides,
  });
}

function units(plan: Plan): PlanUnit[] {
  return plan.phases.flatMap((p) => p.regions.flatMap((r) => r.waves.flatMap((w) => w.units)));
}

/** The window as the plan should print it, worked out with luxon: `Sat 2026-01-10 22:00–Sun 04:00 <label>`. */
function expectedWindow(plan: Plan, b: PlanBatch, zone: string, label: string): string {
  const a = DateTime.fromMillis(plan.estimate.startMs + b.window!.opensMs, { zone });
  const z = DateTime.fromMillis(plan.estimate.startMs + b.window!.closesMs, { zone });
  const end = a.hasSame(z, 'day') ? z.toFormat('HH:mm') : z.toFormat('ccc HH:mm');
  return `${a.toFormat('ccc yyyy-LL-dd HH:mm')}–${end} ${label}`;
}

const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

describe('describePlan with maintenance windows', () => {
  const r = simulate(scenario());
  const plan = [...r.engine.state.rollouts.values()][0]!.plan;
  const maintenance = r.engine.state.maintenance;
  const windowsOf = (key: string) => windowsOfKey(maintenance, key);
  const windowed = units(plan).filter((u) => u.windowKey !== undefined);

  test('R70: with --detail, every batch of a windowed unit shows its window in the local time of the window\'s zone', () => {
    assert.ok(windowed.length >= 3, `${windowed.length} windowed units`);
    const text = describePlan(plan, { startMs: plan.estimate.startMs, detail: true, windowsOf });
    const lines = text.split('\n');
    let shown = 0;
    for (const u of windowed) {
      for (const b of u.batches) {
        const line = lines.find((l) => l.includes(`batch ${b.index}: ${b.machineIds.join(', ')} —`));
        assert.ok(line, `no line for ${b.id}`);
        const want = expectedWindow(plan, b, 'America/Los_Angeles', 'Pacific Standard Time');
        assert.ok(line.endsWith(`; window ${want}`), `${b.id}: "${line}" does not end with "${want}"`);
        assert.match(want, /^(Sat|Sun) \d{4}-\d{2}-\d{2} 22:00–(Sun|Mon) 04:00 /);
        shown++;
      }
    }
    assert.equal(shown, plan.estimate.windowedBatches);
    // Batches of units without windows show none.
    for (const u of units(plan).filter((x) => x.windowKey === undefined)) {
      for (const b of u.batches) assert.ok(!lines.find((l) => l.includes(`batch ${b.index}: ${b.machineIds.join(', ')} —`))!.includes('; window '));
    }
  });

  test('R70: without --detail, each windowed unit lists its windows and which batches run in each, every batch once', () => {
    const text = describePlan(plan, { startMs: plan.estimate.startMs, windowsOf });
    assert.match(text, /confined to maintenance windows \(R70\): weekend/);
    const ranges = [...text.matchAll(/^\s+batch(?:es)? (\d+)(?:–(\d+))?: window (.+)$/gm)];
    let covered = 0;
    for (const m of ranges) covered += (m[2] === undefined ? 0 : Number(m[2]) - Number(m[1])) + 1;
    assert.equal(covered, plan.estimate.windowedBatches);
    for (const u of windowed) {
      const first = u.batches[0]!;
      assert.ok(text.includes(`: window ${expectedWindow(plan, first, 'America/Los_Angeles', 'Pacific Standard Time')}`));
    }
  });

  test('R40: the plan shows the rollout\'s expected end', () => {
    const text = describePlan(plan, { startMs: plan.estimate.startMs, windowsOf });
    const end = plan.estimate.startMs + plan.estimate.totalMs;
    assert.ok(text.includes(`  expected end: ${iso(end)} UTC, with ${plan.estimate.windowedBatches} batches confined to maintenance windows (R70)`), text.split('\n').slice(0, 4).join('\n'));
    // The windows stretch the rollout to the weekend: it cannot end before the last window opens.
    const lastOpens = Math.max(...windowed.flatMap((u) => u.batches.map((b) => b.window!.opensMs)));
    assert.ok(plan.estimate.totalMs > lastOpens);
  });

  test('R70: without the configurations at hand, windows are shown in UTC', () => {
    const text = describePlan(plan, { startMs: plan.estimate.startMs, detail: true });
    const b = windowed[0]!.batches[0]!;
    assert.ok(text.includes(`; window ${expectedWindow(plan, b, 'UTC', 'UTC')}`));
  });

  test('R40: a plan that cannot meet its bound says so', () => {
    const tight = simulate(scenario({ profiles: { standard: { bound: 'P3D' } } }));
    const p = [...tight.engine.state.rollouts.values()][0]!.plan;
    const text = describePlan(p, { startMs: p.estimate.startMs });
    assert.match(text, /bound 3d 0h \(R40\): DOES NOT FIT/);
    assert.match(text, /note: estimated [\d.]+ days including one retry: over the standard bound of 3 days \(R40\)/);
  });
});

describe('phasewise plan with maintenance windows', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-plan-windows-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('R70: applies the scenario\'s windows and assignments, and prints the same plan the engine made', async () => {
    const raw = scenario({
      // The second set is assigned by an event before the release: the plan must see it too.
      fleet: { ...(baseScenario().fleet as Record<string, unknown>), availabilitySets: [{ name: 'db', region: 'east', subscription: 'sub1', vms: 4, os: 'linux', extensions: ['agent'] }] },
      events: [
        { at: 'PT6H', assignMaintenance: { configuration: 'weekend', scaleSet: 'db' } },
        { at: 'P1D', publish: { extension: 'agent', version: '1.1.0.0' } },
      ],
    });
    const file = join(dir, 'windows.yaml');
    writeFileSync(file, stringify(raw));
    const res = await cli('plan', file);
    assert.equal(res.status, 0, res.stderr);
    const sim = simulate(raw);
    const plan = [...sim.engine.state.rollouts.values()][0]!.plan;
    const expected = describePlan(plan, { startMs: plan.estimate.startMs, windowsOf: (key) => windowsOfKey(sim.engine.state.maintenance, key) });
    assert.ok(res.stdout.endsWith(`${expected}\n`), res.stdout);
    assert.ok(units(plan).some((u) => u.setId === 'db' && u.windowKey === 'weekend'), 'the assignment event was not applied');
    assert.match(res.stdout, /batch(es)? 0(–\d+)?: window (Sat|Sun) \d{4}-\d{2}-\d{2} 22:00–(Sun|Mon) 04:00 Pacific Standard Time/);
  });
});
