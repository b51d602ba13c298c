/**
 * `phasewise plan`: the plan of one of the scenario's releases, computed by the real engine at the
 * moment the release is published, with the scenario's earlier settings (opt-outs, support, maintenance
 * windows and their assignments) applied; nothing is sent.
 */
import { ManualClock } from '../engine/clock.js';
import { Engine } from '../engine/engine.js';
import { windowsOfKey } from '../model/maintenance.js';
import { describeArtifact, guestPatchArtifact } from '../model/artifact.js';
import { offPeakWindowOfId } from '../schedule/off-peak.js';
import { describePlan } from '../planner/describe.js';
import { MemoryStore } from '../store/memory-store.js';
import { loadScenarioFile } from '../sim/scenario.js';
import { nonEmptyPath, parseSeed } from './sim-command.js';
import { applyScenarioAction } from '../sim/simulator.js';
import type { TimedAction } from '../sim/scenario.js';
import { UsageError } from './errors.js';

type Release = Extract<TimedAction, { kind: 'publish' | 'publishPatchBaseline' }>;

export function planCommand(file: string, opts: { release: string; detail?: boolean; seed?: string }): void {
  // The seed decides a generated fleet: `plan --seed N` plans the fleet `sim --seed N` runs.
  const seed = parseSeed(opts.seed);
  nonEmptyPath(file, 'the scenario');
  const scenario = loadScenarioFile(file, seed === undefined ? {} : { seed });
  // Extension releases and platform patch baselines (R76), numbered together in time order.
  const publishes = scenario.actions.filter((a): a is Release => a.kind === 'publish' || a.kind === 'publishPatchBaseline');
  // Nothing to plan: say so, rather than "expected a number from 1 to 0".
  if (publishes.length === 0) throw new UsageError(`${file}: the scenario publishes nothing (no publish or publishPatchBaseline event); there is no release to plan`);
  // Digits only: Number() would also take "0x2", "1e0", "2.0" and " 2".
  const n = /^\d+$/.test(opts.release) ? Number(opts.release) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--release: expected a number from 1 to ${publishes.length}, got "${opts.release}"`);
  const release = publishes[n - 1];
  if (!release) throw new UsageError(`${file}: the scenario has ${publishes.length} publish event(s); --release ${n} does not exist`);
  const clock = new ManualClock(release.atMs);
  const engine = new Engine({
    clock,
    driver: { send: () => {} },
    store: new MemoryStore(),
    state: scenario.state,
    profiles: scenario.profiles,
    ...(scenario.canaryRegions ? { canaryRegions: scenario.canaryRegions } : {}),
  });
  for (const a of scenario.actions) {
    if (a.atMs > release.atMs) break;
    if (a.kind === 'setAutomaticUpgrade') engine.setAutomaticUpgrade(a.machineIds.filter((id) => scenario.state.fleet.instances.get(a.artifactKey)?.has(id)), a.artifactKey, a.enabled, 'scenario');
    if (a.kind === 'supportAutomaticUpgrade') scenario.state.catalog.addType(a.publisher, a.type, a.supported);
    if (a.kind === 'publish' && a !== release) scenario.state.catalog.publish(a.publisher, a.type, a.version);
    if (a.kind === 'putMaintenance' || a.kind === 'assignMaintenance') applyScenarioAction(engine, a);
  }
  const rollout = release.kind === 'publish'
    ? engine.publishVersion(release.publisher, release.type, release.version)
    : engine.publishPatchBaseline(release.os, release.version, release.critical, 'scenario');
  if (!rollout) {
    const why = release.kind === 'publish'
      ? `no instance has ${release.version.version} as its automatic target (R1, R2)`
      : `no platform-patched ${release.os} machine outside a patch schedule is below ${release.version} (R76)`;
    process.stdout.write(`${releaseLine(release, n, publishes.length)}\nIt would start no rollout: ${why}.\n`);
    return;
  }
  const maintenance = engine.state.maintenance;
  const windowsOf = (key: string) => (key.startsWith('off-peak:') ? [offPeakWindowOfId(key)] : windowsOfKey(maintenance, key));
  process.stdout.write(`${releaseLine(release, n, publishes.length, rollout.plan.rolloutId)}\n${describePlan(rollout.plan, { startMs: release.atMs, windowsOf, ...(opts.detail ? { detail: true } : {}) })}\n`);
}

/**
 * The plan is made by a fresh engine, so its rollout is always numbered ro-1 whichever release it is;
 * this line says which release the plan belongs to.
 */
function releaseLine(release: Release, n: number, of: number, rolloutId?: string): string {
  const at = new Date(release.atMs).toISOString().slice(0, 16).replace('T', ' ');
  const what = release.kind === 'publish' ? `${release.publisher}.${release.type} ${release.version.version}` : `${describeArtifact(guestPatchArtifact(release.os))} ${release.version}`;
  const line = `Release ${n} of ${of}: ${what}, published ${at} UTC`;
  return n === 1 || rolloutId === undefined ? line : `${line}; planned on its own, so its rollout is numbered ${rolloutId} below`;
}
