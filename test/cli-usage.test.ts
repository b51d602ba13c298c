/**
 * The first hour on the command line: clear usage errors (exit 2) before anything is created, a port
 * in use said plainly, `db check` finding the database `npm start` made and telling a non-database
 * apart from a damaged one, `sim` pointing only to files it wrote, and `--version`.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { dbFile, DEMO_DB } from '../src/cli/db-command.js';
import { usageLine } from '../src/cli/errors.js';
import { cli, CLI, ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'phasewise-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('serve: bad options and a port in use', () => {
  for (const port of ['99999', 'abc', '-1', '80.5']) {
    test(`--port ${port} is a usage error (exit 2) and creates no data folder`, async () => {
      const data = join(dir, `data-${port}`);
      const r = await cli('serve', '--port', port, '--data-dir', data);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`--port: expected a whole number from 0 to 65535.*got '${port.replace('.', '\\.')}'`));
      assert.doesNotMatch(r.stderr, /environment|NaN/);
      assert.equal(existsSync(data), false);
    });
  }

  test('--clock-factor abc is a usage error', async () => {
    const r = await cli('serve', '--clock-factor', 'abc', '--data-dir', join(dir, 'cf'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--clock-factor: expected a positive number/);
  });

  test('a port in use: a clear message, exit 2, and no data folder created', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const data = join(dir, 'busy');
      const r = await cli('serve', '--port', String(port), '--host', '127.0.0.1', '--data-dir', data);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
      assert.equal(existsSync(data), false);
    } finally {
      busy.close();
    }
  });
});

describe('serve: what it prints', () => {
  test('every address it prints is https:// (Fastify\'s own listening line too: TLS comes from our server factory)', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(dir, 'listen')], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 30_000);
        const seen = (d: string) => {
          out += d;
          if (/serving the ARM API at/.test(out) && /Server listening at/.test(out)) {
            clearTimeout(t);
            resolve();
          }
        };
        child.stdout!.setEncoding('utf8').on('data', seen);
        child.stderr!.setEncoding('utf8').on('data', seen);
        child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
      });
    } finally {
      child.kill('SIGKILL');
    }
    const urls = [...out.matchAll(/\b(https?):\/\/127\.0\.0\.1:\d+/g)].map((m) => m[1]);
    assert.ok(urls.length >= 2, out);
    assert.deepEqual(urls.filter((u) => u !== 'https'), [], out);
  });
});

describe('db check', () => {
  test('a file that was never a database is named as such (exit 2), with no advice to restore a backup', async () => {
    const f = join(dir, 'notes.txt');
    writeFileSync(f, 'hello\n');
    const r = await cli('db', 'check', '--db', f);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /is not a database at all/);
    assert.doesNotMatch(r.stderr, /restore/);
    assert.equal(readFileSync(f, 'utf8'), 'hello\n', 'left untouched');
  });

  test('without --db it looks where npm start keeps the demo database when serve\'s default is absent', () => {
    const cwd = process.cwd();
    const work = join(dir, 'cwd');
    mkdirSync(join(work, 'data', 'demo'), { recursive: true });
    writeFileSync(join(work, DEMO_DB), '');
    const saved = process.env.PHASEWISE_DB;
    delete process.env.PHASEWISE_DB;
    try {
      process.chdir(work);
      assert.equal(dbFile(undefined), DEMO_DB);
      assert.equal(dbFile('x.sqlite'), 'x.sqlite');
    } finally {
      process.chdir(cwd);
      if (saved !== undefined) process.env.PHASEWISE_DB = saved;
    }
  });
});

describe('plan --seed', () => {
  test('plans the generated fleet sim --seed runs (same machines), and rejects a seed that is not a whole number', async () => {
    // examples/large.yaml generates its fleet from the seed: another seed, another fleet.
    const count = (text: string, re: RegExp) => Number(re.exec(text)?.[1]?.replace(/,/g, ''));
    const planned = await cli('plan', 'examples/large.yaml', '--seed', '5');
    assert.equal(planned.status, 0, planned.stderr);
    const sim = await cli('sim', 'examples/large.yaml', '--seed', '5', '--quiet');
    assert.equal(sim.status, 0, sim.stderr);
    const simEligible = count(sim.stdout, /eligible (\d+)/);
    assert.equal(count(planned.stdout, /Plan ro-1: .*\n\s+(\d+) machines in/), simEligible);
    const other = await cli('plan', 'examples/large.yaml');
    assert.notEqual(count(other.stdout, /Plan ro-1: .*\n\s+(\d+) machines in/), simEligible, 'the seed changed nothing: this test proves nothing');
    const bad = await cli('plan', 'examples/large.yaml', '--seed', 'abc');
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, 'phasewise plan: --seed: expected a whole number, got "abc"\n', 'prefixed as every command\'s usage errors');
  });
});

describe('usage errors name the command, as every command\'s do', () => {
  test('plan and sim: phasewise plan: / phasewise sim: before the option', async () => {
    const cases: Array<[string[], string]> = [
      [['sim', 'examples/small.yaml', '--seed', '1.5'], 'phasewise sim: --seed: expected a whole number, got "1.5"\n'],
      [['sim', 'examples/small.yaml', '--store', 'bogus'], 'phasewise sim: --store: expected memory, sqlite:FILE or postgres://USER@HOST/DATABASE, got "bogus"\n'],
      [['plan', 'examples/small.yaml', '--release', '9'], 'phasewise plan: examples/small.yaml: the scenario has 1 publish event(s); --release 9 does not exist\n'],
      [['plan', 'examples/small.yaml', '--seed', '1', '--seed', '2'], 'phasewise plan: --seed: given more than once; give it once\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await cli(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, stderr, args.join(' '));
    }
  });

  test('Commander\'s own usage errors (unknown option or command, missing argument) name the command too, one line, exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['rollout', 'list', '--foo'], "phasewise rollout list: unknown option '--foo'\n"],
      [['rollout', 'show'], "phasewise rollout show: missing required argument 'id'\n"],
      [['rollout', 'list', '--top'], "phasewise rollout list: option '--top <n>' argument missing\n"],
      [['bogus'], "phasewise: unknown command 'bogus'\n"],
      [['rollout', 'lst'], "phasewise rollout: unknown command 'lst' (Did you mean list?)\n"],
      [['db', 'check', '--db'], "phasewise db check: option '--db <file|url>' argument missing\n"],
      [['agent', 'run', '--nope'], "phasewise agent run: unknown option '--nope'\n"],
    ];
    for (const [args, stderr] of cases) {
      const r = await cli(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, stderr, args.join(' '));
    }
  });

  test('the operators\' commands\' own usage errors name the command (they said only "phasewise:"), exit 2', async () => {
    const cases: Array<[string[], string]> = [
      [['rollout', 'list', '--top', '0'], 'phasewise rollout list: --top: expected a whole number from 1 to 10000\n'],
      [['version', 'withdraw', '--publisher', 'P', '--type', 'T', '--version', '1.0', '--wait'],
        'phasewise version withdraw: --wait: only with --rollback (a withdrawal without it starts no rollout to wait for); nothing was withdrawn\n'],
      [['rollout', 'resume', 'ro-1', '--timeout', '5'], 'phasewise rollout resume: --timeout: only with --wait (it bounds the wait); nothing was sent\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await cli(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, stderr, args.join(' '));
    }
  });

  test('a message that names the command already is not prefixed twice; nested commands are named whole', () => {
    assert.equal(usageLine('phasewise serve: --port: bad', ['serve']), 'phasewise serve: --port: bad');
    assert.equal(usageLine('--imds-port must be 0-65535', ['agent', 'run']), 'phasewise agent run: --imds-port must be 0-65535');
    assert.equal(usageLine('--db: empty', []), 'phasewise: --db: empty');
    assert.equal(usageLine('phasewise: --top: expected a whole number', ['rollout', 'list']), 'phasewise rollout list: --top: expected a whole number');
  });
});

describe('sim output', () => {
  test('without --events the summary does not point to an event log it did not write', async () => {
    // large.yaml breaches more gates than the summary lists (8), so it says where the rest are.
    const r = await cli('sim', 'examples/large.yaml', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /in the event log/);
    assert.match(r.stdout, /more \(write the event log with --events FILE to see them\)/);
  });

  test('breached gates are not headed "gates that held"', async () => {
    const r = await cli('sim', 'examples/bad-release.yaml', '--quiet');
    assert.equal(r.status, 0, r.stderr);
    for (const block of r.stdout.split('\nRollout ')) {
      const held = /gates that held: (.*)/.exec(block)?.[1] ?? '';
      const lines = block.split('\n').filter((l) => /gate\.(held|breached)/.test(l));
      if (lines.every((l) => l.includes('gate.breached'))) assert.equal(held, '', block);
    }
    assert.match(r.stdout, /gates breached: R23/);
  });

  test('--report into a missing folder creates it and says so', async () => {
    const report = join(dir, 'new', 'deeper', 'r.html');
    const r = await cli('sim', 'examples/small.yaml', '--quiet', '--report', report);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(report));
    assert.match(r.stdout, /created the folder .*deeper for --report/);
  });

  test('--report below a file is a usage error before the run', async () => {
    const file = join(dir, 'plain');
    writeFileSync(file, '');
    const r = await cli('sim', 'examples/small.yaml', '--quiet', '--report', join(file, 'r.html'));
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^phasewise sim: --report: .*plain is not a folder\n$/);
  });
});

test('--version prints the package version', async () => {
  const r = await cli('--version');
  assert.equal(r.status, 0);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(r.stdout.trim(), `phasewise ${pkg.version}`);
});
