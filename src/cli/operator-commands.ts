/**
 * The az-style commands an operator runs against a server (docs/cli.md): login, rollout, fleet,
 * version, set, machine, activity. Each takes `--output` and `--query`; a failure prints one line and
 * exits 1 (the server refused, or cannot be reached), 2 (usage, a bad --query) or 3 (not found).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError, usageLine } from './errors.js';
import type { Client } from './client/http.js';
import { ClientError, clientFor, EXIT } from './client/http.js';
import { applyQuery, compileQuery, emptyTableNote, OUTPUTS, outputFormat, render } from './client/output.js';
import { checkServerUrl, readProfile, tokenProblem, writeProfile } from './client/profile.js';
import { DEFAULT_WAIT_S, MAX_WAIT_S, waitForRollouts } from './client/progress.js';

interface OutputOptions { output?: string; query?: string }

const MAX_TOP = 10_000;
const ROLLOUT_STATUSES = ['running', 'completed', 'stopped', 'cancelled', 'superseded'];
const SET_API = 'api-version=2026-03-01';
const ACTIVITY_API = 'api-version=2015-04-01';

function withOutput(cmd: Command): Command {
  return cmd
    .option('-o, --output <format>', `output format: ${OUTPUTS.join(', ')}`, 'json')
    .option('--query <jmespath>', 'JMESPath query applied to the result before it is printed');
}

function print(data: unknown, opts: OutputOptions): void {
  const format = outputFormat(opts.output);
  const result = applyQuery(data, opts.query);
  const color = !process.env.NO_COLOR && (process.stdout.isTTY === true || process.env.FORCE_COLOR !== undefined);
  process.stdout.write(render(result, format, color));
  const note = emptyTableNote(result, format);
  if (note) process.stderr.write(`${note}\n`);
}

/**
 * Runs a command's body: client errors print their one line and set the exit code. `--output` and
 * `--query` are checked first: a typo in them must not come after a pause or a withdrawal was sent.
 */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args[args.length - 1] as Command;
    const opts = command.opts<OutputOptions>();
    outputFormat(opts.output);
    compileQuery(opts.query);
    try {
      await fn(...args);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      // A usage error found by the client (a bad CA file, PHASEWISE_REQUEST_TIMEOUT) names the command as the others do.
      process.stderr.write(`${err.exitCode === EXIT.usage ? usageLine(err.message, pathOf(command)) : err.message}\n`);
      process.exitCode = err.exitCode;
    }
  };
}

/** `rollout list` for that command: the names from the program's command down. */
function pathOf(command: Command): string[] {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names;
}

function client(): Client {
  return clientFor(readProfile());
}

/**
 * An id that goes into a path: bounded and encoded. `.` and `..` are refused: URLs resolve them (even
 * encoded as %2E), so `machine show ..` would ask for another resource than the one named.
 */
function segment(name: string, value: string): string {
  if (value.length === 0 || value.length > 200) throw new UsageError(`phasewise: ${name}: expected 1 to 200 characters`);
  if (value === '.' || value === '..') throw new UsageError(`phasewise: ${name}: '${value}' is not a name (a path step, not an id)`);
  if (/[\x00-\x1f\x7f]/.test(value)) throw new UsageError(`phasewise: ${name}: control characters are not part of any name`);
  return encodeURIComponent(value);
}

function topOption(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TOP) throw new UsageError(`phasewise: --top: expected a whole number from 1 to ${MAX_TOP}`);
  return Number(text);
}

/** `--timeout` (seconds) of `--wait`; without `--wait` it would bound nothing, so it is refused before any request. */
function waitTimeoutOption(text: string | undefined, wait: boolean | undefined): number {
  if (text !== undefined && wait !== true) throw new UsageError('phasewise: --timeout: only with --wait (it bounds the wait); nothing was sent');
  if (text === undefined) return DEFAULT_WAIT_S;
  if (!/^\d{1,7}$/.test(text) || Number(text) < 1 || Number(text) > MAX_WAIT_S) throw new UsageError(`phasewise: --timeout: expected whole seconds from 1 to ${MAX_WAIT_S}`);
  return Number(text);
}

/** Waits for the rollouts; a stopped or cancelled one ends the command with exit 1, a timeout with exit 4. */
async function waitAndReport(c: Client, ids: string[], timeoutS: number): Promise<void> {
  if (ids.length === 0) return;
  const views = await waitForRollouts(c, ids, { timeoutMs: timeoutS * 1000 });
  const bad = views.filter((v) => v.status !== 'completed');
  if (bad.length > 0) throw new ClientError(`phasewise: ${bad.map((v) => `${v.id} ${v.status}: ${v.reason ?? ''}`).join('; ')}`, EXIT.error);
}

export function registerOperatorCommands(program: Command): void {
  withOutput(program.command('login').description('remember a server, its token and CA certificate for the commands below'))
    .requiredOption('--server <url>', 'the server, e.g. https://127.0.0.1:8443')
    .requiredOption('--token <token>', 'a bearer token the server knows (DATA_DIR/token, or one of its configured tokens)')
    .option('--ca-cert <file>', "PEM file the server's certificate chains to (serve's DATA_DIR/tls/cert.pem)")
    .action(action(async (opts: OutputOptions & { server: string; token: string; caCert?: string }) => {
      const server = checkServerUrl(opts.server);
      const problem = tokenProblem(opts.token);
      if (problem) throw new UsageError(`phasewise login: --token: ${problem}`);
      // Absolute: the next command may run from another folder than login did.
      const caCert = opts.caCert ? resolve(opts.caCert) : undefined;
      const profile = { server, token: opts.token, ...(caCert ? { caCert } : {}) };
      // The token is checked before it is saved: a wrong one is refused here, not at the next command.
      await clientFor(profile).get('/phasewise/rollouts?status=running');
      const file = writeProfile(profile);
      print({ server, profile: file, caCert: caCert ?? null }, opts);
    }));

  const rollout = program.command('rollout').description('list, show, pause, resume and cancel rollouts');
  withOutput(rollout.command('list').description('rollouts, oldest first'))
    .option('--status <status>', `only rollouts in this state: ${ROLLOUT_STATUSES.join(', ')}`)
    .option('--top <n>', `at most n rollouts (default 1000, at most ${MAX_TOP})`)
    .action(action(async (opts: OutputOptions & { status?: string; top?: string }) => {
      if (opts.status !== undefined && !ROLLOUT_STATUSES.includes(opts.status)) throw new UsageError(`phasewise: --status: expected one of ${ROLLOUT_STATUSES.join(', ')}`);
      const top = topOption(opts.top, 1000);
      print(await client().list(`/phasewise/rollouts${opts.status ? `?status=${opts.status}` : ''}`, top), opts);
    }));
  withOutput(rollout.command('show').description('one rollout: phases, counts, estimate, windows').argument('<id>', 'rollout id, e.g. ro-3'))
    .action(action(async (id: string, opts: OutputOptions) => {
      print(await client().get(`/phasewise/rollouts/${segment('id', id)}`), opts);
    }));
  withOutput(rollout.command('pause').description("pause a rollout: its release is held, so no new batch of that version starts anywhere").argument('<id>'))
    .option('--reason <text>', 'why (kept in the event and activity logs)')
    .action(action(async (id: string, opts: OutputOptions & { reason?: string }) => {
      print(await client().post(`/phasewise/rollouts/${segment('id', id)}/pause`, opts.reason ? { reason: opts.reason } : {}), opts);
    }));
  withOutput(rollout.command('resume').description('resume a paused or stopped rollout, or sets R23 stopped').argument('<id>'))
    .option('--reason <text>', 'why (kept in the event and activity logs)')
    .option('--wait', 'wait until the rollout ends, with a progress bar')
    .option('--timeout <seconds>', `with --wait: give up waiting after this long (default ${DEFAULT_WAIT_S}; exit code 4, the rollout goes on)`)
    .action(action(async (id: string, opts: OutputOptions & { reason?: string; wait?: boolean; timeout?: string }) => {
      const timeout = waitTimeoutOption(opts.timeout, opts.wait);
      const c = client();
      const result = (await c.post(`/phasewise/rollouts/${segment('id', id)}/resume`, opts.reason ? { reason: opts.reason } : {})) as { id: string };
      if (opts.wait) await waitAndReport(c, [result.id], timeout);
      print(opts.wait ? await c.get(`/phasewise/rollouts/${segment('id', result.id)}`) : result, opts);
    }));
  withOutput(rollout.command('cancel').description('cancel a rollout (batches in flight finish)').argument('<id>'))
    .option('--reason <text>', 'why')
    .action(action(async (id: string, opts: OutputOptions & { reason?: string }) => {
      print(await client().post(`/phasewise/rollouts/${segment('id', id)}/cancel`, opts.reason ? { reason: opts.reason } : {}), opts);
    }));

  const fleet = program.command('fleet').description('the fleet-wide stop and resume, and the fleet summary');
  withOutput(fleet.command('show').description('per extension: machines, versions in use, automatic-upgrade state; held releases; fleetStop, the stop in effect'))
    .action(action(async (opts: OutputOptions) => print(await client().get('/phasewise/fleet'), opts)));
  withOutput(fleet.command('pause').description('the fleet-wide stop: pause every running rollout at once, and each one that starts before fleet resume; '
    + 'answers paused and, apart, heldOtherwise: rollouts held by their own pause or the evidence, which fleet resume leaves held'))
    .option('--reason <text>', 'why')
    .action(action(async (opts: OutputOptions & { reason?: string }) => print(await client().post('/phasewise/fleet/pause', opts.reason ? { reason: opts.reason } : {}), opts)));
  withOutput(fleet.command('resume').description('end the fleet-wide stop'))
    .option('--reason <text>', 'why')
    .action(action(async (opts: OutputOptions & { reason?: string }) => print(await client().post('/phasewise/fleet/resume', opts.reason ? { reason: opts.reason } : {}), opts)));

  const version = program.command('version').description('withdraw a bad version');
  withOutput(version.command('withdraw').description('withdraw a version for good: no new attempts; with --rollback its machines go back'))
    .option('--publisher <name>', 'extension publisher, e.g. Microsoft.Azure.Monitor (with --type)')
    .option('--type <name>', 'extension type, e.g. AzureMonitorLinuxAgent')
    .option('--image <urn>', 'a platform OS image as publisher:offer:sku, e.g. Canonical:ubuntu-24_04-lts:server')
    .option('--gallery-image <id>', "a gallery image definition's id, /subscriptions/…/galleries/{g}/images/{def}")
    .requiredOption('--version <version>', 'the version to withdraw, e.g. 1.31.0.0 or 24.04.202601010')
    .option('--rollback', 'return every machine on it to the version it ran before')
    .option('--reason <text>', 'why')
    .option('--wait', 'with --rollback: wait until the rollback rollouts end, with a progress bar')
    .option('--timeout <seconds>', `with --wait: give up waiting after this long (default ${DEFAULT_WAIT_S}; exit code 4, the rollouts go on)`)
    .action(action(async (opts: OutputOptions & WithdrawTarget & { version: string; rollback?: boolean; reason?: string; wait?: boolean; timeout?: string }) => {
      // A withdrawal is for good: `--wait` without `--rollback` most likely lost its `--rollback`, so nothing is sent.
      if (opts.wait && opts.rollback !== true) throw new UsageError('phasewise: --wait: only with --rollback (a withdrawal without it starts no rollout to wait for); nothing was withdrawn');
      const timeout = waitTimeoutOption(opts.timeout, opts.wait);
      const path = `${withdrawBase(opts)}/versions/${segment('--version', opts.version)}/withdraw`;
      const c = client();
      const result = (await c.post(path, { rollback: opts.rollback === true, ...(opts.reason ? { reason: opts.reason } : {}) })) as { rollbackRollouts?: unknown };
      const ids = Array.isArray(result?.rollbackRollouts) ? result.rollbackRollouts.filter((x): x is string => typeof x === 'string') : [];
      if (opts.wait) await waitAndReport(c, ids, timeout);
      print(result, opts);
    }));

  const set = program.command('set').description('scale sets');
  withOutput(set.command('show').description("a scale set's latest rolling upgrade (R81)"))
    .requiredOption('--subscription <id>', 'subscription')
    .requiredOption('-g, --resource-group <name>', 'resource group')
    .requiredOption('-n, --name <name>', 'scale set name')
    .action(action(async (opts: OutputOptions & { subscription: string; resourceGroup: string; name: string }) => {
      const path = `/subscriptions/${segment('--subscription', opts.subscription)}/resourceGroups/${segment('--resource-group', opts.resourceGroup)}`
        + `/providers/Microsoft.Compute/virtualMachineScaleSets/${segment('--name', opts.name)}/rollingUpgrades/latest?${SET_API}`;
      print(await client().get(path), opts);
    }));

  const machine = program.command('machine').description('machines');
  withOutput(machine.command('show').description('one machine: placement, extensions, its last 200 events').argument('<id>', 'machine id, e.g. web/0'))
    .action(action(async (id: string, opts: OutputOptions) => print(await client().get(`/phasewise/machines/${segment('id', id)}`), opts)));

  const activity = program.command('activity').description('the activity log (Azure Monitor shape)');
  withOutput(activity.command('list').description("a subscription's activity log, newest first"))
    .requiredOption('--subscription <id>', 'subscription')
    .option('--start-time <iso>', 'from (default: the beginning)')
    .option('--end-time <iso>', 'to (default: the end of time)')
    .option('--caller <name>', 'only entries of this caller')
    .option('--correlation-id <id>', 'only entries of this correlation id (a rollout id for its events)')
    .option('-g, --resource-group <name>', 'only entries of this resource group')
    .option('--top <n>', `at most n entries (default 100, at most ${MAX_TOP})`)
    .action(action(async (opts: OutputOptions & { subscription: string; startTime?: string; endTime?: string; caller?: string; correlationId?: string; resourceGroup?: string; top?: string }) => {
      const clauses = [['caller', opts.caller], ['correlationId', opts.correlationId], ['resourceGroupName', opts.resourceGroup]].filter(([, v]) => v !== undefined);
      if (clauses.length > 1) throw new UsageError('phasewise: give at most one of --caller, --correlation-id, --resource-group (the activity log filters on one)');
      const start = isoTimeOption('--start-time', opts.startTime, '2000-01-01T00:00:00.000Z');
      const end = isoTimeOption('--end-time', opts.endTime, '2999-12-31T00:00:00.000Z');
      if (start > end) throw new UsageError(`phasewise: --start-time ${start} is after --end-time ${end}`);
      let filter = `eventTimestamp ge '${start}' and eventTimestamp le '${end}'`;
      if (clauses[0]) filter += ` and ${clauses[0][0]} eq '${String(clauses[0][1]).replace(/'/g, "''")}'`;
      const path = `/subscriptions/${segment('--subscription', opts.subscription)}/providers/microsoft.insights/eventtypes/management/values?${ACTIVITY_API}&$filter=${encodeURIComponent(filter)}`;
      print(await client().list(path, topOption(opts.top, 100)), opts);
    }));
}

/** YYYY-MM-DD, or with THH:MM[:SS[.fff]] and Z or an offset; no time zone means UTC, as in az. */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * `--start-time`, `--end-time`: ISO 8601 only. Date.parse alone reads '1' as 2001 and 'Feb 30' as March 2
 * (in local time): a filter the user did not mean, so such values are refused.
 */
function isoTimeOption(name: string, v: string | undefined, fallback: string): string {
  if (v === undefined) return fallback;
  const m = v.length <= 40 ? ISO_TIME.exec(v.trim()) : null;
  const refuse = () => new UsageError(`phasewise: ${name}: '${v.slice(0, 40)}' is not an ISO 8601 time such as 2026-03-01 or 2026-03-01T12:00:00Z`);
  if (!m) throw refuse();
  const [, y, mo, d, h = '00', mi = '00', sec = '00', zone] = m;
  if (Number(mo) < 1 || Number(mo) > 12 || Number(d) < 1 || Number(d) > new Date(Date.UTC(Number(y), Number(mo), 0)).getUTCDate()) throw refuse();
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) throw refuse();
  const t = Date.parse(zone || m[4] === undefined ? v.trim().replace(' ', 'T') : `${v.trim().replace(' ', 'T')}Z`);
  if (Number.isNaN(t)) throw refuse();
  return new Date(t).toISOString();
}

interface WithdrawTarget { publisher?: string; type?: string; image?: string; galleryImage?: string }

/** The API path of what a withdrawal names: an extension type, a platform image or a gallery image. */
function withdrawBase(o: WithdrawTarget): string {
  const given = [o.publisher !== undefined || o.type !== undefined, o.image !== undefined, o.galleryImage !== undefined].filter(Boolean).length;
  if (given !== 1) throw new UsageError('phasewise: name one thing to withdraw: --publisher with --type (an extension), --image (a platform image) or --gallery-image');
  if (o.image !== undefined) {
    const parts = o.image.split(':');
    if (parts.length !== 3 || parts.some((x) => x === '')) throw new UsageError(`phasewise: --image: '${o.image.slice(0, 200)}' is not publisher:offer:sku`);
    const [p, offer, sku] = parts as [string, string, string];
    return `/phasewise/images/publishers/${segment('--image', p)}/offers/${segment('--image', offer)}/skus/${segment('--image', sku)}`;
  }
  if (o.galleryImage !== undefined) {
    const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Compute\/galleries\/([^/]+)\/images\/([^/]+)\/?$/i.exec(o.galleryImage);
    if (!m) throw new UsageError(`phasewise: --gallery-image: '${o.galleryImage.slice(0, 200)}' is not /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/{g}/images/{def}`);
    const [sub, rg, g, def] = m.slice(1) as [string, string, string, string];
    const at = (v: string) => segment('--gallery-image', v);
    return `/phasewise/subscriptions/${at(sub)}/resourceGroups/${at(rg)}/galleries/${at(g)}/images/${at(def)}`;
  }
  if (o.publisher === undefined || o.type === undefined) throw new UsageError('phasewise: an extension is named by --publisher and --type together');
  return `/phasewise/publishers/${segment('--publisher', o.publisher)}/extensionTypes/${segment('--type', o.type)}`;
}
