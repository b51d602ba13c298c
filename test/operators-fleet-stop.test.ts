/**
 * The fleet-wide stop given before anything runs, against real `phasewise serve` processes and the real CLI.
 * docs/operations.md promises that releases whose rollouts start during the stop are held as soon as they
 * appear, until `fleet resume`. The stop used to live only in the holds it placed: given while no rollout
 * ran it held nothing, answered 200 and was forgotten, and the next release rolled out through it. Now it
 * is kept (and shown by `fleet show`) until the resume, across a `kill -9` and a restart too.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { cliWithEnv, ROOT, servedEvents, startServe, stopServe } from './helpers/cli.js';

interface Event { seq: number; type: string; rolloutId?: string; reason?: string }

const root = mkdtempSync(join(tmpdir(), 'phasewise-fleet-stop-'));
const data = join(root, 'data');
const configDir = join(root, 'config');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
after(() => rmSync(root, { recursive: true, force: true }));

// examples/small.yaml with its release published 12 simulated hours in (about 22 s at 2000×): time to stop the fleet first.
const scenario = join(root, 'small-later.yaml');
writeFileSync(scenario, readFileSync(join(ROOT, 'examples/small.yaml'), 'utf8').replace('{ at: PT1H, publish:', '{ at: PT12H, publish:'));

const serve = () => startServe(['--scenario', scenario, '--data-dir', data, '--port', '0', '--clock-factor', '2000']);

const pw = (...args: string[]) => cliWithEnv({ PHASEWISE_CONFIG_DIR: configDir }, 120_000, ...args);

async function ok(...args: string[]): Promise<any> {
  const r = await pw(...args);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim() === '' ? null : JSON.parse(r.stdout);
}

async function login(url: string): Promise<void> {
  await ok('login', '--server', url, '--token', readFileSync(join(data, 'token'), 'utf8').trim(), '--ca-cert', join(data, 'tls', 'cert.pem'));
}

/** The event log over HTTPS (the CLI has no events command). */
const events = (url: string) => servedEvents<Event>(url, data);

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(300);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('a fleet-wide stop given before the release it must hold', () => {
  test('held through a kill -9 and a restart; the new release\'s rollout is held at once; fleet resume lets it run', async () => {
    let s = await serve();
    try {
      await login(s.url);
      assert.deepEqual(await ok('rollout', 'list'), [], 'the release is not published yet: nothing runs when the stop is given');
      const paused = await ok('fleet', 'pause', '--reason', 'change freeze');
      assert.deepEqual(paused.paused, []);
      assert.equal(paused.fleetStop?.reason, 'change freeze', 'the answer shows the stop');
      const shown = await ok('fleet', 'show', '--query', 'fleetStop');
      assert.equal(shown.reason, 'change freeze', 'fleet show says the stop is in effect although it holds nothing yet');
      assert.equal(shown.since, paused.fleetStop.since);

      await stopServe(s, 'SIGKILL'); // the stop is kept in the database, not in the process
      s = await serve();
      await login(s.url);
      assert.equal((await ok('fleet', 'show', '--query', 'fleetStop')).reason, 'change freeze', 'kept across the restart');

      const held = await eventually('the new release held by the stop', async () => {
        const r = (await ok('fleet', 'show', '--query', 'releasesHeld')) as Array<{ version: string; reason: string }>;
        return r.find((h) => h.version === '1.4.1.0');
      });
      assert.match(held.reason, /^fleet-wide stop by .*: change freeze$/);
      const log = await events(s.url);
      const pausedAt = log.find((e) => e.type === 'rollout.paused' && e.rolloutId === 'ro-1');
      assert.ok(pausedAt, 'ro-1 paused by the stop');
      await sleep(3_000); // 100 simulated minutes: a batch started in the rollout's first instant ends, none starts
      const later = (await events(s.url)).filter((e) => e.seq > pausedAt.seq && e.type === 'batch.started');
      assert.deepEqual(later, [], 'no batch starts during the stop');

      const resumed = await ok('fleet', 'resume');
      assert.deepEqual(resumed.resumed, ['ro-1']);
      assert.equal(resumed.ended?.reason, 'change freeze', 'the answer names the stop it ended');
      assert.equal(await ok('fleet', 'show', '--query', 'fleetStop'), null, 'the stop has ended');
      await eventually('a batch after the resume', async () => ((await events(s.url)).some((e) => e.seq > pausedAt.seq && e.type === 'batch.started') ? true : undefined));
    } finally {
      await stopServe(s, 'SIGTERM');
    }
  });
});
