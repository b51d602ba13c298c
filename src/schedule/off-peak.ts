/**
 * Off-peak hours of platform-orchestrated patching (R76): a machine is patched only between 22:00 and
 * 06:00 in its region's local time zone, as Azure's automatic VM guest patching does. The window is an
 * ordinary daily maintenance window, so the engine's window gate and the planner treat it like any other.
 */
import { maintenanceWindow } from './window.js';
import type { MaintenanceWindow } from './window.js';

/** Local wall-clock start and length of the off-peak window. */
export const OFF_PEAK_START = '22:00';
export const OFF_PEAK_HOURS = 8;

/** Azure region → IANA time zone (the region's local time). Regions not listed use UTC. */
export const REGION_TIME_ZONES: Readonly<Record<string, string>> = {
  eastus: 'America/New_York', eastus2: 'America/New_York', eastus3: 'America/New_York', centralus: 'America/Chicago',
  northcentralus: 'America/Chicago', southcentralus: 'America/Chicago', westcentralus: 'America/Denver',
  westus: 'America/Los_Angeles', westus2: 'America/Los_Angeles', westus3: 'America/Phoenix',
  canadacentral: 'America/Toronto', canadaeast: 'America/Toronto', mexicocentral: 'America/Mexico_City',
  brazilsouth: 'America/Sao_Paulo', brazilsoutheast: 'America/Sao_Paulo', chilecentral: 'America/Santiago',
  northeurope: 'Europe/Dublin', westeurope: 'Europe/Amsterdam', uksouth: 'Europe/London', ukwest: 'Europe/London',
  francecentral: 'Europe/Paris', francesouth: 'Europe/Paris', germanywestcentral: 'Europe/Berlin', germanynorth: 'Europe/Berlin',
  switzerlandnorth: 'Europe/Zurich', switzerlandwest: 'Europe/Zurich', norwayeast: 'Europe/Oslo', norwaywest: 'Europe/Oslo',
  swedencentral: 'Europe/Stockholm', swedensouth: 'Europe/Stockholm', polandcentral: 'Europe/Warsaw', italynorth: 'Europe/Rome',
  spaincentral: 'Europe/Madrid', austriaeast: 'Europe/Vienna', belgiumcentral: 'Europe/Brussels', denmarkeast: 'Europe/Copenhagen',
  uaenorth: 'Asia/Dubai', uaecentral: 'Asia/Dubai', qatarcentral: 'Asia/Qatar', israelcentral: 'Asia/Jerusalem',
  southafricanorth: 'Africa/Johannesburg', southafricawest: 'Africa/Johannesburg',
  centralindia: 'Asia/Kolkata', southindia: 'Asia/Kolkata', westindia: 'Asia/Kolkata', jioindiawest: 'Asia/Kolkata', jioindiacentral: 'Asia/Kolkata',
  eastasia: 'Asia/Hong_Kong', southeastasia: 'Asia/Singapore', malaysiawest: 'Asia/Kuala_Lumpur', indonesiacentral: 'Asia/Jakarta',
  japaneast: 'Asia/Tokyo', japanwest: 'Asia/Tokyo', koreacentral: 'Asia/Seoul', koreasouth: 'Asia/Seoul',
  australiaeast: 'Australia/Sydney', australiasoutheast: 'Australia/Melbourne', australiacentral: 'Australia/Sydney',
  australiacentral2: 'Australia/Sydney', newzealandnorth: 'Pacific/Auckland', taiwannorth: 'Asia/Taipei',
};

/** The IANA zone of a region's local time; UTC when the region is not a known Azure region. */
export function regionTimeZone(region: string): string {
  return REGION_TIME_ZONES[region.toLowerCase()] ?? 'UTC';
}

const cache = new Map<string, MaintenanceWindow>();

/** The daily off-peak window of a region (memoised: one per zone). */
export function offPeakWindow(region: string): MaintenanceWindow {
  return offPeakWindowOfId(offPeakId(region));
}

/** The pseudo-configuration id under which off-peak windows appear in `window.*` events. */
export function offPeakId(region: string): string {
  return `off-peak:${regionTimeZone(region)}`;
}

/** The window behind an `offPeakId`. */
export function offPeakWindowOfId(id: string): MaintenanceWindow {
  const zone = id.slice('off-peak:'.length);
  let w = cache.get(zone);
  if (!w) {
    w = maintenanceWindow({ startDateTime: `2000-01-01 ${OFF_PEAK_START}`, duration: `0${OFF_PEAK_HOURS}:00`, timeZone: zone, recurEvery: 'Day' });
    cache.set(zone, w);
  }
  return w;
}
