/**
 * The operators' CLI against a real `phasewise serve` process (the small scenario, clock at 2000x):
 * login and its profile, every command, every output format, --query, --wait, and the exit codes of
 * docs/cli.md (0 ok, 1 refused or unreachable, 2 usage or a bad --query, 3 not found). The server's
 * console tells the rollout's milestones at info level and keeps request lines out of it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CLI, ROOT } from './helpers/cli.js';

interface Run { status: number | null; stdout: string; stderr: string }

describe('phasewise CLI against a real server', () => {
  let server: ChildProcess;
  let dir: string;
  let configDir: string;
  let url = '';
  let serverOut = '';
  let token = '';
  let cert = '';

  /** Runs the CLI with this test's profile folder; bounded at 60 s. */
  const pw = (...args: string[]): Promise<Run> => new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PHASEWISE_CONFIG_DIR: configDir };
    delete env.PHASEWISE_DEBUG;
    delete env.FORCE_COLOR;
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
  const ok = async (...args: string[]): Promise<string> => {
    const r = await pw(...args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const json = async (...args: string[]): Promise<any> => JSON.parse(await ok(...args, '-o', 'json'));
  const until = async (what: string, check: () => Promise<boolean>, ms = 60_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.fail(`timed out waiting for ${what}`);
  };
  const oneLine = (r: Run) => assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'phasewise-cli-serve-'));
    configDir = mkdtempSync(join(tmpdir(), 'phasewise-cli-config-'));
    // 1000×: the canary phase completes in seconds, its 4-day bake keeps ro-1 running for about 6 minutes of real time (the pause test needs it running).
    server = spawn(process.execPath, [CLI, 'serve', '--scenario', 'examples/small.yaml', '--data-dir', dir, '--port', '0', '--clock-factor', '1000'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (serverOut += d));
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 30_000);
      server.stderr!.setEncoding('utf8').on('data', (d: string) => {
        err += d;
        const m = /serving the ARM API at (\S+)/.exec(err);
        if (m && /token: +(\S+)/.test(err)) {
          clearTimeout(t);
          url = m[1]!;
          resolve();
        }
      });
    });
    token = readFileSync(join(dir, 'token'), 'utf8').trim();
    cert = join(dir, 'tls', 'cert.pem');
  });
  after(async () => {
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('close', r));
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  test('--version, not logged in, a wrong token, an unreachable server, a bad server URL', async () => {
    assert.match(await ok('--version'), /^phasewise \d+\.\d+\.\d+\n$/);
    const notLogged = await pw('rollout', 'list');
    assert.equal(notLogged.status, 2);
    assert.match(notLogged.stderr, /not logged in/);
    oneLine(notLogged);
    const wrong = await pw('login', '--server', url, '--token', 'not-the-token-0123456789', '--ca-cert', cert);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^phasewise: 401 /);
    oneLine(wrong);
    const down = await pw('login', '--server', 'https://127.0.0.1:1', '--token', token, '--ca-cert', cert);
    assert.equal(down.status, 1);
    assert.match(down.stderr, /cannot reach https:\/\/127\.0\.0\.1:1: connection refused/);
    oneLine(down);
    const untrusted = await pw('login', '--server', url, '--token', token);
    assert.equal(untrusted.status, 1);
    assert.match(untrusted.stderr, /not trusted .*--ca-cert/);
    assert.equal((await pw('login', '--server', 'ftp://x', '--token', token)).status, 2);
    assert.equal((await pw('login', '--token', token)).status, 2, 'a missing required option is a usage error');
  });

  test('login writes a 0600 profile; every output format; --query', async () => {
    const login = await json('login', '--server', url, '--token', token, '--ca-cert', cert);
    assert.equal(login.server, url);
    const file = join(configDir, 'profile.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).token, token);
    await until('a rollout', async () => (await json('rollout', 'list')).length > 0);
    const list = await json('rollout', 'list');
    assert.equal(list[0].id, 'ro-1');
    assert.equal(list[0].toVersion, '1.4.1.0');
    const jsonc = await pw('rollout', 'list', '-o', 'jsonc');
    assert.equal(jsonc.status, 0);
    assert.equal(JSON.parse(jsonc.stdout)[0].id, 'ro-1', 'jsonc without a terminal is plain JSON');
    const table = await ok('rollout', 'list', '-o', 'table');
    const lines = table.trimEnd().split('\n');
    assert.match(lines[0]!, /^Id +ToVersion +Profile +Status /);
    assert.match(lines[1]!, /^-+ +-+/);
    assert.match(lines[2]!, /^ro-1 +1\.4\.1\.0 +standard +running/);
    assert.match(await ok('rollout', 'list', '-o', 'tsv'), /^ro-1\t1\.4\.1\.0\tstandard\trunning\t/);
    assert.equal(parseYaml(await ok('rollout', 'list', '-o', 'yaml'))[0].id, 'ro-1');
    assert.equal(await ok('rollout', 'list', '-o', 'none'), '');
    assert.equal(await ok('rollout', 'list', '--query', '[0].id', '-o', 'tsv'), 'ro-1\n');
    assert.match(await ok('rollout', 'list', '--query', '[].{id:id, status:status}', '-o', 'table'), /^Id +Status\n-+ +-+\nro-1 +running\n$/);
    assert.deepEqual(await json('rollout', 'show', 'ro-1', '--query', 'phases[].index'), [0, 1]);
    const bad = await pw('rollout', 'list', '--query', '[0.id');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^phasewise rollout list: --query: invalid JMESPath/);
    oneLine(bad);
    const xml = await pw('rollout', 'list', '-o', 'xml');
    assert.equal(xml.status, 2);
    oneLine(xml);
    assert.equal((await pw('rollout', 'list', '--top', '0')).status, 2);
    assert.equal((await pw('rollout', 'list', '--status', 'sleeping')).status, 2);
  });

  test('show commands: rollout, machine, set, fleet, activity; not found is exit 3', async () => {
    assert.equal((await json('rollout', 'show', 'ro-1')).id, 'ro-1');
    const missing = await pw('rollout', 'show', 'ro-99');
    assert.equal(missing.status, 3);
    assert.match(missing.stderr, /^phasewise: 404 RolloutNotFound: /);
    oneLine(missing);
    const web0 = await json('machine', 'show', 'web/0');
    assert.equal(web0.id, 'web/0');
    assert.equal(web0.extensions[0].type, 'Agent');
    assert.ok(Array.isArray(web0.history));
    assert.equal((await pw('machine', 'show', 'nowhere')).status, 3);
    await until('a batch on web', async () => (await json('machine', 'show', 'web/0')).history.length > 0 || (await json('rollout', 'show', 'ro-1')).counts.upgraded > 0);
    const set = await pw('set', 'show', '--subscription', 'prod', '-g', 'rg-prod', '-n', 'web', '-o', 'json');
    assert.ok(set.status === 0 || set.status === 3, set.stderr);
    if (set.status === 0) assert.ok(JSON.parse(set.stdout).properties, set.stdout);
    assert.equal((await pw('set', 'show', '--subscription', 'prod', '-g', 'rg-prod', '-n', 'nosuchset')).status, 3);
    const fleet = await json('fleet', 'show');
    assert.equal(fleet.machines, 21);
    assert.equal(fleet.artifacts[0].type, 'Agent');
    const activity = await json('activity', 'list', '--subscription', 'prod', '--top', '5');
    assert.ok(activity.length > 0 && activity.length <= 5);
    assert.equal((await pw('activity', 'list', '--subscription', 'prod', '--caller', 'a', '--correlation-id', 'b')).status, 2);
    assert.equal((await pw('activity', 'list', '--subscription', 'nosub')).status, 3);
  });

  test('pause, resume, cancel, fleet pause/resume; a refused control is exit 1 with one line', async () => {
    const paused = await json('rollout', 'pause', 'ro-1', '--reason', 'looking at tickets');
    assert.deepEqual(paused.paused, ['ro-1']);
    const again = await pw('rollout', 'pause', 'ro-1');
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^phasewise: 409 RolloutAlreadyPaused: /);
    oneLine(again);
    assert.deepEqual((await json('rollout', 'resume', 'ro-1')).resumed, ['release hold lifted']);
    assert.deepEqual((await json('fleet', 'pause', '--reason', 'incident')).paused, ['ro-1']);
    assert.deepEqual((await json('fleet', 'resume')).resumed, ['ro-1']);
    assert.equal((await pw('rollout', 'cancel', 'ro-99')).status, 3);
    const byOperator = await json('activity', 'list', '--subscription', 'prod', '--correlation-id', 'ro-1', '--query', "[?operationName.value=='Phasewise/rollouts/pause/action'].caller");
    assert.deepEqual(byOperator, ['operator', 'operator'], 'the pause and the fleet-wide stop, with their caller');
  });

  test('version withdraw --rollback --wait: a progress bar, and the machines are back', async () => {
    await until('the canary phase', async () => (await json('rollout', 'show', 'ro-1', '--query', 'phases[0].status')) === 'completed');
    assert.equal((await pw('version', 'withdraw', '--publisher', 'Contoso.Monitoring', '--type', 'Agent', '--version', '9.9.9.9')).status, 3);
    // An OS image is named by --image or --gallery-image; exactly one thing is named (usage errors exit 2).
    for (const args of [['--image', 'Canonical:ubuntu'], ['--gallery-image', '/subscriptions/s/galleries/g'], ['--image', 'A:B:C', '--publisher', 'X', '--type', 'Y'], ['--publisher', 'X'], []]) {
      const bad = await pw('version', 'withdraw', ...args, '--version', '1.0.0');
      assert.equal(bad.status, 2, `${args.join(' ')}: ${bad.stderr}`);
      oneLine(bad);
    }
    assert.equal((await pw('version', 'withdraw', '--image', 'Canonical:ubuntu-24_04-lts:server', '--version', '24.04.202601010')).status, 3, 'an image the catalog does not have');
    const gallery = '/subscriptions/prod/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/web';
    assert.equal((await pw('version', 'withdraw', '--gallery-image', gallery, '--version', '1.0.0')).status, 3);
    const r = await pw('version', 'withdraw', '--publisher', 'Contoso.Monitoring', '--type', 'Agent', '--version', '1.4.1.0', '--rollback', '--reason', 'bad build', '--wait', '-o', 'json');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^ro-2: \[#*\.*\] \d+\/10 \(\d+%\) settled, 1 running$/m);
    assert.match(r.stderr, /\[#{30}\] 10\/10 \(100%\) settled, 0 running/);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.cancelled, ['ro-1']);
    assert.equal(await ok('machine', 'show', 'web/0', '--query', "extensions[0].installedVersion", '-o', 'tsv'), '1.4.0.0\n');
    assert.equal(await ok('rollout', 'list', '--status', 'completed', '--query', '[].id', '-o', 'tsv'), 'ro-2\n');
    const ended = await pw('rollout', 'resume', 'ro-1', '--wait');
    assert.equal(ended.status, 1);
    assert.match(ended.stderr, /RolloutEnded/);
  });

  test("the server's console: milestones in words at info, no request lines", async () => {
    const lines = serverOut.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
    const msgs = lines.map((l) => l.msg);
    assert.ok(msgs.some((m) => /^rollout ro-1 \(Contoso\.Monitoring\.Agent 1\.4\.1\.0\) created: standard, 21 machines/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /phase 0 started in eastus/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /paused: paused by operator: looking at tickets/.test(m)), msgs.join('\n'));
    assert.ok(msgs.some((m) => /withdrawn by operator/.test(m)), msgs.join('\n'));
    assert.ok(!msgs.some((m) => m === 'request' || m === 'incoming request' || m === 'request completed'), 'request lines stay at debug');
  });
});

describe('output formats on their own', () => {
  test('jsonc colours keys, strings, numbers and literals on a terminal; tsv flattens; table of scalars', async () => {
    const { render } = await import('../src/cli/client/output.js');
    const data = [{ id: 'ro-1', n: 3, ok: true, nested: { x: 1 } }];
    const c = render(data, 'jsonc', true);
    assert.match(c, /\x1b\[94m"id"\x1b\[0m: \x1b\[32m"ro-1"\x1b\[0m/);
    assert.match(c, /\x1b\[36m3\x1b\[0m/);
    assert.match(c, /\x1b\[35mtrue\x1b\[0m/);
    assert.equal(render(data, 'tsv'), 'ro-1\t3\ttrue\n');
    assert.equal(render(data, 'table'), 'Id    N  Ok\n----  -  ----\nro-1  3  true\n');
    assert.equal(render('plain', 'tsv'), 'plain\n');
  });
});
