/**
 * docs/cli.md's command table and the README's command-line block against `--help` of the real CLI:
 * every command they list exists, every option they show is in that command's `--help`, and every
 * option of an operator command's `--help` is in docs/cli.md's table (so neither drifts from the other).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, ROOT } from './helpers/cli.js';

/** Commands and options named in one usage text: the words before the first option or argument, then every `--x`/`-x`. */
export function usage(line: string): { command: string[]; options: string[] } {
  const command: string[] = [];
  for (const w of line.trim().split(/\s+/)) {
    if (!/^[a-z][a-z-]*$/.test(w)) break;
    command.push(w);
  }
  const options = [...line.matchAll(/(?<![\w-])(--?[a-z][a-z-]*)/g)].map((m) => m[1]!);
  return { command, options: [...new Set(options)] };
}

/** The options `--help` lists, long and short. */
function helpOptions(help: string): Set<string> {
  const set = new Set<string>();
  for (const m of help.matchAll(/^\s+((?:-[a-zA-Z], )?--[a-z-]+)/gm)) for (const o of m[1]!.split(', ')) set.add(o);
  return set;
}

const GLOBAL = new Set(['-o', '--output', '--query', '-h', '--help']);

function cliTable(): Array<{ command: string[]; options: string[]; row: string }> {
  const text = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
  const table = text.slice(text.indexOf('## Commands'), text.indexOf('\n## ', text.indexOf('## Commands') + 1));
  return [...table.matchAll(/^\| `([^`]+)`(?:, `([^`]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter((u): u is string => !!u))
    .filter((u) => u !== '--version').map((u) => ({ ...usage(u.replace(/\\\|/g, '|')), row: u }));
}

function readmeBlock(): Array<{ command: string[]; options: string[]; row: string }> {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = text.indexOf('## The command line');
  const open = text.indexOf('```sh\n', at) + 6;
  const block = text.slice(open, text.indexOf('\n```', open));
  return block.split('\n').map((l) => l.replace(/^node dist\/src\/cli\/main\.js\s+/, '')).filter((l) => l !== '--version')
    .map((l) => ({ ...usage(l), row: l }));
}

test('every command and option docs/cli.md and the README\'s command line show is in that command\'s --help', { timeout: 120_000 }, async () => {
  const rows = [...cliTable(), ...readmeBlock()];
  assert.ok(rows.length >= 20, `found ${rows.length} documented usages`);
  const problems: string[] = [];
  for (const { command, options, row } of rows) {
    const r = await cli(...command, '--help');
    if (r.status !== 0 || !r.stdout.startsWith(`Usage: phasewise ${command.join(' ')}`)) {
      problems.push(`${row}: 'phasewise ${command.join(' ')} --help' gave no help of that command`);
      continue;
    }
    const known = helpOptions(r.stdout);
    for (const o of options) if (!known.has(o)) problems.push(`${row}: ${o} is not in 'phasewise ${command.join(' ')} --help'`);
  }
  assert.deepEqual(problems, []);
});

test('every option of an operator command\'s --help is in docs/cli.md\'s command table', { timeout: 120_000 }, async () => {
  const rows = cliTable();
  const byCommand = new Map<string, Set<string>>();
  for (const r of rows) {
    const key = r.command.join(' ');
    byCommand.set(key, new Set([...(byCommand.get(key) ?? []), ...r.options]));
  }
  const problems: string[] = [];
  for (const [command, documented] of byCommand) {
    const help = (await cli(...command.split(' '), '--help')).stdout;
    for (const m of help.matchAll(/^\s+(?:(-[a-zA-Z]), )?(--[a-z-]+)/gm)) {
      const [short, long] = [m[1], m[2]!];
      if (GLOBAL.has(long)) continue;
      if (!documented.has(long) && !(short && documented.has(short))) problems.push(`phasewise ${command}: ${long} is not in docs/cli.md's table`);
    }
  }
  assert.deepEqual(problems, []);
});

test('usage() reads the command words and the options of a usage line', () => {
  assert.deepEqual(usage('set show --subscription S -g RG -n NAME'), { command: ['set', 'show'], options: ['--subscription', '-g', '-n'] });
  assert.deepEqual(usage('sim SCENARIO [--seed N] [--store sqlite:FILE [--replace] | --store postgres://URL]'),
    { command: ['sim'], options: ['--seed', '--store', '--replace'] });
  assert.deepEqual(usage('version withdraw --image PUBLISHER:OFFER:SKU --version V [--rollback] …').command, ['version', 'withdraw']);
});

test('fleet pause --help says the stop holds rollouts that start during it, and fleet show --help names the stop (docs/cli.md says both)', async () => {
  const fleet = (await cli('fleet', '--help')).stdout.replace(/\s+/g, ' ');
  assert.match(fleet, /pause \[options\] the fleet-wide stop: pause every running rollout at once, and each one that starts before fleet resume/);
  assert.match(fleet, /show \[options\] per extension: .*held releases; fleetStop, the stop in effect/);
});
