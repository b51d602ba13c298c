/**
 * R82: the activity log's pure parts. The `$filter` grammar (Azure's, plus `caller` and
 * `operationName`), `$select`, and the mapping of engine events to Azure Monitor's EventData, with the
 * operation name and who started each attempt.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EventData, EventTarget, MappingInput } from '../src/api/arm/activity-log.js';
import {
  ActivityLogError,
  applySelect,
  matchesFilter,
  operationFor,
  parseActivityFilter,
  parseSelect,
  parseSkipToken,
  parseTimestamp,
  PLATFORM_DISPLAY_NAME,
  stableUuid,
  targetFromArmId,
  ticksOf,
  toEventData,
} from '../src/api/arm/activity-log.js';
import type { EngineEvent } from '../src/model/events.js';
import type { Placement } from '../src/model/fleet.js';

const RANGE = "eventTimestamp ge '2026-01-01T00:00:00Z' and eventTimestamp le '2026-01-31T00:00:00Z'";

function rejects(filter: string | undefined, message: RegExp): void {
  assert.throws(
    () => parseActivityFilter(filter),
    (err: unknown) => {
      assert.ok(err instanceof ActivityLogError, `expected an ActivityLogError, got ${String(err)}`);
      assert.equal(err.code, 'BadRequest');
      assert.equal(err.status, 400);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('activity log $filter', () => {
  test('R82: the time range alone', () => {
    const f = parseActivityFilter(RANGE);
    assert.equal(f.from, '2026-01-01T00:00:00.000Z');
    assert.equal(f.to, '2026-01-31T00:00:00.000Z');
    assert.equal(f.fromMs, Date.parse('2026-01-01T00:00:00Z'));
    assert.equal(f.clause, null);
  });

  const clauses: Array<[string, string, string]> = [
    ['resourceGroupName', 'rg-web', 'resourceGroupName'],
    ['resourceUri', '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1', 'resourceUri'],
    ['resourceProvider', 'Microsoft.HybridCompute', 'resourceProvider'],
    ['correlationId', 'ro-7', 'correlationId'],
    ['caller', 'Azure Regional Service Manager', 'caller'],
    ['operationName', 'Microsoft.HybridCompute/machines/upgradeExtensions/action', 'operationName'],
  ];
  for (const [field, value, canonical] of clauses) {
    test(`R82: the range followed by ${field} eq`, () => {
      const f = parseActivityFilter(`${RANGE} and ${field} eq '${value}'`);
      assert.deepEqual(f.clause, { field: canonical, value });
    });
  }

  test('keywords and property names are case-insensitive', () => {
    const f = parseActivityFilter("EVENTTIMESTAMP GE '2026-01-01' AND eventtimestamp Le '2026-01-02' AnD CALLER EQ 'alice@contoso.com'");
    assert.deepEqual(f.clause, { field: 'caller', value: 'alice@contoso.com' });
    assert.equal(f.from, '2026-01-01T00:00:00.000Z');
    assert.equal(f.to, '2026-01-02T00:00:00.000Z');
  });

  test('clauses may come in any order, with any spacing', () => {
    const f = parseActivityFilter("  operationName eq 'x/write'   and eventTimestamp le '2026-01-02T00:00:00Z' and eventTimestamp ge '2026-01-01T00:00:00Z'  ");
    assert.deepEqual(f.clause, { field: 'operationName', value: 'x/write' });
  });

  test("a quote inside a value is doubled (OData); values keep their case", () => {
    const f = parseActivityFilter(`${RANGE} and caller eq 'O''Brien'`);
    assert.deepEqual(f.clause, { field: 'caller', value: "O'Brien" });
  });

  test('timestamps: offsets, fractions up to 7 digits, dates alone, no offset means UTC', () => {
    assert.equal(parseTimestamp('2026-01-05T10:00:00+02:00'), Date.parse('2026-01-05T08:00:00Z'));
    assert.equal(parseTimestamp('2026-01-05T10:00:00.1234567Z'), Date.parse('2026-01-05T10:00:00.123Z'));
    assert.equal(parseTimestamp('2026-01-05T10:00'), Date.parse('2026-01-05T10:00:00Z'));
    assert.equal(parseTimestamp('2026-01-05'), Date.parse('2026-01-05T00:00:00Z'));
    assert.equal(parseTimestamp('2026-02-29'), null, '2026 is not a leap year');
    assert.equal(parseTimestamp('2024-02-29'), Date.parse('2024-02-29T00:00:00Z'));
    assert.equal(parseTimestamp('2026-13-01'), null);
    assert.equal(parseTimestamp('yesterday'), null);
  });

  test('a range of one instant is allowed', () => {
    const f = parseActivityFilter("eventTimestamp ge '2026-01-01T00:00:00Z' and eventTimestamp le '2026-01-01T00:00:00Z'");
    assert.equal(f.fromMs, f.toMs);
  });

  const invalid: Array<[string, string | undefined, RegExp]> = [
    ['missing', undefined, /\$filter query parameter is required/],
    ['blank', '   ', /\$filter query parameter is required/],
    ['no end of the range', "eventTimestamp ge '2026-01-01'", /must give the end of the range: eventTimestamp le/],
    ['no start of the range', "eventTimestamp le '2026-01-01'", /must give the start of the range: eventTimestamp ge/],
    ['only another clause', "caller eq 'bob'", /must give the start of the range/],
    ['start given twice', "eventTimestamp ge '2026-01-01' and eventTimestamp ge '2026-01-02' and eventTimestamp le '2026-01-03'", /eventTimestamp ge twice/],
    ['end given twice', "eventTimestamp le '2026-01-01' and eventTimestamp le '2026-01-02' and eventTimestamp ge '2025-01-03'", /eventTimestamp le twice/],
    ['wrong operator on the timestamp', "eventTimestamp eq '2026-01-01' and eventTimestamp le '2026-01-02'", /eventTimestamp takes the operators ge and le, not 'eq'/],
    ['gt instead of ge', "eventTimestamp gt '2026-01-01' and eventTimestamp le '2026-01-02'", /not 'gt'/],
    ['not a timestamp', "eventTimestamp ge 'last tuesday' and eventTimestamp le '2026-01-02'", /'last tuesday' \(eventTimestamp ge\) is not an ISO 8601 timestamp/],
    ['a day that does not exist', "eventTimestamp ge '2026-02-30' and eventTimestamp le '2026-03-02'", /'2026-02-30' \(eventTimestamp ge\) is not an ISO 8601 timestamp/],
    ['an empty range', "eventTimestamp ge '2026-02-01' and eventTimestamp le '2026-01-01'", /range is empty: the start '2026-02-01' is after the end '2026-01-01'/],
    ['unknown property', `${RANGE} and level eq 'Error'`, /cannot filter on 'level'; after the eventTimestamp range it takes one of resourceGroupName, resourceUri, resourceProvider, correlationId, caller, operationName/],
    ['wrong operator on a property', `${RANGE} and caller ne 'bob'`, /caller takes the operator eq, not 'ne'/],
    ['two clauses after the range', `${RANGE} and caller eq 'bob' and resourceGroupName eq 'rg'`, /only one clause after the eventTimestamp range; found caller and resourceGroupName/],
    ['or instead of and', "eventTimestamp ge '2026-01-01' or eventTimestamp le '2026-01-02'", /joins clauses with 'and' only \(position 32\): 'or' is not supported/],
    ['a missing joiner', "eventTimestamp ge '2026-01-01' eventTimestamp le '2026-01-02'", /joins clauses with 'and' only .*found 'eventTimestamp'/],
    ['a trailing and', `${RANGE} and`, /ends with 'and'/],
    ['an unquoted value', "eventTimestamp ge 2026 and eventTimestamp le '2026-01-02'", /unexpected character '2' at position 19/],
    ['a value missing', "eventTimestamp ge and eventTimestamp le '2026-01-02'", /expects a quoted value after 'eventTimestamp ge' at position 19, found 'and'/],
    ['an operator missing', "eventTimestamp '2026-01-01'", /expects an operator after 'eventTimestamp' at position 16/],
    ['an unterminated quote', "eventTimestamp le '2026-01-02' and eventTimestamp ge '2026-01-01", /quoted value starting at position \d+ that is never closed/],
    ['a stray character', `${RANGE} and (caller eq 'bob')`, /unexpected character '\(' at position/],
    ['a value where a property belongs', `'x' eq 'y'`, /expects a property name at position 1, found 'x'/],
    ['an empty value', `${RANGE} and caller eq ''`, /caller eq needs a non-empty value/],
  ];
  for (const [name, filter, message] of invalid) {
    test(`rejects ${name}`, () => rejects(filter, message));
  }
});

describe('activity log $select and $skiptoken', () => {
  test('names are matched without case and returned in canonical casing, once each', () => {
    assert.deepEqual(parseSelect('Caller, OPERATIONNAME,status,caller'), ['caller', 'operationName', 'status']);
    assert.equal(parseSelect(undefined), null);
    assert.equal(parseSelect(''), null);
  });

  test('an unknown or empty name is rejected with the name', () => {
    assert.throws(() => parseSelect('caller,who'), /\$select names 'who', which is not an EventData property/);
    assert.throws(() => parseSelect('caller,,status'), /empty property name/);
  });

  test('applySelect keeps only the chosen top-level properties', () => {
    const ed = { caller: 'a', level: 'Informational', status: { value: 'Started', localizedValue: 'Started' } } as unknown as EventData;
    assert.deepEqual(applySelect(ed, ['caller', 'status']), { caller: 'a', status: { value: 'Started', localizedValue: 'Started' } });
    assert.equal(applySelect(ed, null), ed);
  });

  test('skip tokens are sequence numbers', () => {
    assert.equal(parseSkipToken('42'), 42);
    assert.equal(parseSkipToken(undefined), null);
    assert.throws(() => parseSkipToken('abc'), (e: unknown) => e instanceof ActivityLogError && /\$skiptoken 'abc'/.test(e.message));
  });
});

// ---- mapping ------------------------------------------------------------------------------------

const SUB = '11111111-2222-3333-4444-555555555555';
const TIME = '2026-01-05T10:00:00.000Z';
const AGENT = { kind: 'extension' as const, publisher: 'Contoso', type: 'Agent' };

const placement = (setKind: Placement['setKind'] = 'none'): Placement => ({ region: 'eastus', zone: null, setId: setKind === 'scaleSet' ? 'web' : null, setKind, updateDomain: null, faultDomain: null, subscription: SUB });

const ARC: EventTarget = { kind: 'arc', resourceId: `/subscriptions/${SUB}/resourceGroups/rg-arc/providers/Microsoft.HybridCompute/machines/m1`, resourceGroup: 'rg-arc' };
const VM: EventTarget = { kind: 'vm', resourceId: `/subscriptions/${SUB}/resourceGroups/rg-vm/providers/Microsoft.Compute/virtualMachines/vm1`, resourceGroup: 'rg-vm' };
const VMSS: EventTarget = { kind: 'scaleSetInstance', resourceId: `/subscriptions/${SUB}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/3`, resourceGroup: 'rg-web' };

function attemptEvent(type: 'instance.upgrade.started' | 'instance.upgrade.succeeded' | 'instance.upgrade.failed' | 'instance.rollback.started' | 'instance.rollback.succeeded' | 'instance.rollback.failed', seq: number, extra: { reason?: string; attempt?: number } = {}): EngineEvent {
  return { seq, time: TIME, type, rolloutId: 'ro-3', batchId: 'b1', machineId: 'm1', placement: placement(), artifact: AGENT, attempt: extra.attempt ?? 1, fromVersion: '1.0.0.0', toVersion: '1.1.0.0', ...(extra.reason ? { reason: extra.reason } : {}) };
}

function map(input: Partial<MappingInput> & { event: EngineEvent }): EventData {
  const ed = toEventData({ target: ARC, rolloutCaller: 'platform', ...input });
  assert.ok(ed, 'expected the event to map');
  return ed;
}

describe('engine events as EventData', () => {
  test('R82: an automatic upgrade on an Arc machine is "Upgrade Extensions on Azure Arc machines" by Azure Regional Service Manager', () => {
    const begin = map({ event: attemptEvent('instance.upgrade.started', 10) });
    assert.deepEqual(begin.operationName, { value: 'Microsoft.HybridCompute/machines/upgradeExtensions/action', localizedValue: 'Upgrade Extensions on Azure Arc machines' });
    assert.equal(begin.caller, PLATFORM_DISPLAY_NAME);
    assert.deepEqual(begin.claims, {});
    assert.equal(begin.eventName.value, 'BeginRequest');
    assert.equal(begin.status.value, 'Started');
    assert.equal(begin.level, 'Informational');
    assert.equal(begin.category.value, 'Administrative');
    assert.equal(begin.correlationId, 'ro-3');
    assert.equal(begin.resourceId, ARC.resourceId);
    assert.equal(begin.resourceGroupName, 'rg-arc');
    assert.equal(begin.resourceProviderName.value, 'Microsoft.HybridCompute');
    assert.equal(begin.resourceType.value, 'Microsoft.HybridCompute/machines');
    assert.equal(begin.subscriptionId, SUB);
    assert.equal(begin.eventTimestamp, TIME);
    assert.equal(begin.submissionTimestamp, TIME);
    assert.deepEqual(begin.authorization, { action: 'Microsoft.HybridCompute/machines/upgradeExtensions/action', scope: ARC.resourceId });
    assert.equal(begin.eventDataId, stableUuid('phasewise-event', 10));
    assert.equal(begin.id, `${ARC.resourceId}/events/${begin.eventDataId}/ticks/${ticksOf(Date.parse(TIME))}`);
    assert.equal(begin.properties.extension, 'Contoso.Agent');
    assert.equal(begin.properties.fromVersion, '1.0.0.0');
    assert.equal(begin.properties.toVersion, '1.1.0.0');
    assert.equal(begin.properties.eventSeq, '10');

    const end = map({ event: attemptEvent('instance.upgrade.succeeded', 11) });
    assert.equal(end.eventName.value, 'EndRequest');
    assert.equal(end.status.value, 'Succeeded');
    assert.equal(end.subStatus.value, 'OK');
    assert.equal(end.operationId, begin.operationId, 'begin and end of one attempt share the operation id');
    assert.notEqual(end.eventDataId, begin.eventDataId);
  });

  test('R82: a manual upgrade names the user who started it', () => {
    const ed = map({ event: attemptEvent('instance.upgrade.started', 10), rolloutCaller: 'alice@contoso.com' });
    assert.equal(ed.caller, 'alice@contoso.com');
    assert.deepEqual(ed.claims, { name: 'alice@contoso.com' });
  });

  test('R82: a configured platform caller also shows as Azure Regional Service Manager', () => {
    const ed = map({ event: attemptEvent('instance.upgrade.started', 10), rolloutCaller: 'phasewise', platformCaller: 'phasewise' });
    assert.equal(ed.caller, PLATFORM_DISPLAY_NAME);
  });

  test('R82: operation names by kind of machine', () => {
    assert.equal(map({ event: attemptEvent('instance.upgrade.started', 1), target: VM }).operationName.value, 'Microsoft.Compute/virtualMachines/extensions/write');
    assert.equal(map({ event: attemptEvent('instance.upgrade.started', 1), target: VMSS }).operationName.value, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions/write');
    const vmss = map({ event: attemptEvent('instance.upgrade.started', 1), target: VMSS });
    assert.equal(vmss.resourceType.value, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines');
    assert.equal(vmss.resourceProviderName.value, 'Microsoft.Compute');
  });

  test('a failed attempt is an Error with its reason; its rollback has its own operation and id', () => {
    const failed = map({ event: attemptEvent('instance.upgrade.failed', 12, { reason: 'unhealthy after 5 minutes' }), target: VM });
    assert.equal(failed.status.value, 'Failed');
    assert.equal(failed.level, 'Error');
    assert.equal(failed.properties.statusMessage, 'unhealthy after 5 minutes');

    const rb = map({ event: attemptEvent('instance.rollback.started', 13), target: VM });
    assert.equal(rb.operationName.value, 'Microsoft.Compute/virtualMachines/extensions/rollback/action');
    assert.equal(rb.level, 'Warning');
    assert.equal(rb.correlationId, 'ro-3');
    assert.notEqual(rb.operationId, failed.operationId);
    assert.equal(map({ event: attemptEvent('instance.rollback.succeeded', 14), target: VM }).operationId, rb.operationId);
    assert.equal(map({ event: attemptEvent('instance.rollback.failed', 15), target: VM }).level, 'Error');
    assert.equal(operationFor('arc', 'rollback').value, 'Microsoft.HybridCompute/machines/extensions/rollback/action');
  });

  test('a retry is a new operation in the same rollout', () => {
    const first = map({ event: attemptEvent('instance.upgrade.started', 10, { attempt: 1 }) });
    const second = map({ event: attemptEvent('instance.upgrade.started', 40, { attempt: 2 }) });
    assert.notEqual(first.operationId, second.operationId);
    assert.equal(first.correlationId, second.correlationId);
  });

  test('installs are extension writes by their caller, begin and end paired by the start event', () => {
    const start: EngineEvent = { seq: 20, time: TIME, type: 'instance.install.started', machineId: 'm1', placement: placement(), artifact: AGENT, fromVersion: '', toVersion: '1.1.0.0', caller: 'bob', reason: 'created' };
    const end: EngineEvent = { ...start, seq: 25, type: 'instance.install.succeeded' };
    const a = map({ event: start, target: ARC });
    const b = map({ event: end, target: ARC, installStartSeq: 20 });
    assert.equal(a.operationName.value, 'Microsoft.HybridCompute/machines/extensions/write');
    assert.equal(a.caller, 'bob');
    assert.equal(a.operationId, b.operationId);
    assert.equal(a.correlationId, a.operationId);
    assert.equal(b.status.value, 'Succeeded');
    const vm = map({ event: start, target: VM });
    assert.equal(vm.operationName.value, 'Microsoft.Compute/virtualMachines/extensions/write');
  });

  test('opt-in changes, removals and OS image upgrades', () => {
    const optOut: EngineEvent = { seq: 30, time: TIME, type: 'autoUpgrade.changed', machineId: 'vm1', artifactKey: 'extension:contoso.agent', enabled: false, caller: 'carol' };
    const ed = map({ event: optOut, target: VM });
    assert.equal(ed.operationName.value, 'Microsoft.Compute/virtualMachines/extensions/write');
    assert.equal(ed.caller, 'carol');
    assert.equal(ed.properties.enableAutomaticUpgrade, 'false');
    assert.equal(ed.properties.extension, 'contoso.agent');
    assert.equal(ed.subscriptionId, SUB, 'the event carries no placement: the subscription of its resource');

    const removed: EngineEvent = { seq: 31, time: TIME, type: 'instance.removed', machineId: 'vm1', placement: placement(), artifact: AGENT, version: '1.1.0.0', caller: 'carol', reason: 'deleted' };
    assert.equal(map({ event: removed, target: VM }).operationName.value, 'Microsoft.Compute/virtualMachines/extensions/delete');

    const image = { ...attemptEvent('instance.upgrade.started', 32), artifact: { kind: 'osImage' as const, publisher: 'Canonical', offer: 'ubuntu', sku: '24_04' } } as EngineEvent;
    const reimage = map({ event: image, target: VMSS });
    assert.equal(reimage.operationName.value, 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/reimage/action');
    assert.equal(reimage.properties.image, 'Canonical:ubuntu:24_04');
  });

  test('R7: enrollment changes are feature registrations of the subscription', () => {
    const e: EngineEvent = { seq: 50, time: TIME, type: 'enrollment.changed', subscription: SUB, enrolled: true, caller: 'dave', reason: 'registered' };
    const ed = toEventData({ event: e, target: null });
    assert.ok(ed);
    assert.equal(ed.operationName.value, 'Microsoft.Features/providers/features/register/action');
    assert.equal(ed.resourceId, `/subscriptions/${SUB}/providers/Microsoft.Features/providers/Microsoft.Compute/features/VMSSExtensionAutomaticUpgrade`);
    assert.equal(ed.caller, 'dave');
    assert.equal(ed.subscriptionId, SUB);
    const off = toEventData({ event: { ...e, enrolled: false }, target: null });
    assert.equal(off?.operationName.value, 'Microsoft.Features/providers/features/unregister/action');
  });

  test('events the log does not show, and instance events without a target, map to null', () => {
    const created: EngineEvent = { seq: 1, time: TIME, type: 'rollout.created', rolloutId: 'ro-1', artifact: AGENT, toVersion: '1.1.0.0', profile: 'standard', phases: [], eligible: 1, reason: '' };
    assert.equal(toEventData({ event: created, target: ARC }), null);
    assert.equal(toEventData({ event: attemptEvent('instance.upgrade.started', 2), target: null }), null);
  });

  test('ids are stable and UUID-shaped; ticks are .NET ticks', () => {
    assert.equal(stableUuid('a', 1), stableUuid('a', 1));
    assert.notEqual(stableUuid('a', 1), stableUuid('a', 2));
    assert.match(stableUuid('x'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(ticksOf(0), '621355968000000000');
    assert.equal(ticksOf(Date.parse('2026-01-01T00:00:00Z')), '639028224000000000');
  });

  test('machine ids that are ARM ids name their resource', () => {
    assert.deepEqual(targetFromArmId('/subscriptions/s/resourcegroups/RG/providers/microsoft.compute/virtualmachines/vm1'), { kind: 'vm', resourceId: '/subscriptions/s/resourcegroups/RG/providers/microsoft.compute/virtualmachines/vm1', resourceGroup: 'RG' });
    assert.equal(targetFromArmId('/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web/virtualMachines/0')?.kind, 'scaleSetInstance');
    assert.equal(targetFromArmId('/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m1')?.kind, 'arc');
    assert.equal(targetFromArmId('web-eus_3'), null);
    assert.equal(targetFromArmId('/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x'), null);
  });
});

describe('matching EventData against a filter', () => {
  const ed = map({ event: attemptEvent('instance.upgrade.started', 10), target: VMSS });
  const withClause = (clause: string) => parseActivityFilter(`${RANGE} and ${clause}`);

  test('R82: by operation name and by who started it, ignoring case', () => {
    assert.ok(matchesFilter(withClause("operationName eq 'microsoft.compute/virtualmachinescalesets/virtualmachines/extensions/WRITE'"), ed));
    assert.ok(!matchesFilter(withClause("operationName eq 'Microsoft.Compute/virtualMachines/extensions/write'"), ed));
    assert.ok(matchesFilter(withClause("caller eq 'azure regional service manager'"), ed));
    assert.ok(!matchesFilter(withClause("caller eq 'alice'"), ed));
  });

  test('by resource group, provider and correlation id', () => {
    assert.ok(matchesFilter(withClause("resourceGroupName eq 'RG-WEB'"), ed));
    assert.ok(!matchesFilter(withClause("resourceGroupName eq 'rg-vm'"), ed));
    assert.ok(matchesFilter(withClause("resourceProvider eq 'microsoft.compute'"), ed));
    assert.ok(!matchesFilter(withClause("resourceProvider eq 'Microsoft.HybridCompute'"), ed));
    assert.ok(matchesFilter(withClause("correlationId eq 'RO-3'"), ed));
    assert.ok(!matchesFilter(withClause("correlationId eq 'ro-30'"), ed));
  });

  test('resourceUri matches the resource and what is under it, not a sibling with a longer name', () => {
    const set = `/subscriptions/${SUB}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachineScaleSets/web`;
    assert.ok(matchesFilter(withClause(`resourceUri eq '${VMSS.resourceId}'`), ed));
    assert.ok(matchesFilter(withClause(`resourceUri eq '${set.toUpperCase()}/'`), ed));
    assert.ok(!matchesFilter(withClause(`resourceUri eq '${set}2'`), ed));
  });

  test('the time range is inclusive at both ends', () => {
    assert.ok(matchesFilter(parseActivityFilter(`eventTimestamp ge '${TIME}' and eventTimestamp le '${TIME}'`), ed));
    assert.ok(!matchesFilter(parseActivityFilter("eventTimestamp ge '2026-01-05T10:00:00.001Z' and eventTimestamp le '2026-01-06'"), ed));
    assert.ok(!matchesFilter(parseActivityFilter("eventTimestamp ge '2026-01-01' and eventTimestamp le '2026-01-05T09:59:59.999Z'"), ed));
  });
});
