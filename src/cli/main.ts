#!/usr/bin/env node
/**
 * `phasewise sim | plan`. Bad input (a scenario that does not check out, a wrong option) prints what
 * is wrong and exits 2; nothing prints a stack trace unless PHASEWISE_DEBUG is set.
 */
import { Command, CommanderError } from 'commander';
import { ScenarioError } from '../sim/scenario.js';
import { planCommand } from './plan-command.js';
import { simCommand } from './sim-command.js';

import { UsageError } from './errors.js';

const program = new Command();
program
  .name('phasewise')
  .description('Availability-first automatic upgrades for a fleet of machines: plan, simulate, serve.')
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
  .action((file: string, opts: { seed?: string; events?: string; report?: string; quiet?: boolean }) => simCommand(file, opts));

program
  .command('plan')
  .description('print the plan of a release in a scenario before anything runs')
  .argument('<scenario>', 'scenario file (YAML or JSON)')
  .option('--release <n>', 'which publish event to plan (1 = the first)', '1')
  .option('--detail', 'list the machines of every batch')
  .action((file: string, opts: { release: string; detail?: boolean }) => planCommand(file, opts));

function fail(err: unknown): never {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  if (err instanceof ScenarioError || err instanceof UsageError) {
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
