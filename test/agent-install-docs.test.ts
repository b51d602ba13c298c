/**
 * docs/agent.md "Install on a Linux machine" followed as written: on the machine there is only the packed
 * .tgz, installed globally, so every file the steps name must be in the package at the path they give. The
 * unit was copied from `packaging/…` of a checkout the machine does not have.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';

test('the install steps of docs/agent.md name files the packed package holds: the unit under $(npm root -g)/phasewise, the CLI', () => {
  const doc = readFileSync(join(ROOT, 'docs/agent.md'), 'utf8');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
  const unit = /sudo cp "\$\(npm root -g\)\/([^"]+)" \/etc\/systemd\/system\//.exec(doc);
  assert.ok(unit, 'docs/agent.md copies the unit from the installed package');
  assert.ok(unit[1]!.startsWith(`${pkg.name}/`), `${unit[1]} is inside the package ${pkg.name}`);
  const packed = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(packed.status, 0, packed.stderr);
  const files = new Set((JSON.parse(packed.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  assert.ok(files.has(unit[1]!.slice(pkg.name.length + 1)), `the package holds ${unit[1]}`);
  assert.ok(files.has(pkg.bin.phasewise!), `the package holds the CLI ${pkg.bin.phasewise}`);
  const service = readFileSync(join(ROOT, unit[1]!.slice(pkg.name.length + 1)), 'utf8');
  assert.match(service, /^ExecStart=\/usr\/bin\/env phasewise agent run /m, 'the unit runs the CLI the package installs');
  assert.match(service, /^KillMode=process$/m, 'handler commands survive an agent restart (docs/agent.md "Crash safety")');
});
