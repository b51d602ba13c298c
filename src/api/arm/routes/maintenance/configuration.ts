/**
 * Maintenance configurations (azure-api.md §8): their shape, full validation of the window (R70) and of
 * the per-scope limits (R71), and the engine's view of one (only those with a window confine upgrades).
 */
import { z } from 'zod';
import { checkScopeLimits, MAINTENANCE_SCOPES } from '../../../../schedule/limits.js';
import type { MaintenanceScope } from '../../../../schedule/limits.js';
import { parseMaintenanceWindow } from '../../../../schedule/window.js';
import type { MaintenanceConfigSpec } from '../../../../model/maintenance.js';
import { badRequest, invalidParameter } from '../../errors.js';
import type { ArmErrorDetail } from '../../errors.js';
import { keyOf } from '../../ids.js';
import { jsonObject, locationName, parseBody, tags } from '../../validation.js';
import { parseScheduledPatches } from '../../patch-requests.js';

export const CONFIG_TYPE = 'Microsoft.Maintenance/maintenanceConfigurations';
/** Scopes whose configurations must carry a window (their updates only run inside one). */
const WINDOW_REQUIRED: ReadonlySet<MaintenanceScope> = new Set(['OSImage', 'Extension', 'InGuestPatch']);

const windowSchema = z.object({
  startDateTime: z.string(),
  expirationDateTime: z.string().nullable().optional(),
  duration: z.string(),
  timeZone: z.string(),
  recurEvery: z.string(),
});

const configProperties = z.object({
  namespace: z.string().optional(),
  extensionProperties: z.record(z.string(), z.string()).optional(),
  maintenanceScope: z.enum(MAINTENANCE_SCOPES),
  maintenanceWindow: windowSchema.optional(),
  visibility: z.enum(['Custom', 'Public']).optional(),
  installPatches: jsonObject.optional(),
});

const configBody = z.object({ location: locationName, tags: tags.optional(), properties: configProperties });
export const configPatch = z.object({
  location: locationName.optional(),
  tags: tags.optional(),
  properties: z.object({
    namespace: z.string().optional(),
    extensionProperties: z.record(z.string(), z.string()).optional(),
    maintenanceScope: z.enum(MAINTENANCE_SCOPES).optional(),
    maintenanceWindow: windowSchema.partial().optional(),
    visibility: z.enum(['Custom', 'Public']).optional(),
    installPatches: jsonObject.optional(),
  }).optional(),
});

export type ConfigDoc = z.infer<typeof configBody>;

/** Phasewise's own switch in `extensionProperties`: may critical releases bypass the windows (R72)? */
const BYPASS_KEY = 'emergencybypass';
// A Map, not an object literal: a value such as 'constructor' must not find an inherited property.
const BYPASS_VALUES: ReadonlyMap<string, boolean> = new Map([['allow', true], ['deny', false]]);

function emergencyBypassOf(d: ConfigDoc): boolean {
  for (const [k, v] of Object.entries(d.properties.extensionProperties ?? {})) if (k.toLowerCase() === BYPASS_KEY) return BYPASS_VALUES.get(v.toLowerCase()) ?? false;
  return false;
}

/** The engine's view of a configuration: null for those without a window (nothing to confine to). */
export function engineConfigOf(id: string, d: ConfigDoc): MaintenanceConfigSpec | null {
  const w = d.properties.maintenanceWindow;
  if (!w) return null;
  return {
    id: keyOf(id),
    scope: d.properties.maintenanceScope,
    window: { startDateTime: w.startDateTime, expirationDateTime: w.expirationDateTime ?? null, duration: w.duration, timeZone: w.timeZone, recurEvery: w.recurEvery },
    emergencyBypass: emergencyBypassOf(d),
  };
}

export const CONFIG_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Maintenance\/maintenanceConfigurations\/([^/]+)\/?$/i;


/**
 * Validates a configuration body (schema, then the window, then the scope's limits). Throws the ARM error
 * of the first problem, every problem of the same stage in details.
 */
export function validateConfiguration(raw: unknown): ConfigDoc {
  const body = parseBody(configBody, raw);
  let bypassKey: string | null = null;
  for (const [k, v] of Object.entries(body.properties.extensionProperties ?? {})) {
    if (k.toLowerCase() !== BYPASS_KEY) continue;
    if (!BYPASS_VALUES.has(v.toLowerCase())) {
      throw invalidParameter(`properties.extensionProperties.${k}`, `'${v}' is not a valid value; expected Allow (critical security releases may start outside the windows, R72) or Deny`);
    }
    // Two spellings (`EmergencyBypass: Deny`, `emergencybypass: Allow`) were taken and the first one decided R72 unseen.
    if (bypassKey !== null) {
      throw invalidParameter(`properties.extensionProperties.${k}`, `'${bypassKey}' and '${k}' both name EmergencyBypass (names are compared without regard to case); give it once`);
    }
    bypassKey = k;
  }
  const { maintenanceScope: scope, maintenanceWindow: spec } = body.properties;
  if (spec === undefined) {
    if (WINDOW_REQUIRED.has(scope)) {
      throw invalidParameter('properties.maintenanceWindow', `${scope} configurations need a maintenance window; expected {startDateTime, duration, timeZone, recurEvery}`);
    }
    checkInstallPatches(body);
    return body;
  }
  const parsed = parseMaintenanceWindow(spec);
  if (!parsed.ok) {
    throw fromDetails(parsed.errors.map((e) => {
      const target = `properties.maintenanceWindow.${e.field}`;
      return { code: 'InvalidParameter', target, message: `properties.maintenanceWindow.${e.message}` };
    }));
  }
  const violations = checkScopeLimits(scope, parsed.window);
  if (violations.length > 0) {
    throw fromDetails(violations.map((v) => {
      const target = `properties.maintenanceWindow.${v.field}`;
      const text = v.message.startsWith(`${v.field}: `) ? v.message.slice(v.field.length + 2) : v.message;
      return { code: 'InvalidParameter', target, message: `${target}: ${text} (limit ${v.limit} of scope ${v.scope})` };
    }));
  }
  checkInstallPatches(body);
  return body;
}

/** `installPatches` belongs to InGuestPatch configurations, which need it (issue 16, R75). */
function checkInstallPatches(body: ConfigDoc): void {
  const ip = body.properties.installPatches;
  if (body.properties.maintenanceScope === 'InGuestPatch') parseScheduledPatches(ip);
  else if (ip !== undefined) throw invalidParameter('properties.installPatches', `only InGuestPatch configurations install patches (this one's scope is ${body.properties.maintenanceScope}).`);
}

function fromDetails(details: ArmErrorDetail[]) {
  const first = details[0]!;
  return badRequest('InvalidParameter', first.message, first.target, details);
}
