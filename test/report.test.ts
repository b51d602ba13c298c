/**
 * The HTML report, checked against summaries of real simulations: the demo scenario, a rollout that
 * stops on a failed phase, one cut short by the horizon, and hostile names. The HTML is ours and
 * regular, so small regular expressions over it are enough; no DOM library is needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderHtmlReport } from '../src/report/html-report.js';
import type { ReportInput } from '../src/report/html-report.js';
import type { RolloutSummary } from '../src/report/summary.js';
import { formatSummary, SummaryCollector } from '../src/report/summary.js';
import { loadScenarioFile } from '../src/sim/scenario.js';
import { runSimulation } from '../src/sim/simulator.js';
import { baseScenario, simulate } from './helpers/harness.js';

const HOSTILE = '<script>alert(1)</script>';

function demoInput(): ReportInput {
  const scenario = loadScenarioFile('examples/demo.yaml');
  const collector = new SummaryCollector();
  runSimulation(scenario, { onEvents: collector.onEvents });
  const s = scenario;
  return {
    scenario: { name: s.name, description: s.description, file: 'examples/demo.yaml', seed: s.seed, machines: s.state.fleet.machines.size, regions: s.state.fleet.regions.size },
    rollouts: collector.result(),
  };
}

function inputFrom(raw: Record<string, unknown>): ReportInput {
  const run = simulate(baseScenario(raw));
  const collector = new SummaryCollector();
  collector.onEvents(run.events);
  const s = run.scenario;
  return {
    scenario: { name: s.name, description: s.description, file: s.file, seed: s.seed, machines: s.state.fleet.machines.size, regions: s.state.fleet.regions.size },
    rollouts: collector.result(),
  };
}

/** A rollout that stops: most machines on the new version turn unhealthy, so phase 0 fails. */
const failing = { failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.6 } } } };

/** The HTML of one rollout's section. */
function section(html: string, rolloutId: string): string {
  const start = html.indexOf(`data-rollout="${rolloutId}"`);
  assert.ok(start >= 0, `no section for rollout ${rolloutId}`);
  const end = html.indexOf('</section>', start);
  return html.slice(start, end);
}

function statValue(html: string, key: string): string {
  const m = new RegExp(`data-stat="${key}"><span class="v">([^<]*)</span>`).exec(html);
  assert.ok(m, `no stat card ${key}`);
  return m[1]!;
}

/** Nothing computed went wrong on the way to the page. */
function assertNoBadValues(html: string): void {
  for (const bad of ['NaN', 'Infinity', 'undefined', '[object Object]']) assert.ok(!html.includes(bad), `report contains "${bad}"`);
}

describe('HTML report of the demo scenario', () => {
  const input = demoInput();
  const html = renderHtmlReport(input);

  it('has a chart per rollout, and a real simulation to show', () => {
    assert.ok(input.rollouts.length >= 2, 'the demo should start two rollouts');
    for (const r of input.rollouts) assert.match(section(html, r.id), /<svg class="chart"[^>]*viewBox="0 0 \d+ \d+"/);
    assertNoBadValues(html);
  });

  it('shows the scenario header', () => {
    assert.match(html, /<h1>demo<\/h1>/);
    assert.ok(html.includes('<code>examples/demo.yaml</code>'));
    assert.ok(html.includes(`<dt>Seed</dt><dd>${input.scenario.seed}</dd>`));
    assert.ok(html.includes(`<dt>Machines</dt><dd>${input.scenario.machines.toLocaleString('en')}</dd>`));
  });

  it('shows one phase row per phase, with its regions and counts', () => {
    for (const r of input.rollouts) {
      const rows = [...section(html, r.id).matchAll(/<tr class="phase [^"]*" data-phase="(\d+)">(.*?)<\/tr>/g)];
      assert.equal(rows.length, r.phases.length);
      rows.forEach((row, i) => {
        const p = r.phases[i]!;
        assert.equal(Number(row[1]), p.index);
        assert.ok(row[2]!.includes(`<td>${p.regions.join(', ')}</td>`), `phase ${i} regions`);
        assert.ok(row[2]!.includes(`<td class="num">${p.upgraded.toLocaleString('en')}</td>`), `phase ${i} upgraded`);
      });
    }
  });

  it('shows the summary numbers in the stat row', () => {
    const keys = ['eligible', 'upgraded', 'upgradeFailures', 'unhealthy', 'rolledBack', 'failed', 'retried', 'skipped', 'batches'] as const;
    for (const r of input.rollouts) {
      const part = section(html, r.id);
      for (const k of keys) assert.equal(statValue(part, k), r[k].toLocaleString('en'), `${r.id} ${k}`);
      // The image release's superseded rollouts last less than a day.
      assert.match(statValue(part, 'duration'), /^(\d+d \d+h |\d+h )?\d+m$/);
    }
  });

  it('charts running totals that end at the summary counters', () => {
    for (const r of input.rollouts) {
      const part = section(html, r.id);
      const last = (key: string): number => Number(new RegExp(`data-key="${key}" data-last="(\\d+)"`).exec(part)?.[1]);
      assert.equal(last('succeeded'), r.upgraded);
      assert.equal(last('unhealthy'), r.unhealthy + r.upgradeFailures);
      assert.equal(last('rolledBack'), r.rolledBack);
      assert.equal(last('failed'), r.failed);
      const bands = part.match(/<g class="band/g) ?? [];
      assert.equal(bands.length, r.phases.filter((p) => p.startedAt).length, 'one band per started phase');
    }
  });

  it('has a date-labelled time axis and y-axis ticks', () => {
    const part = section(html, input.rollouts[0]!.id);
    const dates = [...part.matchAll(/<text class="tick"[^>]*>((?:Jan|Feb|Mar) \d+)<\/text>/g)].map((m) => m[1]);
    assert.ok(dates.length >= 5, `expected several date ticks, got ${dates.join(', ')}`);
    assert.ok(part.includes('text-anchor="end">0</text>'), 'a y tick at 0');
  });

  it('lists every recorded gate and the count per rule', () => {
    for (const r of input.rollouts) {
      const part = section(html, r.id);
      assert.equal((part.match(/<tr class="gate /g) ?? []).length, r.gates.length);
      for (const [rule, n] of Object.entries(r.gatesByRule)) assert.ok(part.includes(`data-rule="${rule}">${rule} <b>×${n}</b>`), rule);
      const first = r.gates[0];
      if (first) assert.ok(part.includes(`<td class="num">${first.observed}%</td><td class="num">${first.limit}%</td>`));
    }
  });

  it('is self-contained: no scripts, stylesheets, fonts or images fetched from anywhere', () => {
    assert.doesNotMatch(html, /\b(?:src|href|xlink:href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?\/\//i);
    assert.doesNotMatch(html, /url\(|@import|@font-face/i);
    assert.doesNotMatch(html, /<(?:script|link|img|iframe|object|embed)\b/i);
    for (const m of html.matchAll(/\bhref="([^"]*)"/g)) assert.match(m[1]!, /^#rollout-\d+$/, 'only in-page links');
  });
});

describe('HTML report: escaping', () => {
  it('escapes a hostile scenario name and publisher that went through a real run', () => {
    const input = inputFrom({
      name: HOSTILE,
      description: '"><img src=x onerror=alert(2)>',
      catalog: [{ publisher: '<b onmouseover=alert(3)>Evil', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] }],
      extensions: { agent: { publisher: '<b onmouseover=alert(3)>Evil', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true } },
    });
    assert.ok(input.rollouts[0]?.artifact.includes('<b onmouseover'), 'the hostile publisher should reach the summary');
    const html = renderHtmlReport(input);
    assert.ok(!html.includes(HOSTILE) && !html.includes('<img') && !html.includes('<b onmouseover'));
    assert.ok(html.includes('<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>'));
    assert.ok(html.includes('<title>Phasewise report: &lt;script&gt;alert(1)&lt;/script&gt;</title>'));
    assert.ok(html.includes('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'));
    assert.doesNotMatch(html, /<script/i);
  });

  it('escapes regions, reasons, rules and gate scopes from the event log', () => {
    const input = inputFrom(failing);
    const r = input.rollouts[0]!;
    r.id = `ro"${HOSTILE}`;
    r.reason = HOSTILE;
    r.phases[0]!.regions = [HOSTILE];
    r.gates[0]!.where = HOSTILE;
    r.gates[0]!.reason = HOSTILE;
    r.gatesByRule = { [HOSTILE]: 1 };
    const html = renderHtmlReport(input);
    assert.doesNotMatch(html, /<script/i);
    assert.ok(html.includes('data-rollout="ro&quot;&lt;script&gt;'), 'attribute values are escaped too');
    assert.ok((html.match(/&lt;script&gt;alert\(1\)&lt;\/script&gt;/g) ?? []).length >= 6);
  });
});

describe('HTML report: edge cases', () => {
  it('says so when no rollout started', () => {
    const html = renderHtmlReport({ scenario: { name: 'quiet', description: '', file: 'q.yaml', seed: 1, machines: 0, regions: 0 }, rollouts: [] });
    assert.ok(html.includes('No rollout started'));
    assert.ok(!html.includes('<svg') && !html.includes('<section class="rollout"'));
    assertNoBadValues(html);
  });

  it('highlights a failed phase and shows the phases that never started', () => {
    const input = inputFrom(failing);
    const r = input.rollouts[0]!;
    assert.equal(r.status, 'stopped');
    const html = renderHtmlReport(input);
    const failedRows = html.match(/<tr class="phase failed"/g) ?? [];
    assert.equal(failedRows.length, r.phases.filter((p) => p.status === 'failed').length);
    assert.ok(failedRows.length >= 1);
    assert.ok(html.includes('<g class="band failed">'), 'the failed phase is red in the chart too');
    assert.match(html, /<tr class="phase pending" data-phase="1"><td class="num">1<\/td><td>[^<]+<\/td><td>—<\/td><td>—<\/td>/);
    assert.ok(html.includes('<span class="badge stopped">stopped</span>'));
    assertNoBadValues(html);
  });

  it('charts a rollout whose activity fits in one bucket', () => {
    const input = inputFrom(failing);
    assert.equal(input.rollouts[0]!.series.length, 1, 'this scenario should give a single bucket');
    const html = renderHtmlReport(input);
    assert.match(html, /<svg class="chart"/);
    for (const m of html.matchAll(/ d="([^"]*)"/g)) assert.match(m[1]!, /^M[\d.,]+( L[\d.,]+)*( Z)?$/, 'path has only finite coordinates');
    assert.match(html, /<text class="tick"[^>]*>\d\d:\d\d<\/text>/, 'a short rollout gets hour ticks');
    assertNoBadValues(html);
  });

  it('shows a rollout without instance activity without a chart', () => {
    const input = inputFrom(failing);
    input.rollouts[0]!.series = [];
    const html = renderHtmlReport(input);
    assert.ok(!html.includes('<svg'));
    assert.ok(html.includes('No instance activity was recorded'));
    assertNoBadValues(html);
  });

  it('shows a rollout cut short by the horizon as not finished', () => {
    const input = inputFrom({ horizon: 'PT3H' });
    const r: RolloutSummary = input.rollouts[0]!;
    assert.equal(r.endedAt, null, 'the horizon should stop the run before the rollout ends');
    const html = renderHtmlReport(input);
    assert.equal(statValue(html, 'duration'), 'not finished');
    assert.ok(html.includes('not finished when the simulation ended'));
    assert.ok(html.includes('<span class="badge running">running</span>'));
    assert.match(html, /<svg class="chart"/);
    assertNoBadValues(html);
  });
});

describe('A release held fleet-wide, in the summary and the report', () => {
  /** Many small sets in one canary region, a quarter of upgrades broken: the release verdict holds it before the phase fails. */
  const heldRaw = {
    seed: 3,
    fleet: {
      scaleSets: [{ name: 'ss', region: 'east', subscription: 'sub1', zones: ['1', '2', '3'], capacity: 12, count: 40, extensions: ['agent'] }],
      vms: [{ region: 'west', subscription: 'sub1', count: 40, extensions: ['agent'] }],
    },
    failures: { versions: { '1.1.0.0': { unhealthyAfterUpgrade: 0.25 } } },
  };

  it('R22: the rollout reads "held" with the evidence, in the text summary and in the HTML, and the run says why it ended', () => {
    const run = simulate(baseScenario(heldRaw));
    const halted = run.events.filter((e) => e.type === 'release.halted');
    assert.equal(halted.length, 1, 'the scenario must hold its release (else this test proves nothing)');
    const collector = new SummaryCollector();
    collector.onEvents(run.events);
    const [r] = collector.result();
    assert.equal(r!.status, 'held');
    assert.equal(r!.releaseHalts.length, 1);
    assert.equal(r!.releaseHalts[0]!.kind, 'evidence');
    assert.equal(r!.releaseHalts[0]!.resumedAt, null);
    const text = formatSummary(collector.result());
    assert.match(text, /— held\n/);
    assert.match(text, /release held fleet-wide \S+ \(evidence, by phasewise\): .*sequential test.*still held/);
    const html = renderHtmlReport({ scenario: { name: 't', description: '', file: 't.yaml', seed: 3, machines: 1, regions: 1 }, rollouts: collector.result() });
    assert.match(section(html, r!.id), /<span class="badge held">held<\/span>/);
    assert.match(section(html, r!.id), /<p class="halt">Release held fleet-wide .*still held when the simulation ended<\/p>/);
    assertNoBadValues(html);
  });

  it('R22: an OS image rollout created while its release is held (the version reached another region) starts held', () => {
    const image = { publisher: 'Canonical', offer: 'ubuntu', sku: 'server' };
    const run = simulate(baseScenario({
      seed: 2,
      images: [{ ...image, versions: [{ version: '1.0.0' }] }],
      fleet: {
        scaleSets: ['east', 'west', 'north'].map((region) => ({
          name: `ss-${region}`, region, subscription: 'sub1', capacity: 10, count: 20, extensions: ['agent'],
          image: { ...image, version: 'latest' }, upgradePolicy: { automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: true } },
        })),
      },
      events: [{ at: 'PT1H', publishImage: { ...image, version: '1.1.0', replications: [{ region: 'east' }, { region: 'west', at: 'P2D' }, { region: 'north', at: 'P3D' }] } }],
      failures: { versions: { '1.1.0': { unhealthyAfterUpgrade: 0.3 } } },
    }));
    const halt = run.events.find((e) => e.type === 'release.halted');
    assert.ok(halt, 'the scenario must hold its release');
    const later = run.events.filter((e) => e.type === 'rollout.created' && e.seq > halt.seq);
    assert.ok(later.length > 0, 'a rollout of the release must be created after the hold (else this test proves nothing)');
    const collector = new SummaryCollector();
    collector.onEvents(run.events);
    const last = collector.result().at(-1)!;
    assert.equal(last.id, (later.at(-1) as { rolloutId: string }).rolloutId);
    assert.equal(last.status, 'held');
    assert.equal(last.releaseHalts[0]!.time, halt.time);
  });

  it('R6: a manual upgrade to a version held by its evidence is not held (only an operator\'s hold stops manual upgrades)', () => {
    const run = simulate(baseScenario({
      ...heldRaw,
      events: [
        { at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } },
        { at: 'P15D', manualUpgrade: { extension: 'agent', scaleSet: 'ss-39', version: '1.1.0.0' } },
      ],
    }));
    const halt = run.events.find((e) => e.type === 'release.halted');
    assert.ok(halt && halt.type === 'release.halted' && halt.kind === 'evidence', 'the scenario must hold its release by evidence');
    const collector = new SummaryCollector();
    collector.onEvents(run.events);
    const manual = collector.result().find((r) => r.profile === 'manual');
    assert.ok(manual, 'the manual rollout must exist');
    assert.ok(run.events.some((e) => e.type === 'rollout.created' && e.rolloutId === manual.id && e.seq > halt.seq));
    assert.deepEqual(manual.releaseHalts, []);
    assert.notEqual(manual.status, 'held');
    // An operator's hold does stop it.
    const last = run.events[run.events.length - 1]!;
    collector.onEvents([{ ...halt, seq: last.seq + 1, kind: 'operator', caller: 'alice', reason: 'looking' }]);
    const after = collector.result().find((r) => r.id === manual.id)!;
    if (after.endedAt === null) assert.equal(after.status, 'held');
  });

  it('a resumed release reads "running" again, the hold kept with the time it was lifted; a pause reads "paused"', () => {
    const run = simulate(baseScenario(heldRaw));
    const events = [...run.events];
    const h = events.find((e) => e.type === 'release.halted')!;
    assert.ok(h.type === 'release.halted');
    const last = events[events.length - 1]!;
    const resumed = { seq: last.seq + 1, time: last.time, type: 'release.resumed', artifact: h.artifact, artifactKey: h.artifactKey,
      toVersion: h.toVersion, caller: 'alice', reason: 'fixed' } as const;
    const collector = new SummaryCollector();
    collector.onEvents([...events, resumed]);
    const [r] = collector.result();
    assert.equal(r!.status, 'running');
    assert.equal(r!.releaseHalts[0]!.resumedAt, last.time);
    assert.match(formatSummary(collector.result()), new RegExp(`release held fleet-wide .*; resumed ${last.time.replace(/\./g, '\\.')}`));
    collector.onEvents([{ seq: last.seq + 2, time: last.time, type: 'rollout.paused', rolloutId: r!.id, reason: 'operator', caller: 'bob' }]);
    assert.equal(collector.result()[0]!.status, 'paused');
    // Another version's hold leaves this rollout alone.
    collector.onEvents([{ ...h, seq: last.seq + 3, toVersion: '9.9.9.9' }]);
    assert.equal(collector.result()[0]!.releaseHalts.length, 1);
  });

  it('the open phase of a superseded rollout reads cancelled at the time of the cancellation, not "running" for ever', () => {
    const run = simulate(baseScenario({ events: [{ at: 'PT1H', publish: { extension: 'agent', version: '1.1.0.0' } }, { at: 'PT1H', publish: { extension: 'agent', version: '1.2.0.0' } }] }));
    const cancelled = run.of('rollout.cancelled')[0]!;
    const collector = new SummaryCollector();
    collector.onEvents(run.events);
    const first = collector.result().find((r) => r.id === cancelled.rolloutId)!;
    assert.equal(first.status, 'superseded');
    const open = first.phases.filter((p) => p.startedAt !== null);
    assert.ok(open.length > 0, 'the superseded rollout had opened a phase');
    for (const p of open) {
      assert.equal(p.status, 'cancelled');
      assert.equal(p.endedAt, cancelled.time);
    }
    const text = formatSummary(collector.result());
    const block = text.slice(text.indexOf(`Rollout ${first.id}:`), text.indexOf('Rollout ', text.indexOf(`Rollout ${first.id}:`) + 1));
    assert.doesNotMatch(block, /running/);
    assert.match(block, /  cancelled/);
  });
});
