/**
 * The settings and protected settings of all extensions on one machine, together, as JSON: at most
 * MAX_MACHINE_SETTINGS_BYTES (docs/api.md#limits). A machine's goal state carries them all (protected
 * settings encrypted to its certificate, a third larger), and a goal state must stay under
 * LIMITS.goalStateBytes; this bound keeps it there whatever the machine's extensions, and a write that
 * would pass it is refused with an ARM error instead of a goal state the server cannot serve.
 */
import { badRequest } from './errors.js';

/** With 64 extensions' own fields and CMS envelopes this keeps a goal state under 1 MiB (test/api-agent-goalstate-size.test.ts). */
export const MAX_MACHINE_SETTINGS_BYTES = 512 * 1024;

export const jsonBytes = (v: unknown): number => (v === undefined || v === null ? 0 : Buffer.byteLength(JSON.stringify(v)));

/** Throws the ARM error (400) when `total` passes the limit; `target` names the property written. */
export function checkMachineSettings(total: number, target: string, machine: string): void {
  if (total <= MAX_MACHINE_SETTINGS_BYTES) return;
  throw badRequest('InvalidParameter', `${target}: the settings and protected settings of all extensions on ${machine} would take ${total} bytes as JSON, `
    + `over the limit of ${MAX_MACHINE_SETTINGS_BYTES} (limit maxMachineSettingsBytes; see docs/api.md#limits).`, target);
}
