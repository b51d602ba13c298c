/**
 * Platform-orchestrated patching of served machines (R76): VMs of the demo fleet set to
 * `patchMode: AutomaticByPlatform` over the ARM API take the week's patch baseline through an engine
 * rollout (listed at /phasewise/rollouts), each installation in eastus's off-peak hours and announced
 * first; a VM that goes back to ImageDefault leaves it. Real HTTPS on loopback, the simulated fleet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PatchChecker } from '../src/audit/patches.js';
import { REBOOT_NOTICE_MS } from '../src/planner/windows.js';
import { allEvents, call, eventually, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';

const SUB = 'contoso-dev';
const RG = `/subscriptions/${SUB}/resourceGroups/rg-${SUB}`;
const CV = 'api-version=2024-07-01';

describe('platform-orchestrated patching over the API', () => {
  let s: TestServer;
  before(async () => { s = await startTestServer({ scenario: 'examples/demo.yaml', clockFactor: 2_000, subscriptions: [] }); });
  after(async () => s?.stop());

  test('R76, R77, R83: AutomaticByPlatform VMs take the weekly baseline in off-peak hours, announced; ImageDefault leaves it', async () => {
    const list = await call(s.url, 'GET', `${RG}/providers/Microsoft.Compute/virtualMachines?${CV}`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const vms = (list.body.value as Array<{ name: string; location: string; zones?: string[] }>).filter((v) => v.location === 'eastus').slice(0, 4);
    assert.equal(vms.length, 4);
    const put = (vm: (typeof vms)[number], patchSettings: unknown) => call(s.url, 'PUT', `${RG}/providers/Microsoft.Compute/virtualMachines/${vm.name}?${CV}`, {
      location: vm.location, ...(vm.zones ? { zones: vm.zones } : {}), properties: { osProfile: { linuxConfiguration: { patchSettings } } },
    });
    for (const vm of vms) {
      const r = await put(vm, { patchMode: 'AutomaticByPlatform', automaticByPlatformSettings: { rebootSetting: 'IfRequired' } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // The last one changes its mind before anything is published or started.
    const back = await put(vms[3]!, { patchMode: 'ImageDefault' });
    assert.equal(back.status, 200, JSON.stringify(back.body));

    const rollout = await eventually(async () => {
      const r = await call(s.url, 'GET', '/phasewise/rollouts');
      const found = (r.body.value as any[]).find((x) => x.artifactKey === 'guestPatch:linux' || x.artifact?.kind === 'guestPatch');
      return found && found.status === 'completed' ? found : undefined;
    }, 120_000, 'a completed platform patch rollout');
    const log = await allEvents(s);
    const started = log.filter((e) => e.type === 'instance.upgrade.started' && e.artifact?.kind === 'guestPatch' && e.rolloutId === rollout.id);
    assert.deepEqual(started.map((e) => e.machineId).sort(), vms.slice(0, 3).map((v) => v.name).sort());
    const checker = new PatchChecker({ windowOf: () => undefined, noticeMs: REBOOT_NOTICE_MS });
    // The demo's own nightly schedule runs too (api-patch-demo checks it against its window).
    checker.onEvents(log.filter((e) => !(typeof e.runId === 'string' && e.runId.startsWith('dev-linux-nightly@'))));
    assert.deepEqual(checker.violations, []);
    assert.equal(checker.checkedOffPeak, 3);
    const notices = log.filter((e) => e.type === 'machine.reboot.announced' && e.runId.startsWith(`${rollout.id}/`));
    assert.equal(notices.length, 3);
    assert.ok(log.some((e) => e.type === 'release.published' && e.artifact?.kind === 'guestPatch' && /^\d{4}\.\d{1,2}\.\d{1,2}$/.test(e.version)));
  });
});
