/**
 * Phasewise's metrics: counters fed by the engine's event stream (what happened), gauges read from
 * the engine's state at scrape time (where things are), and latency histograms around the API, the
 * store's commit and the engine's step. Wrapping never changes what is wrapped: the original runs,
 * its result or error goes back as it was, and only the time it took is recorded.
 */
import { performance } from 'node:perf_hooks';
import type { Engine } from '../../engine/engine.js';
import type { EngineEvent } from '../../model/events.js';
import type { Store } from '../../store/store.js';
import { displayStatus } from '../arm/superseded.js';
import { Counter, Gauge, Histogram, Registry } from './prometheus.js';

/** Seconds; API requests and engine steps are milliseconds to seconds. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Instance events and the outcome label they count under. */
const OUTCOMES: Partial<Record<EngineEvent['type'], string>> = {
  'instance.upgrade.started': 'started',
  'instance.upgrade.succeeded': 'succeeded',
  'instance.upgrade.failed': 'failed',
  'instance.health.unhealthy': 'unhealthy',
  'instance.rollback.started': 'rollback_started',
  'instance.rollback.succeeded': 'rolled_back',
  'instance.rollback.failed': 'rollback_failed',
  'instance.retry.scheduled': 'retry_scheduled',
  'instance.skipped': 'skipped',
};

export interface FleetMetricsOptions {
  engine: Engine;
  /** Machines whose agent is connected now (0 where no agent channel runs). */
  agentsConnected?: () => number;
  /** Agent identities a second machine used within the last lease (src/api/agent/agent-instances.ts). */
  agentDuplicates?: () => number;
}

export class FleetMetrics {
  readonly registry = new Registry();
  readonly rolloutsCreated = this.registry.add(new Counter('phasewise_rollouts_created_total', 'Rollouts created, by profile.'));
  readonly rolloutEnds = this.registry.add(new Counter('phasewise_rollout_transitions_total', 'Rollouts paused, resumed, stopped, completed or cancelled.'));
  readonly phases = this.registry.add(new Counter('phasewise_phases_total', 'Phases started, completed or failed.'));
  readonly batchesStarted = this.registry.add(new Counter('phasewise_batches_started_total', 'Batches started (retry="true" for retry batches).'));
  readonly batchesCompleted = this.registry.add(new Counter('phasewise_batches_completed_total', 'Batches completed.'));
  readonly attempts = this.registry.add(new Counter('phasewise_attempts_total', 'Instance attempt events, by outcome.'));
  readonly gateBreaches = this.registry.add(new Counter('phasewise_gate_breaches_total', 'Health gates breached (the set or rollout stopped), by gate.'));
  readonly gateHolds = this.registry.add(new Counter('phasewise_gate_holds_total', 'Health gates that held a batch back, by gate.'));
  readonly windowWaits = this.registry.add(new Counter('phasewise_window_waits_total', 'Units that began waiting for a maintenance window.'));
  readonly releaseHolds = this.registry.add(new Counter('phasewise_release_holds_total', 'Releases held fleet-wide, by kind (evidence, operator, withdrawn).'));
  readonly webhooks = this.registry.add(new Counter('phasewise_webhook_deliveries_total', 'Webhook deliveries: delivered, retried, failed (given up), dropped (queue full).'));
  readonly events = this.registry.add(new Counter('phasewise_events_total', 'Engine events published.'));
  readonly http = this.registry.add(new Histogram('phasewise_http_request_duration_seconds', 'API latency by method, route pattern and status.', LATENCY_BUCKETS));
  readonly commit = this.registry.add(new Histogram('phasewise_store_commit_duration_seconds', 'Time of one store commit (one engine tick or command).', LATENCY_BUCKETS));
  readonly step = this.registry.add(new Histogram('phasewise_engine_step_duration_seconds', 'Time of one engine step of the real-time runtime.', LATENCY_BUCKETS));

  constructor(private readonly opts: FleetMetricsOptions) {
    const state = opts.engine.state;
    this.registry.add(new Gauge('phasewise_rollouts', 'Rollouts by state.', () => {
      const counts = new Map<string, number>([['running', 0], ['stopped', 0], ['completed', 0], ['cancelled', 0], ['superseded', 0]]);
      for (const r of state.rollouts.values()) counts.set(displayStatus(r), (counts.get(displayStatus(r)) ?? 0) + 1);
      return [...counts].map(([s, n]) => [{ state: s }, n]);
    }));
    this.registry.add(new Gauge('phasewise_units_waiting_for_window', 'Units of running rollouts waiting for a maintenance window.', () => {
      let n = 0;
      for (const r of state.rollouts.values()) if (r.status === 'running') for (const u of r.units.values()) if (u.status === 'window') n++;
      return [[{}, n]];
    }));
    this.registry.add(new Gauge('phasewise_releases_held', 'Releases held fleet-wide now, by kind.', () => {
      const counts = new Map<string, number>([['evidence', 0], ['operator', 0], ['withdrawn', 0]]);
      for (const rel of state.releases.values()) if (rel.hold) counts.set(rel.hold.kind, (counts.get(rel.hold.kind) ?? 0) + 1);
      return [...counts].map(([k, n]) => [{ kind: k }, n]);
    }));
    this.registry.add(new Gauge('phasewise_machines', 'Machines in the fleet.', () => [[{}, state.fleet.machines.size]]));
    this.registry.add(new Gauge('phasewise_agents_connected', 'Machines whose agent is connected.', () => [[{}, this.opts.agentsConnected?.() ?? 0]]));
    this.registry.add(new Gauge('phasewise_agent_duplicate_identities', 'Agent identities whose copy on a second machine was refused within the last lease (DuplicateAgentInstance).',
      () => [[{}, this.opts.agentDuplicates?.() ?? 0]]));
    this.registry.add(new Gauge('phasewise_engine_halted', '1 when the engine stopped advancing (a failed commit).', () => [[{}, opts.engine.haltedBecause ? 1 : 0]]));
    opts.engine.onEvents((events) => this.onEvents(events));
  }

  onEvents(events: readonly EngineEvent[]): void {
    this.events.inc({}, events.length);
    for (const e of events) {
      const outcome = OUTCOMES[e.type];
      if (outcome) {
        this.attempts.inc({ outcome });
        continue;
      }
      switch (e.type) {
        case 'rollout.created': this.rolloutsCreated.inc({ profile: e.profile }); break;
        case 'rollout.paused': case 'rollout.resumed': case 'rollout.stopped': case 'rollout.completed': case 'rollout.cancelled':
          this.rolloutEnds.inc({ to: e.type.slice('rollout.'.length) });
          break;
        case 'phase.started': case 'phase.completed': case 'phase.failed': this.phases.inc({ event: e.type.slice('phase.'.length) }); break;
        case 'batch.started': this.batchesStarted.inc({ retry: e.retry ? 'true' : 'false' }); break;
        case 'batch.completed': this.batchesCompleted.inc(); break;
        case 'gate.breached': this.gateBreaches.inc({ gate: e.gate }); break;
        case 'gate.held': this.gateHolds.inc({ gate: e.gate }); break;
        case 'window.waiting': this.windowWaits.inc(); break;
        case 'release.halted': this.releaseHolds.inc({ kind: e.kind }); break;
        default: break;
      }
    }
  }

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.http.observe({ method, route, status: String(status) }, seconds);
  }

  /** observeRequest for one method, route and status, resolved once. */
  requestObserver(method: string, route: string, status: number): (seconds: number) => void {
    return this.http.bind({ method, route, status: String(status) });
  }

  /** Times every commit of the store; the commit itself is untouched. */
  instrumentStore(store: Store): void {
    const commit = store.commit.bind(store);
    store.commit = (c) => {
      const t0 = performance.now();
      try {
        commit(c);
      } finally {
        this.commit.observe({}, (performance.now() - t0) / 1000);
      }
    };
  }

  /** Times every step of the real-time runtime (wraps `step`, which the loop calls). */
  instrumentStep(runtime: { step(): void }): void {
    const step = runtime.step.bind(runtime);
    runtime.step = () => {
      const t0 = performance.now();
      try {
        step();
      } finally {
        this.step.observe({}, (performance.now() - t0) / 1000);
      }
    };
  }
}
