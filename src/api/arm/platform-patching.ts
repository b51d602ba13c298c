/**
 * Platform-orchestrated patching of served machines (R76): keeps the engine's `guestPatch` instances in
 * step with the VMs' and Arc machines' ARM patch settings (`patchMode` AutomaticByPlatform and no
 * InGuestPatch schedule, directly or by dynamic scope: the schedule wins, as in Azure), and publishes a
 * baseline every week, dated the start of the patch catalogue's week (the simulated fleet's weekly
 * batches, src/drivers/sim/sim-patches.ts). The engine then rolls each baseline out availability-first.
 */
import type { ArmContext } from './context.js';
import { effectivePatchSettings } from './patch-settings.js';
import type { PatchScheduleRunner } from './patch-schedules.js';

const WEEK_MS = 7 * 86_400_000;
const SCAN_EVERY_MS = 3_600_000;

/** The baseline of the week holding `now`: the date its batch was published (weeks count from 1970-01-01, UTC). */
export function weeklyBaseline(now: number): string {
  const d = new Date(Math.floor(now / WEEK_MS) * WEEK_MS);
  return `${d.getUTCFullYear()}.${d.getUTCMonth() + 1}.${d.getUTCDate()}`;
}

export class PlatformPatching {
  private nextScan = Number.NEGATIVE_INFINITY;
  /** Baselines published by this server (`os@version`); those in the engine's rollouts count too. */
  private readonly published = new Set<string>();

  constructor(private readonly ctx: ArmContext, private readonly schedules: PatchScheduleRunner) {}

  nextAt(): number | null {
    return Number.isFinite(this.nextScan) ? this.nextScan : null;
  }

  step(now: number): void {
    if (now < this.nextScan) return;
    this.nextScan = now + SCAN_EVERY_MS;
    this.sync();
    this.publish(now);
  }

  /** Each VM and Arc machine with an ARM document gets, keeps or loses its platform patching. */
  sync(): void {
    const engine = this.ctx.engine;
    const scheduled = this.schedules.scheduledMachines();
    type MachineDoc = { properties?: { osProfile?: unknown } };
    for (const d of [...this.ctx.docs.ofKind<MachineDoc>('virtualMachine'), ...this.ctx.docs.ofKind<MachineDoc>('arcMachine')]) {
      const m = this.ctx.index.machine(d.id);
      if (!m || (m.kind !== 'vm' && m.kind !== 'arc')) continue;
      const s = effectivePatchSettings(d.body.properties?.osProfile, m.os, m.kind);
      const inst = engine.state.fleet.instances.get(`guestPatch:${m.os}`)?.get(m.id);
      // Customer-managed schedules (the bypass) are patched by their schedules only, never by the platform, as in Azure.
      const wanted = s.patchMode === 'AutomaticByPlatform' && !s.bypassPlatformSafetyChecksOnUserSchedule && !scheduled.has(m.id);
      if (wanted && (!inst || inst.settings['rebootSetting'] !== s.rebootSetting)) engine.setPlatformPatching(m.id, { rebootSetting: s.rebootSetting });
      else if (!wanted && inst) engine.setPlatformPatching(m.id, null);
    }
  }

  /** This week's baseline, once per OS, when some machine follows that OS's baselines. */
  private publish(now: number): void {
    const engine = this.ctx.engine;
    const version = weeklyBaseline(now);
    for (const os of ['linux', 'windows'] as const) {
      const key = `guestPatch:${os}`;
      if (this.published.has(`${os}@${version}`) || (engine.state.fleet.instances.get(key)?.size ?? 0) === 0) continue;
      this.published.add(`${os}@${version}`);
      if ([...engine.state.rollouts.values()].some((r) => r.artifactKey === key && r.toVersion === version)) continue;
      engine.publishPatchBaseline(os, version, false, 'platform');
    }
  }
}
