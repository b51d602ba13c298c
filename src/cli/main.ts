#!/usr/bin/env node
/**
 * `phasewise sim | plan`. Bad input (a scenario that does not check out, a wrong option) prints what
 * is wrong and exits 2; nothing prints a stack trace unless PHASEWISE_DEBUG is set.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ScenarioError } from '../sim/scenario.js';
import { AgentLocked } from '../agent/agent-lock.js';
import { planCommand } from './plan-command.js';
import { simCommand } from './sim-command.js';
import type { SimOptions } from './sim-command.js';
import { dbBackupCommand, dbCheckCommand, dbRestoreCommand, DEFAULT_DB, DEMO_DB } from './db-command.js';
import { StoreError } from '../store/sqlite/database.js';

import { prefixCommanderErrors, UsageError, usageLine } from './errors.js';
import { repeatedOption } from './repeated-options.js';
import { serveCommand } from './serve-command.js';
import { registerPackageCommands } from './package-command.js';
import type { ServeOptions } from './serve-command.js';
import { registerAgentCommands } from './agent-command.js';
import { registerOperatorCommands } from './operator-commands.js';

/** The version in package.json (dist/src/cli/main.js → ../../../package.json). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `phasewise ${pkg.version}`;
}

const program = new Command();
program
  .name('phasewise')
  .description('Availability-first automatic upgrades for a fleet of machines: plan, simulate, serve.')
  .version(packageVersion(), '-V, --version', 'print the version and exit')
  // Program options only before a command: `package sign --version 1.2.0.0` is the package's version.
  .enablePositionalOptions()
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('sim')
  .description('simulate a scenario with the real engine on a virtual clock; print a summary')
  .argument('<scenario>', 'scenario file (YAML or JSON), see docs/scenarios.md')
  .option('--seed <n>', 'seed for the simulated fleet (overrides the scenario)')
  .option('--events <file>', 'write the event log as JSON Lines')
  .option('--report <file>', 'write a self-contained HTML report with a chart of the rollout')
  .option('--quiet', 'no progress on the terminal')
  .option('--store <store>', 'where the engine keeps its state: memory (default), sqlite:FILE (a new file) or postgres://… (an empty database)', 'memory')
  .option('--replace', 'with --store sqlite:FILE, replace FILE if it exists (it must not be in use)')
  .option('--group-ticks <n>', 'with sqlite:FILE, engine commits at most per transaction (group commit; 1 = off; default 1000)')
  .option('--group-ms <n>', 'with sqlite:FILE, wall milliseconds at most a group stays open (default 250)')
  .action((file: string, opts: SimOptions) => simCommand(file, opts));

program
  .command('plan')
  .description('print the plan of a release in a scenario before anything runs')
  .argument('<scenario>', 'scenario file (YAML or JSON)')
  .option('--release <n>', 'which publish event to plan (1 = the first)', '1')
  .option('--detail', 'list the machines of every batch')
  .option('--seed <n>', 'seed for the simulated fleet (overrides the scenario; the fleet `sim --seed N` runs)')
  .action((file: string, opts: { release: string; detail?: boolean; seed?: string }) => planCommand(file, opts));

program
  .command('serve')
  .description('serve the ARM-compatible API over HTTPS, with the engine on SQLite, or as one of several replicas on PostgreSQL (docs/api.md, docs/deploy.md)')
  .option('--config <file>', 'configuration file (YAML or JSON); also $PHASEWISE_CONFIG')
  .option('--port <n>', 'port to listen on (0 picks a free one)')
  .option('--host <address>', 'address to listen on')
  .option('--data-dir <dir>', 'folder for the database, certificate, token and key')
  .option('--scenario <file>', 'scenario whose fleet, catalog and events seed a new database')
  .option('--clock-factor <x>', 'simulated milliseconds per real millisecond')
  .option('--store <url>', 'postgres://…: run as a replica sharing that database (docs/deploy.md); also $PHASEWISE_STORE')
  .action((opts: ServeOptions) => serveCommand(opts));

registerPackageCommands(program);

const db = program.command('db').description('check, back up or restore a Phasewise database (SQLite file or PostgreSQL)');
db.command('check')
  .description('integrity check, schema version and what the database holds (safe while Phasewise runs)')
  .option('--db <file|url>', `the database: a file or postgres://… (default: $PHASEWISE_DB, else ${DEFAULT_DB}, else ${DEMO_DB} as npm start makes it)`)
  .option('--json', 'print the report as JSON')
  .action((opts: { db?: string; json?: boolean }) => dbCheckCommand(opts));
db.command('backup')
  .description('a consistent online copy of the database to FILE (never overwrites)')
  .argument('<file>', 'where to write the copy')
  .option('--db <file|url>', `the database: a file or postgres://… (default: $PHASEWISE_DB, else ${DEFAULT_DB}, else ${DEMO_DB})`)
  .action((file: string, opts: { db?: string }) => dbBackupCommand(file, opts));
db.command('restore')
  .description('load a backup (a Phasewise SQLite file) in place of a SQLite database (its serve stopped) or into an empty PostgreSQL database')
  .argument('<file>', 'the backup')
  .option('--db <file|url>', 'the database to restore into: a SQLite file, or postgres://… (default: $PHASEWISE_DB; never a default file)')
  .option('--replace', 'replace the SQLite database there, with its WAL and journal files (without it, the file must not exist)')
  .action((file: string, opts: { db?: string; replace?: boolean }) => dbRestoreCommand(file, opts));

registerAgentCommands(program);
registerOperatorCommands(program);
prefixCommanderErrors(program);

/** The command running (`plan`, `agent run`, …): its usage errors are prefixed with it. */
let commandPath: string[] = [];

// Before any command runs: an option that takes a value, given twice, is a usage error (exit 2).
program.hook('preAction', (_program, command) => {
  commandPath = [];
  for (let c: Command | null = command; c && c !== program; c = c.parent) commandPath.unshift(c.name());
  const valued = command.options.filter((o) => o.required || o.optional)
    .flatMap((o) => (o.long ? [{ long: o.long, optional: o.optional, ...(o.short ? { short: o.short } : {}) }] : []));
  const repeated = repeatedOption(process.argv.slice(2), valued);
  if (repeated !== null) throw new UsageError(`${repeated}: given more than once; give it once`);
});

/** Exit codes of store faults, so scripts can tell them apart. */
const STORE_EXIT: Record<StoreError['code'], number> = {
  STORE_MISSING: 2, STORE_EXISTS: 2, STORE_NOT_DATABASE: 2, STORE_CORRUPT: 3, STORE_NEWER: 4, STORE_LOCKED: 5, STORE_IO: 6, STORE_FENCED: 7, STORE_UNREACHABLE: 8, STORE_BAD_URL: 2,
};

function fail(err: unknown): never {
  if (err instanceof StoreError) {
    process.stderr.write(`phasewise: ${err.message}\n`);
    process.exit(STORE_EXIT[err.code]);
  }
  if (err instanceof AgentLocked) {
    process.stderr.write(`phasewise: ${err.message}\n`);
    process.exit(5); // "in use by another process", as STORE_LOCKED
  }
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof UsageError) {
    process.stderr.write(`${usageLine(err.message, commandPath)}\n`);
    process.exit(2);
  }
  // A scenario's problems, one line each, start with the file's name (as a compiler's do).
  if (err instanceof ScenarioError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`phasewise: ${(err as Error).message}\n`);
  if (process.env.PHASEWISE_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
}

// `phasewise plan big.yaml | head` closes stdout early: the reader has what it wanted, so stop quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  fail(err);
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  fail(err);
}
