/**
 * Periodic assessment (R74): machines whose `assessmentMode` is AutomaticByPlatform are assessed at least
 * every 24 hours; the result becomes their `patchStatus.availablePatchSummary`. The fleet is looked over
 * once an hour of the engine's clock, so the cost does not grow with how often the runtime steps.
 */
import { randomUUID } from 'node:crypto';
import type { ArmContext } from './context.js';
import { effectivePatchSettings } from './patch-settings.js';
import { readPatchStatus, saveAssessment } from './patch-records.js';

export const ASSESSMENT_PERIOD_MS = 24 * 3_600_000;
const SCAN_EVERY_MS = 3_600_000;

export class PeriodicAssessment {
  private nextScan = Number.NEGATIVE_INFINITY;
  /** Machines with an assessment asked for and not answered yet. */
  private readonly asking = new Set<string>();

  constructor(private readonly ctx: ArmContext, private readonly onError: (err: unknown, machineId: string) => void = () => {}) {}

  nextAt(): number | null {
    return Number.isFinite(this.nextScan) ? this.nextScan : null;
  }

  step(now: number): void {
    if (now < this.nextScan) return;
    this.nextScan = now + SCAN_EVERY_MS;
    const patches = this.ctx.patches;
    if (!patches) return;
    // Only machines with an ARM document can carry patch settings (a scenario's machines have none).
    type MachineDoc = { properties?: { osProfile?: unknown } };
    for (const d of [...this.ctx.docs.ofKind<MachineDoc>('virtualMachine'), ...this.ctx.docs.ofKind<MachineDoc>('arcMachine')]) {
      const m = this.ctx.index.machine(d.id);
      if (!m || (m.kind !== 'vm' && m.kind !== 'arc') || this.asking.has(m.id)) continue;
      const armId = this.ctx.index.armIdOfMachine(m);
      const osProfile = d.body.properties?.osProfile;
      if (effectivePatchSettings(osProfile, m.os, m.kind).assessmentMode !== 'AutomaticByPlatform') continue;
      const last = readPatchStatus(this.ctx, armId)?.assessment?.at;
      if (last !== undefined && now - Date.parse(last) < ASSESSMENT_PERIOD_MS) continue;
      this.asking.add(m.id);
      let asked;
      try {
        asked = patches.assessPatches({ machineId: m.id, os: m.os });
      } catch (err) {
        asked = Promise.reject(err);
      }
      asked.then(
        (a) => {
          this.asking.delete(m.id);
          if (this.ctx.index.machine(armId)) saveAssessment(this.ctx, armId, a, randomUUID(), new Date(this.ctx.runtime.clock.now()).toISOString());
        },
        (err: unknown) => {
          this.asking.delete(m.id);
          this.onError(err, m.id);
        },
      );
    }
  }
}
