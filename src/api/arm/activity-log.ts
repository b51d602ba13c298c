/**
 * The activity log (R82) as Azure Monitor serves it: the engine's events of upgrade attempts, installs,
 * rollbacks and opt-in changes become `EventData` records, with the operation name and who started
 * it. Pure functions: the `$filter` and `$select` parsers, the mapping of one engine event, and the
 * matching of a record against a filter. The route (routes/activity-log.ts) reads the events table.
 */
import { createHash } from 'node:crypto';
import type { Artifact } from '../../model/artifact.js';
import { describeArtifact } from '../../model/artifact.js';
import type { EngineEvent, EventType } from '../../model/events.js';
import type { MachineKind } from '../../model/fleet.js';

/** A bad `$filter`, `$select` or `$skiptoken`. The activity log answers these with a flat `{code,message}`. */
export class ActivityLogError extends Error {
  readonly status = 400;
  readonly code = 'BadRequest';
}

/** Who automatic (platform) work is attributed to in Azure's activity log. */
export const PLATFORM_DISPLAY_NAME = 'Azure Regional Service Manager';

// ---- $filter ------------------------------------------------------------------------------------

/** The properties that may follow the time range: Azure's four, and Phasewise's `caller` and `operationName`. */
export const FILTER_FIELDS = ['resourceGroupName', 'resourceUri', 'resourceProvider', 'correlationId', 'caller', 'operationName'] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];

export interface ActivityFilter {
  /** Inclusive bounds, in ms since the epoch and as canonical ISO text (`toISOString`). */
  fromMs: number;
  toMs: number;
  from: string;
  to: string;
  /** The one optional clause after the range. */
  clause: { field: FilterField; value: string } | null;
}

type Token = { kind: 'word'; text: string; pos: number } | { kind: 'string'; text: string; pos: number } | { kind: 'end'; pos: number };

const SYNTAX = "eventTimestamp ge '<start>' and eventTimestamp le '<end>' [and <property> eq '<value>']";

function fail(message: string): never {
  throw new ActivityLogError(message);
}

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'") {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) fail(`The $filter has a quoted value starting at position ${start + 1} that is never closed.`);
        if (text[i] === "'") {
          // OData escapes a quote inside a value by doubling it.
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i];
        i++;
      }
      out.push({ kind: 'string', text: value, pos: start + 1 });
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
    if (!m) fail(`The $filter has an unexpected character '${c}' at position ${i + 1}; expected ${SYNTAX}.`);
    out.push({ kind: 'word', text: m[0], pos: i + 1 });
    i += m[0].length;
  }
  out.push({ kind: 'end', pos: text.length + 1 });
  return out;
}

const describeToken = (t: Token) => (t.kind === 'end' ? 'the end of the filter' : t.kind === 'string' ? `'${t.text}'` : `'${t.text}'`);

/**
 * An ISO 8601 instant as the activity log takes it (`2026-01-05`, `2026-01-05T10:00:00Z`,
 * `2026-01-05T10:00:00.1234567+02:00`); without an offset it is UTC. Returns ms or null.
 */
export function parseTimestamp(text: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?$/i.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}.${(frac + '000').slice(0, 3)}${zone.toUpperCase()}`);
  if (!Number.isFinite(ms)) return null;
  // Date.parse rolls 2026-02-30 over into March: the day must exist in its month.
  const daysInMonth = new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate();
  if (Number(d) > daysInMonth) return null;
  return ms;
}

/**
 * Parses the activity log's `$filter`: `eventTimestamp ge '<ISO>' and eventTimestamp le '<ISO>'`,
 * required, optionally with one `and <property> eq '<value>'` where property is one of
 * FILTER_FIELDS. Keywords and property names are case-insensitive; the clauses may come in any order.
 * Every problem is an ActivityLogError whose message names it.
 */
export function parseActivityFilter(text: string | undefined): ActivityFilter {
  if (text === undefined || text.trim() === '') fail(`The $filter query parameter is required: ${SYNTAX}.`);
  const tokens = tokenize(text);
  let i = 0;
  const clauses: Array<{ field: string; op: string; value: string; pos: number }> = [];
  for (;;) {
    const name = tokens[i]!;
    if (name.kind !== 'word') fail(`The $filter expects a property name at position ${name.pos}, found ${describeToken(name)}; expected ${SYNTAX}.`);
    const op = tokens[i + 1]!;
    if (op.kind !== 'word') fail(`The $filter expects an operator after '${name.text}' at position ${op.pos}, found ${describeToken(op)}.`);
    const value = tokens[i + 2]!;
    if (value.kind !== 'string') fail(`The $filter expects a quoted value after '${name.text} ${op.text}' at position ${value.pos}, found ${describeToken(value)}.`);
    clauses.push({ field: name.text, op: op.text.toLowerCase(), value: value.text, pos: name.pos });
    i += 3;
    const next = tokens[i]!;
    if (next.kind === 'end') break;
    if (next.kind !== 'word' || next.text.toLowerCase() !== 'and') {
      const what = next.kind === 'word' && next.text.toLowerCase() === 'or' ? "'or' is not supported" : `found ${describeToken(next)}`;
      fail(`The $filter joins clauses with 'and' only (position ${next.pos}): ${what}.`);
    }
    i++;
    if (tokens[i]!.kind === 'end') fail(`The $filter ends with 'and'; a clause must follow it.`);
  }

  let from: { ms: number; text: string } | null = null;
  let to: { ms: number; text: string } | null = null;
  const extra: Array<{ field: FilterField; value: string }> = [];
  for (const c of clauses) {
    const key = c.field.toLowerCase();
    if (key === 'eventtimestamp') {
      if (c.op !== 'ge' && c.op !== 'le') fail(`eventTimestamp takes the operators ge and le, not '${c.op}'.`);
      const ms = parseTimestamp(c.value);
      if (ms === null) fail(`'${c.value}' (eventTimestamp ${c.op}) is not an ISO 8601 timestamp such as 2026-01-05T00:00:00Z.`);
      if (c.op === 'ge') {
        if (from) fail('The $filter gives eventTimestamp ge twice.');
        from = { ms, text: c.value };
      } else {
        if (to) fail('The $filter gives eventTimestamp le twice.');
        to = { ms, text: c.value };
      }
      continue;
    }
    const field = FILTER_FIELDS.find((f) => f.toLowerCase() === key);
    if (!field) fail(`The $filter cannot filter on '${c.field}'; after the eventTimestamp range it takes one of ${FILTER_FIELDS.join(', ')}.`);
    if (c.op !== 'eq') fail(`${field} takes the operator eq, not '${c.op}'.`);
    if (c.value.trim() === '') fail(`${field} eq needs a non-empty value.`);
    extra.push({ field, value: c.value });
  }
  if (!from) fail(`The $filter must give the start of the range: eventTimestamp ge '<ISO timestamp>'; expected ${SYNTAX}.`);
  if (!to) fail(`The $filter must give the end of the range: eventTimestamp le '<ISO timestamp>'; expected ${SYNTAX}.`);
  if (extra.length > 1) fail(`The $filter takes only one clause after the eventTimestamp range; found ${extra.map((e) => e.field).join(' and ')}.`);
  if (from.ms > to.ms) fail(`The eventTimestamp range is empty: the start '${from.text}' is after the end '${to.text}'.`);
  return { fromMs: from.ms, toMs: to.ms, from: new Date(from.ms).toISOString(), to: new Date(to.ms).toISOString(), clause: extra[0] ?? null };
}

// ---- EventData ----------------------------------------------------------------------------------

export interface LocalizableString {
  value: string;
  localizedValue: string;
}

/** Azure Monitor's EventData (api-version 2015-04-01), the fields Phasewise fills. */
export interface EventData {
  authorization: { action: string; scope: string };
  caller: string;
  category: LocalizableString;
  claims: Record<string, string>;
  correlationId: string;
  description: string;
  eventDataId: string;
  eventName: LocalizableString;
  eventTimestamp: string;
  id: string;
  level: 'Critical' | 'Error' | 'Warning' | 'Informational' | 'Verbose';
  operationId: string;
  operationName: LocalizableString;
  properties: Record<string, string>;
  resourceGroupName: string;
  resourceId: string;
  resourceProviderName: LocalizableString;
  resourceType: LocalizableString;
  status: LocalizableString;
  subStatus: LocalizableString;
  submissionTimestamp: string;
  subscriptionId: string;
}

export const EVENT_DATA_FIELDS: ReadonlyArray<keyof EventData | 'httpRequest' | 'tenantId'> = [
  'authorization', 'caller', 'category', 'claims', 'correlationId', 'description', 'eventDataId', 'eventName', 'eventTimestamp',
  'httpRequest', 'id', 'level', 'operationId', 'operationName', 'properties', 'resourceGroupName', 'resourceId',
  'resourceProviderName', 'resourceType', 'status', 'subStatus', 'submissionTimestamp', 'subscriptionId', 'tenantId',
];

/** The engine events the activity log shows. */
export const ACTIVITY_EVENT_TYPES: readonly EventType[] = [
  'instance.upgrade.started', 'instance.upgrade.succeeded', 'instance.upgrade.failed',
  'instance.rollback.started', 'instance.rollback.succeeded', 'instance.rollback.failed',
  'instance.install.started', 'instance.install.succeeded', 'instance.install.failed',
  'instance.removed', 'autoUpgrade.changed', 'enrollment.changed', 'window.bypassed',
  'release.halted', 'release.resumed', 'rollout.paused', 'rollout.resumed', 'rollout.cancelled',
  'patch.run.started', 'patch.run.completed', 'patch.run.skipped', 'machine.reboot.announced', 'availability.impact',
];

/** The ARM resource an event is about: a machine, as the fleet index names it. */
export interface EventTarget {
  kind: MachineKind;
  resourceId: string;
  resourceGroup: string;
}

export interface MappingInput {
  event: EngineEvent;
  /** The machine of an instance event; unused for enrollment changes. */
  target: EventTarget | null;
  /** The caller recorded on the event's rollout (rollout events only). */
  rolloutCaller?: string | null;
  /** For install events: the seq of the `instance.install.started` the event belongs to (its own for a start). */
  installStartSeq?: number | null;
  /** The caller name automatic rollouts are recorded with. */
  platformCaller?: string;
}

type Verb = 'upgrade' | 'rollback' | 'install' | 'delete' | 'setting';

const PROVIDERS: Record<MachineKind, { provider: string; type: string; noun: string }> = {
  vm: { provider: 'Microsoft.Compute', type: 'Microsoft.Compute/virtualMachines', noun: 'Virtual Machine Extension' },
  scaleSetInstance: { provider: 'Microsoft.Compute', type: 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines', noun: 'Virtual Machine Scale Set VM Extension' },
  arc: { provider: 'Microsoft.HybridCompute', type: 'Microsoft.HybridCompute/machines', noun: 'Azure Arc machine extension' },
};

/** The operation name (value and display text) of a change of one artifact on one kind of machine. */
export function operationFor(kind: MachineKind, verb: Verb, artifactKind: Artifact['kind'] = 'extension'): LocalizableString {
  const p = PROVIDERS[kind];
  if (artifactKind === 'osImage') {
    // An OS image upgrade re-images the machine (R60, R61).
    return kind === 'scaleSetInstance'
      ? { value: 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/reimage/action', localizedValue: 'Reimage Virtual Machine Scale Set VM' }
      : { value: `${p.type}/reimage/action`, localizedValue: 'Reimage Virtual Machine' };
  }
  if (kind === 'arc' && verb === 'upgrade') return { value: 'Microsoft.HybridCompute/machines/upgradeExtensions/action', localizedValue: 'Upgrade Extensions on Azure Arc machines' };
  switch (verb) {
    case 'upgrade':
    case 'install':
    case 'setting':
      return { value: `${p.type}/extensions/write`, localizedValue: `Create or Update ${p.noun}` };
    case 'rollback':
      return { value: `${p.type}/extensions/rollback/action`, localizedValue: `Roll back ${p.noun}` };
    case 'delete':
      return { value: `${p.type}/extensions/delete`, localizedValue: `Delete ${p.noun}` };
  }
}

/** A UUID-shaped id derived from its parts, the same every time (version 5 layout over SHA-256). */
export function stableUuid(...parts: Array<string | number>): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** .NET ticks (100 ns since 0001-01-01) of an instant, as the `id` of an EventData carries them. */
export function ticksOf(ms: number): string {
  return (BigInt(ms) * 10_000n + 621_355_968_000_000_000n).toString();
}

export function displayCaller(caller: string, platformCaller = 'platform'): string {
  return caller === platformCaller ? PLATFORM_DISPLAY_NAME : caller;
}

const ls = (value: string, localizedValue = value): LocalizableString => ({ value, localizedValue });

const describeArtifactOf = (a: Artifact) => describeArtifact(a);

/**
 * Reads an ARM machine id (`/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1`)
 * as an event target; the engine names machines created through the API by their lower-cased ARM id, so
 * events of machines that are gone still find their resource.
 */
export function targetFromArmId(id: string): EventTarget | null {
  const m = /^\/subscriptions\/[^/]+\/resourcegroups\/([^/]+)\/providers\/([^/]+)\/(.+)$/i.exec(id);
  if (!m) return null;
  const provider = m[2]!.toLowerCase();
  const path = m[3]!.split('/');
  if (provider === 'microsoft.hybridcompute' && path.length === 2 && path[0]!.toLowerCase() === 'machines') return { kind: 'arc', resourceId: id, resourceGroup: m[1]! };
  if (provider !== 'microsoft.compute') return null;
  if (path.length === 2 && path[0]!.toLowerCase() === 'virtualmachines') return { kind: 'vm', resourceId: id, resourceGroup: m[1]! };
  if (path.length === 4 && path[0]!.toLowerCase() === 'virtualmachinescalesets' && path[2]!.toLowerCase() === 'virtualmachines')
    return { kind: 'scaleSetInstance', resourceId: id, resourceGroup: m[1]! };
  return null;
}

/** The subscription of an ARM id, or null. */
export function subscriptionOfId(id: string): string | null {
  return /^\/subscriptions\/([^/]+)/i.exec(id)?.[1] ?? null;
}

/**
 * The subscription an activity-log event belongs to: the event's own (placement, enrollment), else
 * that of its machine's resource; null when neither is known.
 */
export function subscriptionOf(e: EngineEvent, target: EventTarget | null = null): string | null {
  if (e.type === 'enrollment.changed') return e.subscription;
  if (e.type === 'window.bypassed') return e.scope.subscription;
  if ('placement' in e && e.placement) return e.placement.subscription;
  return target ? subscriptionOfId(target.resourceId) : null;
}

const FEATURE = 'VMSSExtensionAutomaticUpgrade';

/**
 * One engine event as an EventData record, or null when the event is not one the activity log shows
 * (or an instance event has no target). Begin/End pairs of one attempt share operationId and
 * correlationId; correlationId of a rollout's events is the rollout id.
 */
export function toEventData(input: MappingInput): EventData | null {
  const e = input.event;
  const platform = input.platformCaller ?? 'platform';
  const timestamp = e.time;
  const eventDataId = stableUuid('phasewise-event', e.seq);
  const base = { description: '', eventDataId, eventTimestamp: timestamp, submissionTimestamp: timestamp, category: ls('Administrative') };

  if (e.type === 'enrollment.changed') {
    const resourceId = `/subscriptions/${e.subscription}/providers/Microsoft.Features/providers/Microsoft.Compute/features/${FEATURE}`;
    const op = e.enrolled
      ? ls('Microsoft.Features/providers/features/register/action', 'Register Feature')
      : ls('Microsoft.Features/providers/features/unregister/action', 'Unregister Feature');
    const operationId = stableUuid('enrollment', e.seq);
    return {
      authorization: { action: op.value, scope: resourceId },
      caller: displayCaller(e.caller, platform),
      ...base,
      claims: e.caller === platform ? {} : { name: e.caller },
      correlationId: operationId,
      eventName: ls('EndRequest', 'End request'),
      id: `${resourceId}/events/${eventDataId}/ticks/${ticksOf(Date.parse(timestamp))}`,
      level: 'Informational',
      operationId,
      operationName: op,
      properties: { statusCode: 'OK', feature: `Microsoft.Compute/${FEATURE}`, enrolled: String(e.enrolled), reason: e.reason, eventSeq: String(e.seq) },
      resourceGroupName: '',
      resourceId,
      resourceProviderName: ls('Microsoft.Features'),
      resourceType: ls('Microsoft.Features/providers/features'),
      status: ls('Succeeded'),
      subStatus: ls('OK', 'OK (HTTP Status Code: 200)'),
      subscriptionId: e.subscription,
    };
  }

  if (e.type === 'release.halted' || e.type === 'release.resumed') return releaseEventData(e, base, platform);
  if (e.type === 'rollout.paused' || e.type === 'rollout.resumed' || e.type === 'rollout.cancelled') {
    return e.caller === undefined ? null : rolloutControlEventData(e, base, platform);
  }

  if (e.type === 'window.bypassed') {
    // R72: a batch of a critical release started outside the maintenance windows; recorded on its set (or subscription).
    const resourceId = input.target?.resourceId ?? `/subscriptions/${e.scope.subscription}`;
    const operationId = stableUuid('window-bypass', e.rolloutId, e.batchId);
    return {
      authorization: { action: 'Microsoft.Maintenance/maintenanceConfigurations/bypass/action', scope: resourceId },
      caller: displayCaller(input.rolloutCaller ?? platform, platform),
      ...base,
      description: e.reason,
      claims: {},
      correlationId: e.rolloutId,
      eventName: ls('EndRequest', 'End request'),
      id: `${resourceId}/events/${eventDataId}/ticks/${ticksOf(Date.parse(timestamp))}`,
      level: 'Warning',
      operationId,
      operationName: ls('Microsoft.Maintenance/maintenanceConfigurations/bypass/action', 'Bypass Maintenance Window'),
      properties: {
        statusCode: 'OK',
        rolloutId: e.rolloutId,
        batchId: e.batchId,
        region: e.scope.region,
        maintenanceConfigurations: e.configurations.join(','),
        reason: e.reason,
        eventSeq: String(e.seq),
      },
      resourceGroupName: input.target?.resourceGroup ?? '',
      resourceId,
      resourceProviderName: ls('Microsoft.Maintenance'),
      resourceType: ls('Microsoft.Maintenance/maintenanceConfigurations'),
      status: ls('Succeeded'),
      subStatus: ls('OK', 'OK (HTTP Status Code: 200)'),
      subscriptionId: e.scope.subscription,
    };
  }

  const t = input.target;
  if (!t) return null;
  if (e.type === 'patch.run.started' || e.type === 'patch.run.completed' || e.type === 'patch.run.skipped' || e.type === 'machine.reboot.announced' || e.type === 'availability.impact') {
    return patchEventData(e, base, t, platform);
  }

  let verb: Verb;
  let phase: 'begin' | 'succeeded' | 'failed';
  let caller: string;
  let operationId: string;
  let correlationId: string;
  let artifact: Artifact | null = null;
  const props: Record<string, string> = {};
  switch (e.type) {
    case 'instance.upgrade.started':
    case 'instance.upgrade.succeeded':
    case 'instance.upgrade.failed':
    case 'instance.rollback.started':
    case 'instance.rollback.succeeded':
    case 'instance.rollback.failed': {
      verb = e.type.startsWith('instance.upgrade.') ? 'upgrade' : 'rollback';
      phase = e.type.endsWith('.started') ? 'begin' : e.type.endsWith('.succeeded') ? 'succeeded' : 'failed';
      caller = input.rolloutCaller ?? platform;
      operationId = stableUuid(verb, e.rolloutId, e.machineId, e.attempt);
      correlationId = e.rolloutId;
      artifact = e.artifact;
      Object.assign(props, { fromVersion: e.fromVersion, toVersion: e.toVersion, rolloutId: e.rolloutId, attempt: String(e.attempt) });
      if (e.reason) props.reason = e.reason;
      break;
    }
    case 'instance.install.started':
    case 'instance.install.succeeded':
    case 'instance.install.failed': {
      verb = 'install';
      phase = e.type === 'instance.install.started' ? 'begin' : e.type === 'instance.install.succeeded' ? 'succeeded' : 'failed';
      caller = e.caller;
      operationId = stableUuid('install', e.machineId, describeArtifactOf(e.artifact).toLowerCase(), input.installStartSeq ?? e.seq);
      correlationId = operationId;
      artifact = e.artifact;
      Object.assign(props, { fromVersion: e.fromVersion, toVersion: e.toVersion });
      if (e.reason) props.reason = e.reason;
      break;
    }
    case 'instance.removed':
      verb = 'delete';
      phase = 'succeeded';
      caller = e.caller;
      operationId = stableUuid('remove', e.seq);
      correlationId = operationId;
      artifact = e.artifact;
      Object.assign(props, { version: e.version });
      if (e.reason) props.reason = e.reason;
      break;
    case 'autoUpgrade.changed':
      verb = 'setting';
      phase = 'succeeded';
      caller = e.caller;
      operationId = stableUuid('setting', e.seq);
      correlationId = operationId;
      props.extension = e.artifactKey.replace(/^extension:/, '');
      props.enableAutomaticUpgrade = String(e.enabled);
      break;
    default:
      return null;
  }
  if (artifact) props[artifact.kind === 'extension' ? 'extension' : artifact.kind === 'guestPatch' ? 'platformPatches' : 'image'] = describeArtifactOf(artifact);
  props.eventSeq = String(e.seq);

  const op = operationFor(t.kind, verb, artifact?.kind ?? 'extension');
  let status: LocalizableString;
  let subStatus: LocalizableString;
  let level: EventData['level'];
  if (phase === 'begin') {
    status = ls('Started');
    subStatus = ls('', '');
    level = verb === 'rollback' ? 'Warning' : 'Informational';
  } else if (phase === 'succeeded') {
    status = ls('Succeeded');
    subStatus = ls('OK', 'OK (HTTP Status Code: 200)');
    level = 'Informational';
    props.statusCode = 'OK';
  } else {
    status = ls('Failed');
    subStatus = ls('', '');
    level = 'Error';
    if (props.reason) props.statusMessage = props.reason;
  }
  const provider = PROVIDERS[t.kind];
  const subscriptionId = subscriptionOf(e, t) ?? '';
  return {
    authorization: { action: op.value, scope: t.resourceId },
    caller: displayCaller(caller, platform),
    ...base,
    claims: caller === platform ? {} : { name: caller },
    correlationId,
    eventName: phase === 'begin' ? ls('BeginRequest', 'Begin request') : ls('EndRequest', 'End request'),
    id: `${t.resourceId}/events/${eventDataId}/ticks/${ticksOf(Date.parse(timestamp))}`,
    level,
    operationId,
    operationName: op,
    properties: props,
    resourceGroupName: t.resourceGroup,
    resourceId: t.resourceId,
    resourceProviderName: ls(provider.provider),
    resourceType: ls(provider.type),
    status,
    subStatus,
    subscriptionId,
  };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const trimId = (id: string) => id.replace(/\/+$/, '').toLowerCase();

/**
 * Whether a record passes the filter: its timestamp in the range, and the optional clause.
 * Comparisons ignore case; `resourceUri` matches the resource and the resources under it (a scale
 * set's URI matches its instances).
 */
export function matchesFilter(f: ActivityFilter, ed: EventData): boolean {
  const ms = Date.parse(ed.eventTimestamp);
  if (!(ms >= f.fromMs && ms <= f.toMs)) return false;
  const c = f.clause;
  if (!c) return true;
  switch (c.field) {
    case 'resourceGroupName':
      return same(ed.resourceGroupName, c.value);
    case 'resourceUri': {
      const want = trimId(c.value);
      const have = trimId(ed.resourceId);
      return have === want || have.startsWith(want + '/');
    }
    case 'resourceProvider':
      return same(ed.resourceProviderName.value, c.value);
    case 'correlationId':
      return same(ed.correlationId, c.value);
    case 'caller':
      return same(ed.caller, c.value);
    case 'operationName':
      return same(ed.operationName.value, c.value);
  }
}

// ---- $select, $skiptoken ------------------------------------------------------------------------

/** Parses `$select` (a comma list of top-level EventData properties) into canonical names; null keeps all. */
export function parseSelect(text: string | undefined): string[] | null {
  if (text === undefined || text.trim() === '') return null;
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim();
    if (name === '') fail('The $select has an empty property name; give a comma-separated list such as caller,operationName,status.');
    const canonical = EVENT_DATA_FIELDS.find((f) => same(f, name));
    if (!canonical) fail(`The $select names '${name}', which is not an EventData property; use any of ${EVENT_DATA_FIELDS.join(', ')}.`);
    if (!out.includes(canonical)) out.push(canonical);
  }
  return out;
}

export function applySelect(ed: EventData, select: readonly string[] | null): Record<string, unknown> {
  if (!select) return ed as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of select) if (k in ed) out[k] = (ed as unknown as Record<string, unknown>)[k];
  return out;
}

/** The `$skiptoken` of a next page: the seq of the last event of the page before. */
export function parseSkipToken(text: string | undefined): number | null {
  if (text === undefined || text === '') return null;
  if (!/^\d{1,15}$/.test(text)) fail(`The $skiptoken '${text}' is not one this server issued; take nextLink as given.`);
  return Number(text);
}

/**
 * A release held or resumed fleet-wide: one entry on the release itself, shown in every subscription's
 * log (the fleet-wide verdict concerns them all); the reason and, for a verdict, its evidence.
 */
function releaseEventData(
  e: Extract<EngineEvent, { type: 'release.halted' | 'release.resumed' }>,
  base: Pick<EventData, 'description' | 'eventDataId' | 'eventTimestamp' | 'submissionTimestamp' | 'category'>,
  platform: string,
): EventData {
  const halted = e.type === 'release.halted';
  const a = e.artifact;
  const name = a.kind === 'guestPatch' ? `guestPatch/${a.os}` : a.kind === 'extension' ? `${a.publisher}/${a.type}` : `${a.publisher}/${a.offer}/${a.sku}`;
  const resourceId = `/providers/Phasewise/releases/${name}/versions/${e.toVersion}`;
  const withdrawn = e.type === 'release.halted' && e.kind === 'withdrawn';
  const op = withdrawn ? ls('Phasewise/releases/withdraw/action', 'Withdraw Version')
    : halted ? ls('Phasewise/releases/hold/action', 'Hold Release') : ls('Phasewise/releases/resume/action', 'Resume Release');
  const operationId = stableUuid(halted ? 'release-hold' : 'release-resume', e.seq);
  const props: Record<string, string> = { statusCode: 'OK', release: `${describeArtifactOf(a)} ${e.toVersion}`, reason: e.reason, eventSeq: String(e.seq) };
  if (e.type === 'release.halted') {
    props.holdKind = e.kind;
    if (e.evidence) props.evidence = JSON.stringify(e.evidence);
  }
  return {
    authorization: { action: op.value, scope: resourceId },
    caller: displayCaller(e.caller, platform),
    ...base,
    description: e.reason,
    claims: e.caller === platform || e.caller === 'phasewise' ? {} : { name: e.caller },
    correlationId: operationId,
    eventName: ls('EndRequest', 'End request'),
    id: `${resourceId}/events/${base.eventDataId}/ticks/${ticksOf(Date.parse(e.time))}`,
    level: halted ? 'Warning' : 'Informational',
    operationId,
    operationName: op,
    properties: props,
    resourceGroupName: '',
    resourceId,
    resourceProviderName: ls('Phasewise'),
    resourceType: ls('Phasewise/releases'),
    status: ls('Succeeded'),
    subStatus: ls('OK', 'OK (HTTP Status Code: 200)'),
    subscriptionId: '',
  };
}

const ROLLOUT_OPS = {
  'rollout.paused': ['Phasewise/rollouts/pause/action', 'Pause Rollout'],
  'rollout.resumed': ['Phasewise/rollouts/resume/action', 'Resume Rollout'],
  'rollout.cancelled': ['Phasewise/rollouts/cancel/action', 'Cancel Rollout'],
} as const;

/** An operator paused, resumed or cancelled a rollout: one entry on the rollout, with the caller. */
function rolloutControlEventData(
  e: Extract<EngineEvent, { type: 'rollout.paused' | 'rollout.resumed' | 'rollout.cancelled' }>,
  base: Pick<EventData, 'description' | 'eventDataId' | 'eventTimestamp' | 'submissionTimestamp' | 'category'>,
  platform: string,
): EventData {
  const resourceId = `/providers/Phasewise/rollouts/${e.rolloutId}`;
  const [value, localized] = ROLLOUT_OPS[e.type];
  const caller = e.caller ?? platform;
  return {
    authorization: { action: value, scope: resourceId },
    caller: displayCaller(caller, platform),
    ...base,
    description: e.reason,
    claims: caller === platform ? {} : { name: caller },
    correlationId: e.rolloutId,
    eventName: ls('EndRequest', 'End request'),
    id: `${resourceId}/events/${base.eventDataId}/ticks/${ticksOf(Date.parse(e.time))}`,
    level: e.type === 'rollout.resumed' ? 'Informational' : 'Warning',
    operationId: stableUuid(e.type, e.seq),
    operationName: ls(value, localized),
    properties: { statusCode: 'OK', rolloutId: e.rolloutId, reason: e.reason, eventSeq: String(e.seq) },
    resourceGroupName: '',
    resourceId,
    resourceProviderName: ls('Phasewise'),
    resourceType: ls('Phasewise/rollouts'),
    status: ls('Succeeded'),
    subStatus: ls('OK', 'OK (HTTP Status Code: 200)'),
    subscriptionId: '',
  };
}

/**
 * Guest patching on a machine (issue 16): installation begin/end, skips, reboot notices (R83), and
 * availability impacts (R84, category ResourceHealth). Schedules run as the platform; on-demand runs
 * record their caller in the run's reason.
 */
function patchEventData(
  e: Extract<EngineEvent, { type: 'patch.run.started' | 'patch.run.completed' | 'patch.run.skipped' | 'machine.reboot.announced' | 'availability.impact' }>,
  base: Pick<EventData, 'description' | 'eventDataId' | 'eventTimestamp' | 'submissionTimestamp' | 'category'>,
  t: EventTarget,
  platform: string,
): EventData {
  const provider = PROVIDERS[t.kind];
  const impact = e.type === 'availability.impact';
  const reboot = e.type === 'machine.reboot.announced';
  const action = impact ? 'Microsoft.ResourceHealth/availabilityStatuses/current' : reboot ? `${provider.type}/scheduledEvents/reboot` : `${provider.type}/installPatches/action`;
  const display = impact ? `Availability: ${e.cause}` : reboot ? 'Reboot announced' : 'Install OS update patches';
  const runId = ('runId' in e ? e.runId : undefined) ?? '';
  const operationId = stableUuid('patch', e.type === 'patch.run.completed' || e.type === 'patch.run.started' ? 'run' : e.type, runId, e.machineId, e.seq * (e.type.startsWith('patch.run.') ? 0 : 1));
  const props: Record<string, string> = { reason: e.reason, eventSeq: String(e.seq) };
  if ('configuration' in e && e.configuration) props.maintenanceConfiguration = e.configuration;
  if (runId) props.maintenanceRunId = runId;
  if (e.type === 'patch.run.completed') {
    Object.assign(props, { statusCode: 'OK', patchStatus: e.status, installed: String(e.installed), failed: String(e.failed), pending: String(e.pending), rebootStatus: e.rebootStatus,
      maintenanceWindowExceeded: String(e.maintenanceWindowExceeded) });
  }
  if (reboot) Object.assign(props, { eventType: 'Reboot', eventId: e.eventId, notBefore: e.notBefore });
  if (impact) Object.assign(props, { availabilityState: e.state, cause: e.cause, startTime: e.startTime, durationInSec: String(e.durationSec), planned: String(e.planned) });
  const begin = e.type === 'patch.run.started';
  const warn = e.type === 'patch.run.skipped' || impact || (e.type === 'patch.run.completed' && (e.failed > 0 || e.maintenanceWindowExceeded));
  return {
    authorization: { action, scope: t.resourceId },
    caller: displayCaller(platform, platform),
    ...base,
    category: impact ? ls('ResourceHealth', 'Resource Health') : base.category,
    description: e.reason,
    claims: {},
    correlationId: runId || operationId,
    eventName: begin ? ls('BeginRequest', 'Begin request') : ls('EndRequest', 'End request'),
    id: `${t.resourceId}/events/${base.eventDataId}/ticks/${ticksOf(Date.parse(e.time))}`,
    level: warn ? 'Warning' : 'Informational',
    operationId,
    operationName: ls(action, display),
    properties: props,
    resourceGroupName: t.resourceGroup,
    resourceId: t.resourceId,
    resourceProviderName: ls(provider.provider),
    resourceType: ls(provider.type),
    status: begin ? ls('Started') : e.type === 'patch.run.skipped' ? ls('Failed') : ls('Succeeded'),
    subStatus: begin || e.type === 'patch.run.skipped' ? ls('', '') : ls('OK', 'OK (HTTP Status Code: 200)'),
    subscriptionId: e.placement.subscription,
  };
}
