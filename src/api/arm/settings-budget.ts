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

/**
 * One write's settings over all the instances it gives them to: every instance's row and install
 * action keeps its own copy, so a 60 KB model put on 1,000 instances wrote 60 MB and held the server
 * for seconds. Within this, a write stays well under a second; a larger fleet change goes in steps.
 */
export const MAX_REQUEST_SETTINGS_BYTES = 16 * 1024 * 1024;

/** Throws the ARM error (400) when `perInstance` bytes on `instances` instances pass MAX_REQUEST_SETTINGS_BYTES. */
export function checkRequestSettings(perInstance: number, instances: number, target: string): void {
  const total = perInstance * instances;
  if (total <= MAX_REQUEST_SETTINGS_BYTES) return;
  const most = perInstance > 0 ? Math.floor(MAX_REQUEST_SETTINGS_BYTES / perInstance) : instances;
  throw badRequest('InvalidParameter', `${target}: this write gives ${instances} instances ${perInstance} bytes of extension settings each `
    + `(${total} bytes in all, each instance keeps its copy), over the limit of ${MAX_REQUEST_SETTINGS_BYTES} for one request `
    + `(limit maxRequestSettingsBytes; see docs/api.md#limits): with these settings at most ${most} instances per request, `
    + 'or keep large data out of extension settings.', target);
}

