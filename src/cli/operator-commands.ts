/**
 * The az-style commands an operator runs against a server (docs/cli.md): login, rollout, fleet,
 * version, set, machine, activity. Each takes `--output` and `--query`; a failure prints one line and
 * exits 1 (the server refused, or cannot be reached), 2 (usage, a bad --query) or 3 (not found).
 */
import type { Command } from 'commander';
import { UsageError } from './errors.js';
import type { Client } from './client/http.js';
import { ClientError, clientFor, EXIT } from './client/http.js';
import { applyQuery, OUTPUTS, outputFormat, render } from './client/output.js';
import { checkServerUrl, readProfile, writeProfile } from './client/profile.js';
import { waitForRollouts } from './client/progress.js';

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
}

/** Runs a command's body: client errors print their one line and set the exit code. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (!(err instanceof ClientError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exitCode = err.exitCode;
    }
  };
}

function client(): Client {
  return clientFor(readProfile());
}

/** An id that goes into a path: bounded and encoded. */
function segment(name: string, value: string): string {
  if (value.length === 0 || value.length > 200) throw new UsageError(`phasewise: ${name}: expected 1 to 200 characters`);
  return encodeURIComponent(value);
}

function topOption(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TOP) throw new UsageError(`phasewise: --top: expected a whole number from 1 to ${MAX_TOP}`);
  return Number(text);
}

/** Waits for the rollouts; a stopped or cancelled one ends the command with exit 1. */
async function waitAndReport(c: Client, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const views = await waitForRollouts(c, ids);
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
      if (opts.token.length < 16 || opts.token.length > 512) throw new UsageError('phasewise login: --token: expected 16 to 512 characters');
      const profile = { server, token: opts.token, ...(opts.caCert ? { caCert: opts.caCert } : {}) };
      // The token is checked before it is saved: a wrong one is refused here, not at the next command.
      await clientFor(profile).get('/phasewise/rollouts?status=running');
      const file = writeProfile(profile);
      print({ server, profile: file, caCert: opts.caCert ?? null }, opts);
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
    .option('--wait', 'wait until the rollout ends, with a progress bar')
    .action(action(async (id: string, opts: OutputOptions & { wait?: boolean }) => {
      const c = client();
      const result = (await c.post(`/phasewise/rollouts/${segment('id', id)}/resume`)) as { id: string };
      if (opts.wait) await waitAndReport(c, [result.id]);
      print(opts.wait ? await c.get(`/phasewise/rollouts/${segment('id', result.id)}`) : result, opts);
    }));
  withOutput(rollout.command('cancel').description('cancel a rollout (batches in flight finish)').argument('<id>'))
    .option('--reason <text>', 'why')
    .action(action(async (id: string, opts: OutputOptions & { reason?: string }) => {
      print(await client().post(`/phasewise/rollouts/${segment('id', id)}/cancel`, opts.reason ? { reason: opts.reason } : {}), opts);
    }));

  const fleet = program.command('fleet').description('the fleet-wide stop and resume, and the fleet summary');
  withOutput(fleet.command('show').description('per extension: machines, versions in use, automatic-upgrade state'))
    .action(action(async (opts: OutputOptions) => print(await client().get('/phasewise/fleet'), opts)));
  withOutput(fleet.command('pause').description('pause every running rollout at once'))
    .option('--reason <text>', 'why')
    .action(action(async (opts: OutputOptions & { reason?: string }) => print(await client().post('/phasewise/fleet/pause', opts.reason ? { reason: opts.reason } : {}), opts)));
  withOutput(fleet.command('resume').description('end the fleet-wide stop'))
    .action(action(async (opts: OutputOptions) => print(await client().post('/phasewise/fleet/resume'), opts)));

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
    .action(action(async (opts: OutputOptions & WithdrawTarget & { version: string; rollback?: boolean; reason?: string; wait?: boolean }) => {
      const c = client();
      const path = `${withdrawBase(opts)}/versions/${segment('--version', opts.version)}/withdraw`;
      const result = (await c.post(path, { rollback: opts.rollback === true, ...(opts.reason ? { reason: opts.reason } : {}) })) as { rollbackRollouts: string[] };
      if (opts.wait) await waitAndReport(c, result.rollbackRollouts);
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
      const time = (name: string, v: string | undefined, fallback: string) => {
        if (v === undefined) return fallback;
        if (Number.isNaN(Date.parse(v)) || v.length > 40) throw new UsageError(`phasewise: ${name}: '${v.slice(0, 40)}' is not an ISO 8601 time`);
        return new Date(Date.parse(v)).toISOString();
      };
      let filter = `eventTimestamp ge '${time('--start-time', opts.startTime, '2000-01-01T00:00:00Z')}' and eventTimestamp le '${time('--end-time', opts.endTime, '2999-12-31T00:00:00Z')}'`;
      if (clauses[0]) filter += ` and ${clauses[0][0]} eq '${String(clauses[0][1]).replace(/'/g, "''")}'`;
      const path = `/subscriptions/${segment('--subscription', opts.subscription)}/providers/microsoft.insights/eventtypes/management/values?${ACTIVITY_API}&$filter=${encodeURIComponent(filter)}`;
      print(await client().list(path, topOption(opts.top, 100)), opts);
    }));
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
    return `/phasewise/subscriptions/${segment('--gallery-image', sub)}/resourceGroups/${segment('--gallery-image', rg)}/galleries/${segment('--gallery-image', g)}/images/${segment('--gallery-image', def)}`;
  }
  if (o.publisher === undefined || o.type === undefined) throw new UsageError('phasewise: an extension is named by --publisher and --type together');
  return `/phasewise/publishers/${segment('--publisher', o.publisher)}/extensionTypes/${segment('--type', o.type)}`;
}
