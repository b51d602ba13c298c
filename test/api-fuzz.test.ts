/**
 * Bad input gets a clear error and changes nothing. A real server (HTTPS, SQLite, the simulated fleet)
 * is seeded with a resource group, an extension type with versions, a VM, a scale set and an Arc
 * machine, each with an extension; then seeded fast-check properties send it thousands of malformed
 * requests on every write route. Each answer must be a 4xx with an ARM error body
 * (`{"error":{"code","message"}}`, JSON), and no request may change anything: the engine's fleet,
 * catalog, rollouts and event log and the API's documents are compared before and after every request,
 * and every resource read through the API is compared before and after the whole run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { call, eventually, PUBLISHER_TOKEN, READER_TOKEN, startTestServer, TEST_TOKEN } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'sub1';
const RG = 'rg1';
const MAX_BODY = 64 * 1024;
const AMA = { publisher: 'Microsoft.Azure.Monitor', type: 'AzureMonitorLinuxAgent' };
const AMA_KEY = `${AMA.publisher}.${AMA.type}`;
const API = 'api-version=2026-03-01';
const RGP = `/subscriptions/${SUB}/resourceGroups/${RG}`;
const VM = `${RGP}/providers/Microsoft.Compute/virtualMachines`;
const VMSS = `${RGP}/providers/Microsoft.Compute/virtualMachineScaleSets`;
const ARC = `${RGP}/providers/Microsoft.HybridCompute/machines`;
const TYPES = `/phasewise/publishers/${AMA.publisher}/extensionTypes`;
const IMAGES = '/phasewise/images/publishers/Canonical/offers/ubuntu-24_04-lts/skus/server/versions';
const GALLERY = `/phasewise/subscriptions/${SUB}/resourceGroups/${RG}/galleries/corp_gallery`;
/** Versions as the API takes them: 1 to 4 numbers (a full version: 4), no leading zeros. */
const VERSION_PREFIX = /^(0|[1-9]\d{0,8})(\.(0|[1-9]\d{0,8})){0,3}$/;
const FULL_VERSION = /^(0|[1-9]\d{0,8})(\.(0|[1-9]\d{0,8})){3}$/;
/** Fixed seeds, so every run sends the same requests; PHASEWISE_FUZZ_SEED explores others, PHASEWISE_FUZZ_SCALE sends more. */
const SEED = Number(process.env.PHASEWISE_FUZZ_SEED ?? 1100);
const runs = (n: number) => Math.ceil(n * Number(process.env.PHASEWISE_FUZZ_SCALE ?? 1));

// ---- the write routes and valid bodies to break ------------------------------------------------------

/** `objectOrNull`: an object, or null for "none" (a resource's `tags`: JSON merge patch's remove, docs/api.md#tags). */
type Kind = 'string' | 'number' | 'boolean' | 'object' | 'array' | 'null' | 'objectOrNull';
type Path = Array<string | number>;
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface Route {
  name: string;
  method: 'PUT' | 'PATCH' | 'POST';
  /** Without the query string. */
  path: string;
  /** ARM routes need ?api-version=; Phasewise's own (/phasewise/...) do not. */
  arm: boolean;
  /** The role a write needs. */
  role: 'contributor' | 'publisher';
  /** A body of the right shape (null: the route takes none). */
  body: Json;
  /** Paths in the body whose type the server checks, with the type it expects ([] is the body itself). */
  typed: Array<[Path, Kind]>;
  /** Objects in the body whose schema is strict: an unknown property there is an error. */
  strict?: Path[];
}

const extensionProps = (typeHandlerVersion = '1.30'): { [k: string]: Json } => ({
  publisher: AMA.publisher, type: AMA.type, typeHandlerVersion, autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false,
  forceUpdateTag: 'fuzz', settings: { workspace: 'w1' }, protectedSettings: { key: 'secret' },
  protectedSettingsFromKeyVault: { secretUrl: 'https://vault.example/secrets/s', sourceVault: { id: `${RGP}/providers/Microsoft.KeyVault/vaults/v` } },
  provisionAfterExtensions: ['other'], suppressFailures: false,
});
const extensionBody = (): Json => ({ location: 'westus', tags: { team: 'fuzz' }, properties: extensionProps() });
const extensionTyped: Array<[Path, Kind]> = [
  [[], 'object'], [['location'], 'string'], [['tags'], 'objectOrNull'], [['tags', 'team'], 'string'], [['properties'], 'object'],
  [['properties', 'publisher'], 'string'], [['properties', 'type'], 'string'], [['properties', 'typeHandlerVersion'], 'string'],
  [['properties', 'autoUpgradeMinorVersion'], 'boolean'], [['properties', 'enableAutomaticUpgrade'], 'boolean'],
  [['properties', 'forceUpdateTag'], 'string'], [['properties', 'settings'], 'object'], [['properties', 'protectedSettings'], 'object'],
  [['properties', 'protectedSettingsFromKeyVault'], 'object'], [['properties', 'protectedSettingsFromKeyVault', 'secretUrl'], 'string'],
  [['properties', 'protectedSettingsFromKeyVault', 'sourceVault'], 'object'], [['properties', 'protectedSettingsFromKeyVault', 'sourceVault', 'id'], 'string'],
  [['properties', 'provisionAfterExtensions'], 'array'], [['properties', 'provisionAfterExtensions', 0], 'string'], [['properties', 'suppressFailures'], 'boolean'],
];
const modelExtensionTyped: Array<[Path, Kind]> = extensionTyped
  .filter(([p]) => p[0] === 'properties' || p.length === 0)
  .filter(([p]) => p[1] !== 'protectedSettingsFromKeyVault' && p[1] !== 'forceUpdateTag');

const vmssBody = (): { [k: string]: Json } => ({
  location: 'westus', tags: { team: 'fuzz' }, sku: { name: 'Standard_D2s_v5', tier: 'Standard', capacity: 2 },
  properties: {
    upgradePolicy: {
      mode: 'Manual',
      rollingUpgradePolicy: { maxBatchInstancePercent: 20, maxUnhealthyInstancePercent: 20, maxUnhealthyUpgradedInstancePercent: 20, pauseTimeBetweenBatches: 'PT0S', enableCrossZoneUpgrade: false, prioritizeUnhealthyInstances: false, rollbackFailedInstancesOnPolicyBreach: false, maxSurge: false },
      automaticOSUpgradePolicy: { enableAutomaticOSUpgrade: false, disableAutomaticRollback: false, useRollingUpgradePolicy: false, osRollingUpgradeDeferral: false },
    },
    virtualMachineProfile: {
      storageProfile: { imageReference: { publisher: 'Canonical', offer: 'ubuntu-24_04-lts', sku: 'server', version: 'latest' }, osDisk: { osType: 'Linux' } },
      osProfile: { computerNamePrefix: 'ss' },
      extensionProfile: { extensionsTimeBudget: 'PT1H30M', extensions: [{ name: 'ama', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30', autoUpgradeMinorVersion: false, enableAutomaticUpgrade: false, settings: {}, suppressFailures: false } }] },
    },
    orchestrationMode: 'Uniform', singlePlacementGroup: false, platformFaultDomainCount: 5,
  },
});
const UP = ['properties', 'upgradePolicy'];
const RP = [...UP, 'rollingUpgradePolicy'];
const OP = [...UP, 'automaticOSUpgradePolicy'];
const VMP = ['properties', 'virtualMachineProfile'];
const MX = [...VMP, 'extensionProfile', 'extensions', 0];
const vmssTyped: Array<[Path, Kind]> = [
  [[], 'object'], [['location'], 'string'], [['tags'], 'objectOrNull'], [['tags', 'team'], 'string'], [['zones'], 'array'], [['zones', 0], 'string'],
  [['sku'], 'object'], [['sku', 'name'], 'string'], [['sku', 'tier'], 'string'], [['sku', 'capacity'], 'number'],
  [['properties'], 'object'], [UP, 'object'], [[...UP, 'mode'], 'string'], [RP, 'object'],
  [[...RP, 'maxBatchInstancePercent'], 'number'], [[...RP, 'maxUnhealthyInstancePercent'], 'number'], [[...RP, 'maxUnhealthyUpgradedInstancePercent'], 'number'],
  [[...RP, 'pauseTimeBetweenBatches'], 'string'], [[...RP, 'enableCrossZoneUpgrade'], 'boolean'], [[...RP, 'prioritizeUnhealthyInstances'], 'boolean'],
  [[...RP, 'rollbackFailedInstancesOnPolicyBreach'], 'boolean'], [[...RP, 'maxSurge'], 'boolean'], [OP, 'object'],
  [[...OP, 'enableAutomaticOSUpgrade'], 'boolean'], [[...OP, 'disableAutomaticRollback'], 'boolean'], [[...OP, 'useRollingUpgradePolicy'], 'boolean'], [[...OP, 'osRollingUpgradeDeferral'], 'boolean'],
  [VMP, 'object'], [[...VMP, 'storageProfile'], 'object'], [[...VMP, 'storageProfile', 'imageReference'], 'object'], [[...VMP, 'storageProfile', 'imageReference', 'offer'], 'string'],
  [[...VMP, 'storageProfile', 'osDisk'], 'object'], [[...VMP, 'storageProfile', 'osDisk', 'osType'], 'string'], [[...VMP, 'osProfile'], 'object'],
  [[...VMP, 'extensionProfile'], 'object'], [[...VMP, 'extensionProfile', 'extensionsTimeBudget'], 'string'], [[...VMP, 'extensionProfile', 'extensions'], 'array'],
  [MX, 'object'], [[...MX, 'name'], 'string'], [[...MX, 'properties'], 'object'], [[...MX, 'properties', 'publisher'], 'string'], [[...MX, 'properties', 'type'], 'string'],
  [[...MX, 'properties', 'typeHandlerVersion'], 'string'], [[...MX, 'properties', 'enableAutomaticUpgrade'], 'boolean'], [[...MX, 'properties', 'settings'], 'object'],
  [['properties', 'orchestrationMode'], 'string'], [['properties', 'singlePlacementGroup'], 'boolean'], [['properties', 'platformFaultDomainCount'], 'number'],
];

const ROUTES: Route[] = [
  {
    name: 'resource group PUT', method: 'PUT', path: `/subscriptions/${SUB}/resourcegroups/${RG}`, arm: true, role: 'contributor',
    body: { location: 'westus', tags: { env: 'fuzz' }, properties: {}, managedBy: 'someone' },
    typed: [[[], 'object'], [['location'], 'string'], [['tags'], 'objectOrNull'], [['tags', 'env'], 'string'], [['properties'], 'object'], [['managedBy'], 'string']],
  },
  ...['vm1', 'vm-new'].map((name): Route => ({
    name: `VM PUT (${name})`, method: 'PUT', path: `${VM}/${name}`, arm: true, role: 'contributor',
    body: { location: 'westus', tags: { team: 'fuzz' }, zones: ['1'], properties: { storageProfile: { osDisk: { osType: 'Linux' } }, osProfile: { computerName: name } } },
    typed: [
      [[], 'object'], [['location'], 'string'], [['tags'], 'objectOrNull'], [['tags', 'team'], 'string'], [['zones'], 'array'], [['zones', 0], 'string'],
      [['properties'], 'object'], [['properties', 'availabilitySet'], 'object'], [['properties', 'availabilitySet', 'id'], 'string'],
      [['properties', 'storageProfile'], 'object'], [['properties', 'storageProfile', 'osDisk'], 'object'], [['properties', 'storageProfile', 'osDisk', 'osType'], 'string'],
      [['properties', 'osProfile'], 'object'],
    ],
  })),
  ...(['PUT', 'PATCH'] as const).flatMap((method): Route[] => [
    // A PATCH has no location: one in the body is ignored, as ARM ignores unknown properties.
    ...[['VM', `${VM}/vm1`], ['scale-set instance', `${VMSS}/ss1/virtualMachines/0`], ['Arc', `${ARC}/arc1`]].map(([what, machine]): Route => ({
      name: `${what} extension ${method}`, method, path: `${machine}/extensions/ama`, arm: true, role: 'contributor', body: extensionBody(),
      typed: method === 'PUT' ? extensionTyped : extensionTyped.filter(([p]) => p[0] !== 'location'),
    })),
    {
      name: `scale-set model extension ${method}`, method, path: `${VMSS}/ss1/extensions/ama`, arm: true, role: 'contributor',
      body: { properties: (({ protectedSettingsFromKeyVault: _k, forceUpdateTag: _f, ...rest }) => rest)(extensionProps()) }, typed: modelExtensionTyped,
    },
    {
      name: `scale set ${method}`, method, path: `${VMSS}/ss1`, arm: true, role: 'contributor',
      body: method === 'PUT' ? vmssBody() : (({ location: _l, ...rest }) => rest)(vmssBody()),
      // A scale set's PATCH checks `location` and `zones` as its PUT does (they cannot change: 409 when they differ).
      typed: vmssTyped,
      strict: [UP, RP, OP],
    },
  ]),
  {
    name: 'Arc machine PUT', method: 'PUT', path: `${ARC}/arc1`, arm: true, role: 'contributor',
    body: { location: 'westus', tags: { team: 'fuzz' }, properties: { osType: 'linux' } },
    typed: [[[], 'object'], [['location'], 'string'], [['tags'], 'objectOrNull'], [['tags', 'team'], 'string'], [['properties'], 'object'], [['properties', 'osType'], 'string']],
  },
  {
    name: 'upgradeExtensions', method: 'POST', path: `${ARC}/arc1/upgradeExtensions`, arm: true, role: 'contributor',
    body: { extensionTargets: { [AMA_KEY]: { targetVersion: '2.0' } } },
    typed: [[[], 'object'], [['extensionTargets'], 'object'], [['extensionTargets', AMA_KEY], 'object'], [['extensionTargets', AMA_KEY, 'targetVersion'], 'string']],
    strict: [[], ['extensionTargets', AMA_KEY]],
  },
  {
    // PT5H is out of range: whatever else a mutation leaves, nothing is installed.
    name: 'installPatches', method: 'POST', path: `${VM}/vm1/installPatches`, arm: true, role: 'contributor',
    body: { maximumDuration: 'PT5H', rebootSetting: 'IfRequired', linuxParameters: { classificationsToInclude: ['Critical'], packageNameMasksToInclude: ['openssl*'] } },
    typed: [
      [[], 'object'], [['maximumDuration'], 'string'], [['rebootSetting'], 'string'], [['linuxParameters'], 'object'],
      [['linuxParameters', 'classificationsToInclude'], 'array'], [['linuxParameters', 'classificationsToInclude', 0], 'string'],
      [['linuxParameters', 'packageNameMasksToInclude'], 'array'], [['linuxParameters', 'packageNameMasksToInclude', 0], 'string'],
    ],
    strict: [[], ['linuxParameters']],
  },
  {
    name: 'manualupgrade', method: 'POST', path: `${VMSS}/ss1/manualupgrade`, arm: true, role: 'contributor',
    body: { instanceIds: ['0', '7'] },
    typed: [[[], 'object'], [['instanceIds'], 'array'], [['instanceIds', 0], 'string']],
    strict: [[]],
  },
  ...['1.30.0.0', '1.99.0.0'].map((version): Route => ({
    name: `publisher version PUT (${version})`, method: 'PUT', path: `${TYPES}/${AMA.type}/versions/${version}`, arm: false, role: 'publisher',
    body: { os: ['linux'], critical: false, digest: `sha256:${'a'.repeat(64)}`, regions: ['westus'] },
    // `regions` may be null (every region), so null is no wrong type there.
    typed: [[[], 'object'], [['os'], 'array'], [['os', 0], 'string'], [['critical'], 'boolean'], [['digest'], 'string'], [['regions', 0], 'string']],
    strict: [[]],
  })),
  {
    name: 'publisher type PUT', method: 'PUT', path: `${TYPES}/${AMA.type}`, arm: false, role: 'publisher',
    body: { supportsAutomaticUpgrade: false }, typed: [[[], 'object'], [['supportsAutomaticUpgrade'], 'boolean']], strict: [[]],
  },
  // The image publisher API: platform versions, galleries, image definitions, gallery versions, replications.
  {
    name: 'image version PUT', method: 'PUT', path: `${IMAGES}/24.04.202601010`, arm: false, role: 'publisher',
    body: { osType: 'Linux', hyperVGeneration: 'V2', automaticOSUpgradeSupported: true },
    typed: [[[], 'object'], [['osType'], 'string'], [['hyperVGeneration'], 'string'], [['automaticOSUpgradeSupported'], 'boolean']],
    strict: [[]],
  },
  {
    name: 'image replication PUT', method: 'PUT', path: `${IMAGES}/24.04.202601010/replications/westus`, arm: false, role: 'publisher',
    // `completedAt` may be null (under way), so null is no wrong type there.
    body: { completedAt: '2026-01-01T00:00:00Z' }, typed: [[[], 'object']], strict: [[]],
  },
  {
    name: 'gallery PUT', method: 'PUT', path: GALLERY, arm: false, role: 'publisher',
    body: { location: 'westus' }, typed: [[[], 'object'], [['location'], 'string']], strict: [[]],
  },
  {
    name: 'gallery image PUT', method: 'PUT', path: `${GALLERY}/images/web`, arm: false, role: 'publisher',
    body: { osType: 'Linux', hyperVGeneration: 'V2', identifier: { publisher: 'Contoso', offer: 'web', sku: 'v1' } },
    typed: [[[], 'object'], [['osType'], 'string'], [['hyperVGeneration'], 'string'], [['identifier'], 'object'], [['identifier', 'publisher'], 'string'], [['identifier', 'offer'], 'string'], [['identifier', 'sku'], 'string']],
    strict: [[], ['identifier']],
  },
  {
    name: 'gallery version PUT', method: 'PUT', path: `${GALLERY}/images/web/versions/1.0.0`, arm: false, role: 'publisher',
    body: { excludeFromLatest: false }, typed: [[[], 'object'], [['excludeFromLatest'], 'boolean']], strict: [[]],
  },
  {
    name: 'feature register', method: 'POST', path: `/subscriptions/${SUB}/providers/Microsoft.Features/providers/Microsoft.Compute/features/AutomaticExtensionUpgradePreview/register`,
    arm: true, role: 'contributor', body: null, typed: [],
  },
];

const routesWithBody = ROUTES.filter((r) => r.body !== null);
const byName = (name: string): Route => ROUTES.find((r) => r.name === name)!;

// ---- requests and what every answer must be --------------------------------------------------------

let sent = 0;

interface Request {
  method: string;
  path: string;
  query?: string | null;
  body?: string;
  contentType?: string | null;
  /** The Authorization header; undefined: the full-rights test token; null: none. */
  authorization?: string | null;
  /** Send the body as a stream (chunked, no Content-Length). */
  stream?: boolean;
  /** Other headers (Content-Encoding). */
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

async function send(s: TestServer, r: Request): Promise<Answer> {
  const headers: Record<string, string> = {};
  const auth = r.authorization === undefined ? `Bearer ${TEST_TOKEN}` : r.authorization;
  if (auth !== null) headers.authorization = auth;
  if (r.body !== undefined && r.contentType !== null) headers['content-type'] = r.contentType ?? 'application/json';
  Object.assign(headers, r.headers ?? {});
  const init: RequestInit & { duplex?: 'half' } = { method: r.method, headers };
  if (r.body !== undefined) {
    if (r.stream) {
      const bytes = new TextEncoder().encode(r.body);
      init.body = new ReadableStream<Uint8Array>({
        start(c) {
          for (let i = 0; i < bytes.length; i += 16 * 1024) c.enqueue(bytes.subarray(i, i + 16 * 1024));
          c.close();
        },
      });
      init.duplex = 'half';
    } else {
      init.body = r.body;
    }
  }
  const query = r.query === undefined ? API : r.query;
  sent++;
  const res = await fetch(`${s.url}${r.path}${query ? `?${query}` : ''}`, init);
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
}

const describeRequest = (r: Request) => `${r.method} ${r.path}${r.query === undefined ? `?${API}` : r.query ? `?${r.query}` : ''}${r.authorization !== undefined ? ` [Authorization: ${r.authorization === null ? 'none' : JSON.stringify(r.authorization.slice(0, 60))}]` : ''}${r.contentType ? ` [Content-Type: ${r.contentType}]` : ''}${r.stream ? ' [chunked]' : ''} ${r.body === undefined ? '(no body)' : r.body.length > 300 ? `${r.body.slice(0, 300)}… (${r.body.length} bytes)` : r.body}`;

interface Expect {
  status?: number;
  code?: string | RegExp;
  /** The message names this (a property, a version). */
  mentions?: RegExp;
}

/**
 * Sends a request that must be rejected and checks the answer: a 4xx, JSON, `{"error":{code,message}}`,
 * and the engine and the documents exactly as before the request.
 */
async function rejects(s: TestServer, r: Request, want: Expect = {}): Promise<void> {
  const before = fingerprint(s);
  const a = await send(s, r);
  const where = `${describeRequest(r)}\n  → ${a.status} ${a.contentType} ${a.text.slice(0, 400)}`;
  assert.ok(a.status >= 400 && a.status < 500, `expected a 4xx: ${where}`);
  if (want.status !== undefined) assert.equal(a.status, want.status, `expected ${want.status}: ${where}`);
  assert.match(a.contentType, /^application\/json\b/, `expected a JSON answer: ${where}`);
  let body: unknown;
  assert.doesNotThrow(() => { body = JSON.parse(a.text); }, `expected a JSON body: ${where}`);
  assert.ok(isArmError(body), `expected {"error":{"code","message"}}: ${where}`);
  const error = (body as { error: { code: string; message: string } }).error;
  if (want.code !== undefined) {
    if (typeof want.code === 'string') assert.equal(error.code, want.code, `expected code ${want.code}: ${where}`);
    else assert.match(error.code, want.code, `expected code ${want.code}: ${where}`);
  }
  if (want.mentions) assert.match(error.message, want.mentions, `expected the message to name the problem: ${where}`);
  const now = fingerprint(s);
  if (now !== before) assert.fail(`the rejected request changed the server's state: ${where}\n  changed: ${stateDiff(before, now)}`);
}

function isArmError(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  if (Object.keys(body).join() !== 'error') return false;
  const e = (body as { error: unknown }).error;
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return typeof code === 'string' && code.length > 0 && typeof message === 'string' && message.length > 0;
}

/** Which parts of two fingerprints differ, before → after. */
function stateDiff(before: string, after: string): string {
  const a = JSON.parse(before) as Record<string, unknown>;
  const b = JSON.parse(after) as Record<string, unknown>;
  return Object.keys(a)
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => {
      const x = JSON.stringify(a[k]);
      const y = JSON.stringify(b[k]);
      let i = 0;
      while (i < x.length && x[i] === y[i]) i++;
      const from = Math.max(0, i - 120);
      return `${k}: …${x.slice(from, i + 200)} → …${y.slice(from, i + 200)}`;
    })
    .join('\n    ');
}

// ---- the state that must not change ---------------------------------------------------------------

/** Everything a write could touch, read in-process: the engine's model and event log, the API's documents. */
function fingerprint(s: TestServer): string {
  const st = s.runtime.engine.state;
  const db = s.store.database;
  return JSON.stringify({
    regions: [...st.fleet.regions.values()],
    scaleSets: [...st.fleet.scaleSets.values()],
    availabilitySets: [...st.fleet.availabilitySets.values()],
    machines: [...st.fleet.machines.values()],
    instances: [...st.fleet.instances.values()].flatMap((byMachine) => [...byMachine.values()]),
    rollouts: [...st.rollouts.values()].map((r) => [r.id, r.status]),
    catalog: st.catalog.listTypes(),
    enrolled: [...st.enrolledSubscriptions],
    lastEvent: db.prepare('SELECT max(seq) AS seq FROM events').get(),
    // Not the simulated fleet's saved state: serve's own bookkeeping, written every few seconds.
    documents: db.prepare("SELECT key, kind, body FROM arm_documents WHERE key <> '/phasewise/simulator' ORDER BY key").all(),
  });
}

/** What a client sees: every seeded resource read through the API, clock-driven `time` fields dropped. */
const SNAPSHOT_GETS = [
  `/subscriptions/${SUB}/resourcegroups`, `/subscriptions/${SUB}/resourcegroups/${RG}`,
  `${VM}`, `${VM}/vm1?$expand=instanceView`, `${VM}/vm1/extensions?$expand=instanceView`, `${VM}/vm1/extensions/ama?$expand=instanceView`, `${VM}/vm-new`,
  `${VMSS}`, `${VMSS}/ss1`, `${VMSS}/ss1/instanceView`, `${VMSS}/ss1/virtualMachines?$expand=instanceView`, `${VMSS}/ss1/extensions`, `${VMSS}/ss1/extensions/ama`,
  `${VMSS}/ss1/virtualMachines/0/extensions/ama?$expand=instanceView`, `${VMSS}/ss1/virtualMachines/1/extensions/ama?$expand=instanceView`, `${VMSS}/ss1/rollingUpgrades/latest`,
  `${ARC}`, `${ARC}/arc1`, `${ARC}/arc1/extensions`, `${ARC}/arc1/extensions/ama`,
  `/subscriptions/${SUB}/providers/Microsoft.Features/features`,
  `${TYPES}`, `/phasewise/rollouts`,
];

async function apiSnapshot(s: TestServer): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const path of SNAPSHOT_GETS) {
    const r = await call(s.url, 'GET', `${path}${path.includes('?') ? '&' : '?'}${API}`);
    out[path] = { status: r.status, body: withoutClock(r.body) };
  }
  return out;
}

function withoutClock(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutClock);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'time' && k !== 'lastStatusChange').map(([k, x]) => [k, withoutClock(x)]));
}

function engineCounts(s: TestServer) {
  const st = s.runtime.engine.state;
  let instances = 0;
  for (const byMachine of st.fleet.instances.values()) instances += byMachine.size;
  const docs = s.store.database.prepare('SELECT count(*) AS n FROM arm_documents').get() as { n: number };
  return { machines: st.fleet.machines.size, instances, rollouts: st.rollouts.size, documents: docs.n };
}

// ---- generators --------------------------------------------------------------------------------------

const kindOf = (v: Json): Kind => (v === null ? 'null' : Array.isArray(v) ? 'array' : (typeof v as Kind));

/** A value of any JSON type (no NaN or infinities, which JSON would turn into null). */
const anyJson: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string({ maxLength: 12 }),
  fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
) as fc.Arbitrary<Json>;

function wrongTypeFor(kind: Kind): fc.Arbitrary<Json> {
  return anyJson.filter((v) => kindOf(v) !== kind && !(kind === 'objectOrNull' && (v === null || kindOf(v) === 'object')));
}

function clone<T extends Json>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** A copy of `body` with the value at `path` replaced (intermediate objects created as needed). */
function setAt(body: Json, path: Path, value: Json): Json {
  if (path.length === 0) return value;
  const root = clone(body);
  let at = root as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) {
    if (typeof at[key] !== 'object' || at[key] === null) at[key] = {};
    at = at[key] as Record<string | number, Json>;
  }
  at[path[path.length - 1]!] = value;
  return root;
}

const notAVersion = fc
  .oneof(
    fc.constantFrom('', '1.', '.1', '1..30', '1.2.3.4.5', '1234567890', '1.30.', 'v1.30', '1.30-beta', ' 1.30', '1.30 ', '1,30', '-1', '1e3', '0x1F', '１.３０', '1.30\n', 'latest', '*', '1.*', 'NaN', 'Infinity', '1.2.3.4.', '1.30.0.0.0', '01.30', '1.030', '1.30.00', '00'),
    fc.string({ maxLength: 16 }),
    fc.array(fc.nat({ max: 99 }), { minLength: 5, maxLength: 7 }).map((xs) => xs.join('.')),
    fc.tuple(fc.nat({ max: 99 }), fc.constantFrom('.', '..', '-', '_', '/', ' ', '+'), fc.nat({ max: 99 })).map(([a, sep, b]) => `${a}${sep}${b}`),
  )
  .filter((v) => !VERSION_PREFIX.test(v));

/** Not the name of anything seeded, and a valid resource name, so only its absence is wrong. */
const SEEDED = new Set(['sub1', 'rg1', 'vm1', 'vm-new', 'ss1', 'arc1', 'ama']);
const missingName = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/).filter((n) => !SEEDED.has(n));

// ---- the tests ---------------------------------------------------------------------------------------

describe('bad input gets a clear error and changes nothing', () => {
  let s: TestServer;
  let initialSnapshot: Record<string, unknown>;
  let initialCounts: ReturnType<typeof engineCounts>;
  let initialFingerprint: string;

  before(async () => {
    s = await startTestServer({ maxBodyBytes: MAX_BODY });
    const ok = async (method: string, path: string, body: unknown) => {
      const r = await call(s.url, method, path, body);
      assert.ok(r.status >= 200 && r.status < 300, `seeding ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await ok('PUT', `/subscriptions/${SUB}/resourcegroups/${RG}?api-version=2021-04-01`, { location: 'westus', tags: { env: 'test' } });
    await ok('PUT', `${TYPES}/${AMA.type}`, { supportsAutomaticUpgrade: true });
    await ok('PUT', `${TYPES}/${AMA.type}/versions/1.30.0.0`, { os: ['linux'] });
    // Another major, so upgradeExtensions has one to refuse.
    await ok('PUT', `${TYPES}/${AMA.type}/versions/2.0.0.0`, { os: ['linux'] });
    await ok('PUT', `${VM}/vm1?${API}`, { location: 'westus', tags: { role: 'web' } });
    await ok('PUT', `${VM}/vm1/extensions/ama?${API}`, { location: 'westus', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30', settings: { workspace: 'w0' } } });
    await ok('PUT', `${VMSS}/ss1?${API}`, {
      location: 'westus', sku: { name: 'Standard_D2s_v5', capacity: 2 },
      properties: { upgradePolicy: { mode: 'Manual' }, virtualMachineProfile: { extensionProfile: { extensions: [{ name: 'ama', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30' } }] } } },
    });
    await ok('PUT', `${ARC}/arc1?api-version=2021-05-20`, { location: 'westus', properties: { osType: 'linux' } });
    await ok('PUT', `${ARC}/arc1/extensions/ama?api-version=2021-05-20`, { location: 'westus', properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30' } });
    await eventually(async () => {
      const c = engineCounts(s);
      const all = [...s.runtime.engine.state.fleet.instances.values()].flatMap((m) => [...m.values()]);
      return c.machines === 4 && all.length === 4 && all.every((i) => i.status === 'Succeeded') && [...s.runtime.engine.state.rollouts.values()].every((r) => r.status !== 'running');
    }, 20_000, 'the seeded extensions to be installed');
    initialFingerprint = fingerprint(s);
    initialCounts = engineCounts(s);
    initialSnapshot = await apiSnapshot(s);
    // Nothing moves by itself once the seed has settled, so any change below is a request's doing.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fingerprint(s), initialFingerprint, 'the seeded server is at rest');
  });
  after(async () => s?.stop());

  /** The server still answers and the engine still runs. */
  async function alive(): Promise<void> {
    const r = await call(s.url, 'GET', `/subscriptions/${SUB}/resourcegroups/${RG}?${API}`);
    assert.equal(r.status, 200, 'the server still answers');
    assert.equal(s.runtime.engine.haltedBecause, null, 'the engine is not halted');
  }

  test('bad input: JSON that does not parse is a 400 InvalidRequestContent on every write route', async () => {
    const corrupt = fc.oneof(
      fc.nat().map((n) => (t: string) => t.slice(0, 1 + (n % Math.max(1, t.length - 1)))),
      fc.tuple(fc.nat(), fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'x', "'", '\u0000', ' , ')).map(([n, c]) => (t: string) => t.slice(0, n % t.length) + c + t.slice(n % t.length)),
      fc.constantFrom(
        (t: string) => t.replaceAll('"', "'"),
        (t: string) => `${t} x`,
        (t: string) => `${t}}`,
        (t: string) => `// comment\n${t}`,
        (t: string) => t.replace(/}$/, ',}'),
        (t: string) => t.replace(/:/, ':NaN,"x":'),
        () => '{"location":"westus",}',
        () => 'undefined',
        () => 'nul',
        () => '{{}}',
        () => '[1,2',
        () => '"unterminated',
      ),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), corrupt, fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/json'), async (route, f, contentType) => {
        const text = f(JSON.stringify(route.body ?? { any: 'thing' }));
        fc.pre(text.trim() !== '' && !parses(text));
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, body: text, contentType }, { status: 400, code: 'InvalidRequestContent' });
      }),
      { seed: SEED + 1, numRuns: runs(350), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: a body in another media type is a 415 UnsupportedMediaType', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.constantFrom('text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x'), async (route, contentType) => {
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(route.body ?? {}), contentType }, { status: 415, code: 'UnsupportedMediaType' });
      }),
      { seed: SEED + 2, numRuns: runs(100), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: a body compressed (Content-Encoding) or declared in a charset other than UTF-8 is a 415 UnsupportedMediaType, never read as plain UTF-8', async () => {
    const how = fc.oneof(
      fc.constantFrom('gzip', 'x-gzip', 'deflate', 'br', 'compress', 'zstd', 'gzip, identity').map((coding) => ({ headers: { 'content-encoding': coding } })),
      fc.constantFrom('latin1', 'ISO-8859-1', 'utf-16', 'windows-1252', '"utf-16le"', 'shift_jis').map((charset) => ({ contentType: `application/json; charset=${charset}` })),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routesWithBody), how, async (route, h) => {
        const r = { method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(route.body), ...h };
        await rejects(s, r, { status: 415, code: 'UnsupportedMediaType', mentions: /Content-Encoding|charset/ });
      }),
      { seed: SEED + 17, numRuns: runs(80), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: a wrong JSON type anywhere in a valid body is a 400 InvalidParameter', async () => {
    const mutation = fc.constantFrom(...routesWithBody).chain((route) =>
      fc.constantFrom(...route.typed).chain(([path, kind]) => wrongTypeFor(kind).map((value) => ({ route, body: setAt(route.body, path, value) }))),
    );
    await fc.assert(
      fc.asyncProperty(mutation, async ({ route, body }) => {
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(body) }, { status: 400 });
      }),
      { seed: SEED + 3, numRuns: runs(900), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: an unknown property where the schema is strict is a 400 InvalidParameter naming it', async () => {
    const strictRoutes = routesWithBody.filter((r) => r.strict?.length);
    const known = new Set(['extensionTargets', 'instanceIds', 'os', 'critical', 'digest', 'regions', 'supportsAutomaticUpgrade', 'mode', 'rollingUpgradePolicy', 'automaticOSUpgradePolicy', 'targetVersion',
      'maxBatchInstancePercent', 'maxUnhealthyInstancePercent', 'maxUnhealthyUpgradedInstancePercent', 'pauseTimeBetweenBatches', 'enableCrossZoneUpgrade', 'prioritizeUnhealthyInstances',
      'rollbackFailedInstancesOnPolicyBreach', 'maxSurge', 'enableAutomaticOSUpgrade', 'disableAutomaticRollback', 'useRollingUpgradePolicy', 'osRollingUpgradeDeferral',
      'osType', 'hyperVGeneration', 'automaticOSUpgradeSupported', 'completedAt', 'location', 'identifier', 'publisher', 'offer', 'sku', 'excludeFromLatest']);
    const key = fc.oneof(fc.constantFrom('constructor', 'toString', 'Mode', 'extra', 'os ', 'upgradeMode'), fc.stringMatching(/^[A-Za-z_$][\w$-]{0,12}$/)).filter((k) => !known.has(k) && k !== '__proto__');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...strictRoutes).chain((route) => fc.tuple(fc.constant(route), fc.constantFrom(...route.strict!))), key, fc.jsonValue({ maxDepth: 1 }), async ([route, at], k, v) => {
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(setAt(route.body, [...at, k], v as Json)) }, { status: 400, code: 'InvalidParameter' });
      }),
      { seed: SEED + 4, numRuns: runs(150), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: unknown enum values (upgradePolicy.mode, osType, orchestrationMode, os) are a 400 naming the property', async () => {
    const ENUMS: Array<{ route: string; path: Path; allowed: string[]; caseInsensitive?: boolean; field: RegExp }> = [
      { route: 'scale set PUT', path: [...UP, 'mode'], allowed: ['Automatic', 'Manual', 'Rolling'], field: /mode/ },
      { route: 'scale set PATCH', path: [...UP, 'mode'], allowed: ['Automatic', 'Manual', 'Rolling'], field: /mode/ },
      { route: 'scale set PUT', path: [...VMP, 'storageProfile', 'osDisk', 'osType'], allowed: ['Linux', 'Windows'], field: /osType/ },
      { route: 'scale set PUT', path: ['properties', 'orchestrationMode'], allowed: ['Uniform', 'Flexible'], field: /orchestrationMode/ },
      { route: 'VM PUT (vm1)', path: ['properties', 'storageProfile', 'osDisk', 'osType'], allowed: ['Linux', 'Windows'], field: /osType/ },
      { route: 'VM PUT (vm-new)', path: ['properties', 'storageProfile', 'osDisk', 'osType'], allowed: ['Linux', 'Windows'], field: /osType/ },
      { route: 'Arc machine PUT', path: ['properties', 'osType'], allowed: ['linux', 'windows'], caseInsensitive: true, field: /osType/ },
      { route: 'publisher version PUT (1.99.0.0)', path: ['os', 0], allowed: ['linux', 'windows'], field: /os/ },
      { route: 'image version PUT', path: ['osType'], allowed: ['Linux', 'Windows'], field: /osType/ },
      { route: 'gallery image PUT', path: ['hyperVGeneration'], allowed: ['V1', 'V2'], field: /hyperVGeneration/ },
    ];
    const value = fc.oneof(fc.constantFrom('automatic', 'MANUAL', 'Rolling ', ' Linux', 'linuxx', 'Windows10', '', 'Auto', 'null', 'Ubuntu', 'uniform', 'Linux\u0000'), fc.string({ maxLength: 12 }));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ENUMS), value, async (e, v) => {
        fc.pre(!(e.caseInsensitive ? e.allowed.map((a) => a.toLowerCase()).includes(v.toLowerCase()) : e.allowed.includes(v)));
        const route = byName(e.route);
        // U+0000 is refused before any schema, in every string (docs/api.md#limits).
        const want = v.includes('\0') ? { status: 400, code: 'InvalidRequestContent', mentions: /U\+0000/ } : { status: 400, code: 'InvalidParameter', mentions: e.field };
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(setAt(route.body, e.path, v)) }, want);
      }),
      { seed: SEED + 5, numRuns: runs(250), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: versions that are not versions are a 400 naming the version', async () => {
    const THV = ['properties', 'typeHandlerVersion'];
    const SITES: Array<{ route: string; path: Path | 'url' }> = [
      { route: 'VM extension PUT', path: THV }, { route: 'VM extension PATCH', path: THV },
      { route: 'scale-set instance extension PUT', path: THV }, { route: 'scale-set instance extension PATCH', path: THV },
      { route: 'Arc extension PUT', path: THV }, { route: 'Arc extension PATCH', path: THV },
      { route: 'scale-set model extension PUT', path: THV }, { route: 'scale-set model extension PATCH', path: THV },
      { route: 'scale set PUT', path: [...MX, 'properties', 'typeHandlerVersion'] }, { route: 'scale set PATCH', path: [...MX, 'properties', 'typeHandlerVersion'] },
      { route: 'upgradeExtensions', path: ['extensionTargets', AMA_KEY, 'targetVersion'] },
      { route: 'publisher version PUT (1.99.0.0)', path: 'url' },
    ];
    const fullNotAVersion = fc.oneof(notAVersion, fc.constantFrom('1', '1.30', '1.30.1', '2.0.0', '01.30.0.0', '1.30.0.00')).filter((v) => v !== '' && !FULL_VERSION.test(v));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SITES), notAVersion, fullNotAVersion, async (site, v, full) => {
        const route = byName(site.route);
        const r: Request = site.path === 'url'
          ? { method: 'PUT', path: `${TYPES}/${AMA.type}/versions/${encodeURIComponent(full)}`, query: null, body: JSON.stringify({ os: ['linux'] }) }
          : { method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(setAt(route.body, site.path, v)) };
        // A version of only dots moves the URL up a level (URL normalisation); what it reaches is still a 4xx.
        const normalised = site.path === 'url' && /^\.+$/.test(full);
        await rejects(s, r, normalised ? {} : { status: 400, code: 'InvalidParameter', mentions: /[vV]ersion/ });
      }),
      { seed: SEED + 6, numRuns: runs(300), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test(`bad input: a body over maxBodyBytes (${MAX_BODY / 1024} KiB) is a 413 RequestEntityTooLarge, with or without Content-Length`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.integer({ min: MAX_BODY + 1, max: 4 * MAX_BODY }), fc.boolean(), async (route, size, stream) => {
        const base = JSON.stringify(route.body ?? {});
        const body = `${base.slice(0, -1)}${base.length > 2 ? ',' : ''}"padding":"${'x'.repeat(Math.max(0, size - base.length - 13))}"}`;
        assert.ok(body.length > MAX_BODY && parses(body));
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, body, stream }, { status: 413, code: 'RequestEntityTooLarge' });
      }),
      { seed: SEED + 7, numRuns: runs(80), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: writes to resources (or their parents) that do not exist are a 404 and create nothing', async () => {
    const CASES: Array<(n: string) => { method: string; path: string; arm?: boolean; body?: Json }> = [
      (n) => ({ method: 'PUT', path: `/subscriptions/${n}/resourcegroups/${RG}`, body: { location: 'westus' } }),
      (n) => ({ method: 'PUT', path: `/subscriptions/${SUB}/resourceGroups/${n}/providers/Microsoft.Compute/virtualMachines/vm2`, body: { location: 'westus' } }),
      (n) => ({ method: 'PUT', path: `/subscriptions/${n}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines/vm2`, body: { location: 'westus' } }),
      (n) => ({ method: 'PUT', path: `/subscriptions/${SUB}/resourceGroups/${n}/providers/Microsoft.Compute/virtualMachineScaleSets/ss2`, body: vmssBody() }),
      (n) => ({ method: 'PUT', path: `/subscriptions/${SUB}/resourceGroups/${n}/providers/Microsoft.HybridCompute/machines/arc2`, body: { location: 'westus' } }),
      (n) => ({ method: 'PUT', path: `${VM}/${n}/extensions/ama`, body: extensionBody() }),
      (n) => ({ method: 'PATCH', path: `${VM}/${n}/extensions/ama`, body: { properties: { enableAutomaticUpgrade: true } } }),
      (n) => ({ method: 'PATCH', path: `${VM}/vm1/extensions/${n}`, body: { properties: { enableAutomaticUpgrade: true } } }),
      (n) => ({ method: 'PATCH', path: `${VMSS}/${n}`, body: { tags: { a: 'b' } } }),
      (n) => ({ method: 'PUT', path: `${VMSS}/${n}/extensions/ama`, body: { properties: extensionProps() } }),
      (n) => ({ method: 'PATCH', path: `${VMSS}/ss1/extensions/${n}`, body: { properties: { enableAutomaticUpgrade: true } } }),
      (n) => ({ method: 'POST', path: `${VMSS}/${n}/manualupgrade`, body: { instanceIds: ['0'] } }),
      (n) => ({ method: 'PUT', path: `${VMSS}/ss1/virtualMachines/${n.length % 2 ? n : String(2 + n.length)}/extensions/ama`, body: extensionBody() }),
      (n) => ({ method: 'PATCH', path: `${VMSS}/ss1/virtualMachines/0/extensions/${n}`, body: { properties: { enableAutomaticUpgrade: true } } }),
      (n) => ({ method: 'PUT', path: `${ARC}/${n}/extensions/ama`, body: extensionBody() }),
      (n) => ({ method: 'PATCH', path: `${ARC}/arc1/extensions/${n}`, body: { properties: { enableAutomaticUpgrade: false } } }),
      (n) => ({ method: 'POST', path: `${ARC}/${n}/upgradeExtensions`, body: { extensionTargets: { [AMA_KEY]: { targetVersion: '1.30' } } } }),
      (n) => ({ method: 'PUT', path: `/phasewise/publishers/${AMA.publisher}/extensionTypes/${n}/versions/1.31.0.0`, arm: false, body: { os: ['linux'] } }),
      (n) => ({ method: 'POST', path: `/subscriptions/${n}/providers/Microsoft.Features/providers/Microsoft.Compute/features/AutomaticExtensionUpgradePreview/register` }),
      (n) => ({ method: 'PATCH', path: `${VM}/${n}`, body: { tags: { a: 'b' } } }),
      (n) => ({ method: 'PUT', path: `/phasewise/subscriptions/${SUB}/resourceGroups/${RG}/galleries/${n}/images/web`, arm: false, body: { osType: 'Linux', identifier: { publisher: 'a', offer: 'b', sku: 'c' } } }),
      (n) => ({ method: 'PUT', path: `/phasewise/images/publishers/Canonical/offers/${n}/skus/server/versions/1.0.0/replications/westus`, arm: false, body: {} }),
      // A scale set whose gallery image does not exist is not created.
      (n) => ({ method: 'PUT', path: `${VMSS}/${n}`, body: setAt(vmssBody(), [...VMP, 'storageProfile', 'imageReference'], { id: `${RGP}/providers/Microsoft.Compute/galleries/${n.replaceAll('-', '_')}/images/web` }) }),
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CASES), missingName, async (make, n) => {
        const c = make(n);
        await rejects(s, { method: c.method, path: c.path, query: c.arm === false ? null : API, ...(c.body !== undefined ? { body: JSON.stringify(c.body) } : {}) }, { status: 404 });
      }),
      { seed: SEED + 8, numRuns: runs(300), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: an ARM write without an api-version is a 400 MissingApiVersionParameter', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES.filter((r) => r.arm)), fc.constantFrom(null, 'api-version=', 'apiversion=2026-03-01', 'api_version=2026-03-01', 'version=2026-03-01', '$expand=instanceView', 'api-version'), async (route, query) => {
        await rejects(s, { method: route.method, path: route.path, query, ...(route.body !== null ? { body: JSON.stringify(route.body) } : {}) }, { status: 400, code: 'MissingApiVersionParameter' });
      }),
      { seed: SEED + 9, numRuns: runs(200), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: a missing or unknown bearer token is a 401, whatever the request', async () => {
    const KNOWN = [TEST_TOKEN, READER_TOKEN, PUBLISHER_TOKEN];
    const header = fc.oneof(
      fc.constantFrom<string | null>(null, '', 'Bearer', 'Bearer ', 'Basic dGVzdDp0ZXN0', TEST_TOKEN, `Bearer ${TEST_TOKEN}x`, `Bearer ${TEST_TOKEN.slice(0, -1)}`, `Bearer ${TEST_TOKEN.toUpperCase()}`, `Bearer ${TEST_TOKEN} ${TEST_TOKEN}`, `Token ${TEST_TOKEN}`, `Bearer"${TEST_TOKEN}"`),
      fc.string({ maxLength: 40 }).map((t) => `Bearer ${t}`),
      fc.string({ maxLength: 40 }),
    ).filter((h) => h === null || !KNOWN.some((k) => new RegExp(`^\\s*Bearer\\s+${k}\\s*$`, 'i').test(h)));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), header, async (route, authorization) => {
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, authorization, ...(route.body !== null ? { body: JSON.stringify(route.body) } : {}) }, { status: 401, code: /^(AuthenticationFailed|InvalidAuthenticationToken)$/ });
      }),
      { seed: SEED + 10, numRuns: runs(300), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: a token without the role a write needs (reader; publisher on ARM, reader on the publisher API) is a 403', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ROUTES), fc.boolean(), async (route, reader) => {
        const token = reader || route.role === 'publisher' ? READER_TOKEN : PUBLISHER_TOKEN;
        await rejects(s, { method: route.method, path: route.path, query: route.arm ? API : null, authorization: `Bearer ${token}`, ...(route.body !== null ? { body: JSON.stringify(route.body) } : {}) }, { status: 403, code: 'AuthorizationFailed' });
      }),
      { seed: SEED + 11, numRuns: runs(200), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: values out of range or in the wrong format are a 400 (a resource group name too: it was a 404)', async () => {
    const req = (route: Route, path: Path, value: Json): Request => ({ method: route.method, path: route.path, query: route.arm ? API : null, body: JSON.stringify(setAt(route.body, path, value)) });
    const at = (name: string, path: Path, values: fc.Arbitrary<Json>) => values.map((v) => req(byName(name), path, v));
    const nonInteger = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1000, max: 1000 }).filter((x) => !Number.isInteger(x));
    const outside = (min: number, max: number) => fc.oneof(fc.integer({ min: -1_000_000, max: min - 1 }), fc.integer({ min: max + 1, max: 1_000_000 }), nonInteger);
    const ISO = /^P(?!$)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;
    const badDuration = fc.oneof(fc.constantFrom('PT', 'P', '5m', 'PT5', 'P1Y', '-PT5M', 'PT5M ', 'pt5m', '', 'PT5M30', 'P1W', 'T5M'), fc.string({ maxLength: 8 })).filter((d) => !ISO.test(d));
    const badLocation = fc.oneof(fc.constantFrom('', ' westus', 'west_us', 'westus!', 'a'.repeat(65), 'west/us', '-westus'), fc.string({ maxLength: 8 })).filter((l) => !/^[A-Za-z0-9][A-Za-z0-9 -]{0,63}$/.test(l));
    const manyTags = fc.integer({ min: 51, max: 80 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, 'v'])));
    const longString = (max: number) => fc.integer({ min: max + 1, max: max + 300 }).map((n) => 'x'.repeat(n));
    const ext = (name: string) => `${name} extension PUT`;
    const badPathName = (max: number) => fc.oneof(fc.constantFrom('-x', '.x', '_x', 'x!y', 'x y', 'x%y', 'x:y'), fc.integer({ min: max + 1, max: max + 20 }).map((n) => 'x'.repeat(n)));
    const CASES: Array<fc.Arbitrary<Request & { status?: number }>> = [
      at('scale set PUT', ['sku', 'capacity'], outside(0, 1000)), at('scale set PATCH', ['sku', 'capacity'], outside(0, 1000)),
      at('scale set PUT', [...RP, 'maxBatchInstancePercent'], outside(5, 100)), at('scale set PATCH', [...RP, 'maxUnhealthyInstancePercent'], outside(5, 100)),
      at('scale set PUT', [...RP, 'maxUnhealthyUpgradedInstancePercent'], outside(0, 100)), at('scale set PUT', [...RP, 'pauseTimeBetweenBatches'], badDuration),
      at('scale set PUT', [...VMP, 'extensionProfile', 'extensionsTimeBudget'], badDuration), at('scale set PUT', ['properties', 'platformFaultDomainCount'], outside(1, 5)),
      at('scale set PUT', ['zones'], fc.constantFrom(['a'], ['12'], ['1', '2', '3', '1'], [''])), at('scale set PUT', ['location'], badLocation),
      at('scale set PUT', [...MX, 'name'], fc.constantFrom('', '-ama', 'a b', 'x'.repeat(81))), at('scale set PUT', ['tags'], manyTags),
      // A scale set's model bounds its extensions as a machine does (it once took a 32 KiB forceUpdateTag).
      at('scale set PUT', [...MX, 'properties', 'forceUpdateTag'], longString(256)), at('scale-set model extension PUT', ['properties', 'forceUpdateTag'], longString(256)),
      at('scale set PATCH', [...MX, 'properties', 'provisionAfterExtensions'], fc.integer({ min: 51, max: 70 }).map((n) => Array.from({ length: n }, (_, i) => `e${i}`))),
      at('scale-set model extension PATCH', ['properties', 'publisher'], longString(256)),
      at('VM PUT (vm-new)', ['zones'], fc.constantFrom(['1', '2'], ['x'], ['10'], [''])), at('VM PUT (vm-new)', ['location'], badLocation), at('VM PUT (vm1)', ['tags'], manyTags),
      at('VM PUT (vm-new)', ['properties', 'availabilitySet', 'id'], fc.constant('')), at('resource group PUT', ['location'], badLocation),
      at('resource group PUT', ['tags', 'env'], longString(256)), at('Arc machine PUT', ['location'], badLocation),
      ...['VM', 'scale-set instance', 'Arc'].flatMap((w) => [
        at(ext(w), ['location'], badLocation), at(ext(w), ['properties', 'forceUpdateTag'], longString(256)),
        at(ext(w), ['properties', 'publisher'], fc.oneof(fc.constant(''), longString(256))), at(ext(w), ['properties', 'type'], fc.oneof(fc.constant(''), longString(256))),
        at(ext(w), ['properties', 'provisionAfterExtensions'], fc.integer({ min: 51, max: 70 }).map((n) => Array.from({ length: n }, (_, i) => `e${i}`))),
        at(ext(w), ['properties', 'protectedSettingsFromKeyVault', 'secretUrl'], fc.constantFrom('not a url', '', 'vault/secret')),
        at(ext(w), ['properties', 'protectedSettingsFromKeyVault', 'sourceVault', 'id'], fc.constant('')), at(ext(w), ['tags'], manyTags),
      ]),
      at('manualupgrade', ['instanceIds'], fc.constantFrom([], [''], ['99'], ['0', '99'], ['x'])),
      at('publisher version PUT (1.99.0.0)', ['digest'], fc.constantFrom('sha256:xyz', `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, '')),
      at('publisher version PUT (1.99.0.0)', ['regions'], fc.constantFrom([], ['bad region!'], [''])), at('publisher version PUT (1.99.0.0)', ['os'], fc.constant([])),
      badPathName(64).map((n) => ({ ...req(byName('VM PUT (vm-new)'), [], byName('VM PUT (vm-new)').body), path: `${VM}/${encodeURIComponent(n)}` })),
      badPathName(64).map((n) => ({ ...req(byName('scale set PUT'), [], byName('scale set PUT').body), path: `${VMSS}/${encodeURIComponent(n)}` })),
      badPathName(54).map((n) => ({ ...req(byName('Arc machine PUT'), [], byName('Arc machine PUT').body), path: `${ARC}/${encodeURIComponent(n)}` })),
      badPathName(80).map((n) => ({ ...req(byName('VM extension PUT'), [], extensionBody()), path: `${VM}/vm1/extensions/${encodeURIComponent(n)}` })),
      badPathName(80).map((n) => ({ ...req(byName('Arc extension PUT'), [], extensionBody()), path: `${ARC}/arc1/extensions/${encodeURIComponent(n)}` })),
      badPathName(80).map((n) => ({ method: 'PUT', path: `${VMSS}/ss1/extensions/${encodeURIComponent(n)}`, body: JSON.stringify({ properties: { publisher: AMA.publisher, type: AMA.type, typeHandlerVersion: '1.30' } }) })),
      // ARM's rule for groups takes '-x', '.x' and '_x' (docs/api.md); a final period and 91 characters it refuses.
      fc.oneof(fc.constantFrom('x!y', 'x y', 'x%y', 'x:y', 'x.', 'caf\u00e9'), fc.integer({ min: 91, max: 110 }).map((n) => 'x'.repeat(n)))
        .map((n) => ({ method: 'PUT', path: `/subscriptions/${SUB}/resourcegroups/${encodeURIComponent(n)}`, body: JSON.stringify({ location: 'westus' }) })),
      fc.constantFrom('1bad', 'Micro soft', 'a/b', 'x'.repeat(129)).map((ns) => ({ method: 'POST', path: `/subscriptions/${SUB}/providers/Microsoft.Features/providers/${encodeURIComponent(ns)}/features/AutomaticExtensionUpgradePreview/register` })),
      fc.constantFrom('-f', 'f!', 'x'.repeat(129)).map((f) => ({ method: 'POST', path: `/subscriptions/${SUB}/providers/Microsoft.Features/providers/Microsoft.Compute/features/${encodeURIComponent(f)}/register` })),
      fc.constantFrom('-pub', 'pub!', 'x'.repeat(129)).map((p) => ({ method: 'PUT', path: `/phasewise/publishers/${encodeURIComponent(p)}/extensionTypes/NewType`, query: null, body: JSON.stringify({ supportsAutomaticUpgrade: true }) })),
    ];
    await fc.assert(
      fc.asyncProperty(fc.oneof(...CASES), async ({ status, ...r }) => {
        await rejects(s, r, { status: status ?? 400 });
      }),
      { seed: SEED + 15, numRuns: runs(400), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: changes ARM does not allow (location, zones, a second extension of a type, republishing a version) are a 409', async () => {
    const otherLocation = fc.constantFrom('eastus', 'westeurope', 'EastUS2', 'northeurope', 'west us 2');
    const otherName = missingName;
    const CASES: Array<fc.Arbitrary<Request>> = [
      otherLocation.map((l) => ({ method: 'PUT', path: `/subscriptions/${SUB}/resourcegroups/${RG}`, body: JSON.stringify({ location: l }) })),
      otherLocation.map((l) => ({ method: 'PUT', path: `${VM}/vm1`, body: JSON.stringify({ location: l }) })),
      fc.constantFrom('1', '2', '3').map((z) => ({ method: 'PUT', path: `${VM}/vm1`, body: JSON.stringify({ location: 'westus', zones: [z] }) })),
      otherLocation.map((l) => ({ method: 'PUT', path: `${VMSS}/ss1`, body: JSON.stringify(setAt(vmssBody(), ['location'], l)) })),
      otherLocation.map((l) => ({ method: 'PATCH', path: `${VMSS}/ss1`, body: JSON.stringify({ location: l, tags: { changed: 'yes' } }) })),
      fc.constantFrom<Json>(['1'], ['1', '2'], ['3']).map((z) => ({ method: 'PUT', path: `${VMSS}/ss1`, body: JSON.stringify(setAt(vmssBody(), ['zones'], z)) })),
      otherLocation.map((l) => ({ method: 'PUT', path: `${ARC}/arc1`, body: JSON.stringify({ location: l, properties: { osType: 'linux' } }) })),
      ...[`${VM}/vm1`, `${VMSS}/ss1/virtualMachines/1`, `${ARC}/arc1`].map((m) => otherName.map((n) => ({ method: 'PUT', path: `${m}/extensions/${n}`, body: JSON.stringify(extensionBody()) }))),
      fc.constantFrom('1.30.0.0', '2.0.0.0').map((v) => ({ method: 'PUT', path: `${TYPES}/${AMA.type}/versions/${v}`, query: null, body: JSON.stringify({ os: ['linux'], critical: true }) })),
    ];
    await fc.assert(
      fc.asyncProperty(fc.oneof(...CASES), async (r) => {
        await rejects(s, r, { status: 409 });
      }),
      { seed: SEED + 16, numRuns: runs(200), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: upgradeExtensions to another major version, published (2.x) or not (3.x, 7.1), is a 400 MajorVersionChangeNotAllowed and starts nothing', async () => {
    const casing = fc.array(fc.boolean(), { minLength: AMA_KEY.length, maxLength: AMA_KEY.length }).map((up) => [...AMA_KEY].map((ch, i) => (up[i] ? ch.toUpperCase() : ch.toLowerCase())).join(''));
    await fc.assert(
      fc.asyncProperty(casing, fc.constantFrom('2', '2.0', '2.0.0', '2.0.0.0', '3', '3.0.0.0', '7.1'), async (key, targetVersion) => {
        await rejects(s, { method: 'POST', path: `${ARC}/arc1/upgradeExtensions`, query: 'api-version=2021-05-20', body: JSON.stringify({ extensionTargets: { [key]: { targetVersion } } }) }, { status: 400, code: 'MajorVersionChangeNotAllowed', mentions: /major/ });
      }),
      { seed: SEED + 12, numRuns: runs(100), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: extension types not in the catalog are refused (400 on machines, scale sets and upgradeExtensions; 404 on the publisher API)', async () => {
    const name = fc.stringMatching(/^[A-Z][A-Za-z0-9]{0,10}(\.[A-Z][A-Za-z0-9]{0,10}){0,2}$/);
    const unknownType = fc.tuple(name, name).filter(([p, t]) => `${p}.${t}`.toLowerCase() !== AMA_KEY.toLowerCase());
    const SITES: Array<(p: string, t: string, ext: string) => Request & { want: Expect }> = [
      (p, t, ext) => ({ method: 'PUT', path: `${VM}/vm1/extensions/${ext}`, body: JSON.stringify(setAt(setAt(extensionBody(), ['properties', 'publisher'], p), ['properties', 'type'], t)), want: { status: 400 } }),
      (p, t, ext) => ({ method: 'PUT', path: `${VMSS}/ss1/virtualMachines/1/extensions/${ext}`, body: JSON.stringify(setAt(setAt(extensionBody(), ['properties', 'publisher'], p), ['properties', 'type'], t)), want: { status: 400 } }),
      (p, t, ext) => ({ method: 'PUT', path: `${ARC}/arc1/extensions/${ext}`, body: JSON.stringify(setAt(setAt(extensionBody(), ['properties', 'publisher'], p), ['properties', 'type'], t)), want: { status: 400 } }),
      (p, t, ext) => ({ method: 'PUT', path: `${VMSS}/ss1/extensions/${ext}`, body: JSON.stringify({ properties: { publisher: p, type: t, typeHandlerVersion: '1.30' } }), want: { status: 400 } }),
      (p, t) => ({ method: 'PUT', path: `${VMSS}/ss1`, body: JSON.stringify(setAt(setAt(vmssBody(), [...MX, 'properties', 'publisher'], p), [...MX, 'properties', 'type'], t)), want: { status: 400, code: 'ArtifactNotFound' } }),
      (p, t) => ({ method: 'POST', path: `${ARC}/arc1/upgradeExtensions`, body: JSON.stringify({ extensionTargets: { [`${p}.${t}`]: { targetVersion: '1.30' } } }), want: { status: 400, code: 'InvalidParameter' } }),
      (p, t) => ({ method: 'PUT', path: `/phasewise/publishers/${p}/extensionTypes/${t}/versions/1.31.0.0`, query: null, body: JSON.stringify({ os: ['linux'] }), want: { status: 404, code: 'ArtifactNotFound' } }),
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...SITES), unknownType, fc.constantFrom('ama', 'other-ext'), async (make, [p, t], ext) => {
        const { want, ...r } = make(p, t, ext);
        await rejects(s, r, want);
      }),
      { seed: SEED + 13, numRuns: runs(200), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: upgradeExtensions naming an extension the machine does not have (prototype keys included) is a 400', async () => {
    const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', ''), fc.string({ maxLength: 20 })).filter((k) => k.toLowerCase() !== AMA_KEY.toLowerCase());
    await fc.assert(
      fc.asyncProperty(key, fc.constantFrom('1.30', '1', '2.0'), async (k, targetVersion) => {
        // Written by hand: `{ [k]: … }` in JavaScript would make '__proto__' a prototype, not a key.
        const body = `{"extensionTargets":{${JSON.stringify(k)}:{"targetVersion":${JSON.stringify(targetVersion)}}}}`;
        // A '__proto__' key is refused by the body parser itself (docs/api.md#limits), the rest by the route.
        await rejects(s, { method: 'POST', path: `${ARC}/arc1/upgradeExtensions`, query: 'api-version=2021-05-20', body }, { status: 400, code: k === '__proto__' ? 'InvalidRequestContent' : 'InvalidParameter' });
      }),
      { seed: SEED + 14, numRuns: runs(60), includeErrorInReport: true, endOnFailure: true },
    );
    await alive();
  });

  test('bad input: after all of it the server answers, and every resource, engine count and document is as before', async (t) => {
    await alive();
    t.diagnostic(`${sent} bad requests sent`);
    assert.ok(sent >= 3000, `at least 3,000 bad requests were sent (${sent})`);
    assert.deepEqual({ counts: engineCounts(s), api: await apiSnapshot(s) }, { counts: initialCounts, api: initialSnapshot });
    const now = fingerprint(s);
    if (now !== initialFingerprint) assert.fail(`the server's state changed: ${stateDiff(initialFingerprint, now)}`);
  });
});

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
