/**
 * `phasewise agent …` and `phasewise package build`: the machine side of issue 11 (docs/agent.md).
 * Usage mistakes exit 2, failures exit 1, each with one line saying what is wrong.
 */
import type { Command } from 'commander';
import { acquireAgentLock } from '../agent/agent-lock.js';
import { Agent, DEFAULT_REBOOT_COMMAND } from '../agent/agent-loop.js';
import type { AgentOptions } from '../agent/agent-loop.js';
import { DEFAULT_BIN_DIRS } from '../agent/patching/commands.js';
import type { ManagerConfig } from '../agent/patching/commands.js';
import { connect, EnrollError, loadCredentials, readEnrollment } from '../agent/enrollment.js';
import { Journal } from '../agent/journal.js';
import { DEFAULT_CONFIG_DIR, DEFAULT_LIB_DIR, DEFAULT_LOG_DIR } from '../agent/layout.js';
import type { AgentDirs } from '../agent/layout.js';
import { PolicyError, POLICY_KEYS, policyValue, readPolicy, setPolicy } from '../agent/local-policy.js';
import { buildPackage, PackageBuildError } from '../agent/package-build.js';
import { shown } from '../agent/shown.js';
import { addTrustedKey, listTrustedKeys, removeTrustedKey, TrustError } from '../agent/trust-store.js';
import { UsageError } from './errors.js';

interface DirOptions {
  libDir?: string;
  configDir?: string;
  logDir?: string;
}

/**
 * The agent's folders. An empty one (`--config-dir "$UNSET"`) is a usage mistake: it meant the current
 * folder, where `agent config set` wrote a policy that `agent run` on the real folder never read.
 */
function dirsOf(o: DirOptions): AgentDirs {
  const dir = (given: string | undefined, option: string, env: string, fallback: string): string => {
    const v = given ?? process.env[env] ?? fallback;
    if (v.trim() === '') throw new UsageError(`${given !== undefined ? option : `$${env}`} is empty; name a folder`);
    return v;
  };
  return {
    lib: dir(o.libDir, '--lib-dir', 'PHASEWISE_AGENT_LIB_DIR', DEFAULT_LIB_DIR),
    config: dir(o.configDir, '--config-dir', 'PHASEWISE_AGENT_CONFIG_DIR', DEFAULT_CONFIG_DIR),
    log: dir(o.logDir, '--log-dir', 'PHASEWISE_AGENT_LOG_DIR', DEFAULT_LOG_DIR),
  };
}

/** One-line failures (exit 1) from the agent's own error kinds; usage mistakes become UsageError. */
async function guarded(fn: () => Promise<void> | void): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof PolicyError || (err instanceof TrustError && /not valid|^no trusted key/.test(err.message))) {
      throw new UsageError(err.message); // named by its command (`phasewise agent config set:`), as every usage error is
    }
    if (err instanceof EnrollError || err instanceof TrustError || err instanceof PackageBuildError) {
      process.stderr.write(`phasewise: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

function withDirs(cmd: Command, log = false): Command {
  cmd.option('--lib-dir <dir>', `handler folders, machine key and the agent's state (default ${DEFAULT_LIB_DIR})`);
  cmd.option('--config-dir <dir>', `local policy and trusted publisher keys (default ${DEFAULT_CONFIG_DIR})`);
  if (log) cmd.option('--log-dir <dir>', `handler log folders (default ${DEFAULT_LOG_DIR})`);
  return cmd;
}

function timeScale(): number {
  const raw = process.env.PHASEWISE_AGENT_TIMEOUT_SCALE;
  if (raw === undefined) return 1;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 10) throw new UsageError(`PHASEWISE_AGENT_TIMEOUT_SCALE must be a number in (0, 10], not ${shown(raw)}`);
  return n;
}

function patchScale(): number | undefined {
  const raw = process.env.PHASEWISE_PATCH_TIME_SCALE;
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 10) throw new UsageError(`PHASEWISE_PATCH_TIME_SCALE must be a number in (0, 10], not ${shown(raw)}`);
  return n;
}

interface PatchCli {
  packageManager: string;
  packageManagerPath?: string;
  rebootCommand: string;
  rebootRequiredFile?: string;
}

function patchingOf(o: PatchCli): NonNullable<AgentOptions['patching']> {
  if (!['auto', 'apt', 'dnf', 'yum', 'zypper'].includes(o.packageManager)) {
    throw new UsageError(`phasewise agent run: --package-manager must be auto, apt, dnf, yum or zypper, not ${shown(o.packageManager)}`);
  }
  const binDirs = o.packageManagerPath?.split(':').filter(Boolean);
  if (binDirs?.some((d) => !d.startsWith('/'))) throw new UsageError('phasewise agent run: --package-manager-path takes absolute folders, separated by ":"');
  if (o.rebootCommand.trim() === '') throw new UsageError('phasewise agent run: --reboot-command must not be empty');
  const scale = patchScale();
  return {
    manager: o.packageManager as ManagerConfig['manager'],
    ...(binDirs && binDirs.length > 0 ? { binDirs } : {}),
    rebootCommand: o.rebootCommand,
    ...(o.rebootRequiredFile ? { rebootFlag: o.rebootRequiredFile } : {}),
    ...(scale !== undefined ? { timeScale: scale } : {}),
  };
}

function parsePort(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`--imds-port must be 0-65535, not ${shown(v)}`);
  return Number(v);
}

/** A --server that is no https URL is a bad value (exit 2), like any other; connect() checks it again. */
function checkServerUrl(server: string): void {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`phasewise agent connect: --server ${shown(server)} is not a URL (expected https://host:port)`);
  }
  if (url.protocol !== 'https:') throw new UsageError(`phasewise agent connect: --server must be an https:// URL, not ${url.protocol}//`);
}

interface ConnectCli extends DirOptions {
  server?: string;
  enrollmentToken?: string;
  resourceId?: string;
  name?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  caCert?: string;
  force?: boolean;
}

async function connectCommand(o: ConnectCli): Promise<void> {
  if (!o.server) throw new UsageError('phasewise agent connect: --server URL is required');
  const token = o.enrollmentToken ?? process.env.PHASEWISE_ENROLLMENT_TOKEN;
  if (!token) throw new UsageError('phasewise agent connect: --enrollment-token is required (or PHASEWISE_ENROLLMENT_TOKEN)');
  checkServerUrl(o.server);
  const { resourceId, name, subscriptionId, resourceGroup, location, force } = o;
  const options = { server: o.server, token, resourceId, name, subscriptionId, resourceGroup, location, caCertFile: o.caCert, force };
  const e = await connect(dirsOf(o), options, new Date());
  process.stdout.write(`enrolled: agent ${e.agentId} for ${e.resourceId} (certificate ${e.thumbprint})\n`);
}

async function runCommand(o: DirOptions & PatchCli & { imdsPort: string }): Promise<void> {
  const dirs = dirsOf(o);
  const scale = timeScale();
  const patching = patchingOf(o);
  const imdsPort = parsePort(o.imdsPort); // a usage mistake is said before the enrollment or the lock is looked at
  const creds = loadCredentials(dirs);
  // A log that can no longer be written (its reader went away: `agent run 2>&1 | head`, a log collector) must not end the
  // agent: an unhandled EPIPE did, and the machine went unmanaged. Its lines are dropped from then on.
  let logBroken = false;
  process.stderr.on('error', () => (logBroken = true));
  process.stdout.removeAllListeners('error'); // main.ts's EPIPE = "exit 0" is for reports piped to head, not for the agent
  process.stdout.on('error', () => undefined);
  const log = (line: string) => {
    if (logBroken) return;
    try {
      process.stderr.write(`${new Date().toISOString()} ${line}\n`);
    } catch {
      logBroken = true;
    }
  };
  // Before the journal is read: a second agent on this folder would run every step again.
  const release = acquireAgentLock(dirs);
  const agent = new Agent({ dirs, imdsPort, timeScale: scale, log, patching }, creds);
  await agent.start();
  log(`phasewise agent ${creds.enrollment.agentId} running against ${creds.enrollment.serverUrl}${agent.imdsPort ? `; scheduled events on 127.0.0.1:${agent.imdsPort}` : ''}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig}: stopping (handler commands in flight keep running and are picked up at the next start)`);
      // The journal is on disk: exit now, without waiting for a handler command (it is picked up at start).
      void agent.stop().then(() => {
        release();
        resolve();
        process.exit(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** `5 (server epoch e2; moved on from e1)`: the id alone says nothing once a restored server counts again. */
function goalStateLine(id: number | null, epoch: string | null, past: readonly string[]): string {
  const left = past.length > 0 ? `; moved on from ${past.join(', ')}` : '';
  if (id === null) return '(none yet)';
  return `${id} (${epoch === null ? 'the server sends no epoch' : `server epoch ${epoch}`}${left})`;
}

function statusCommand(o: DirOptions & { json?: boolean }): void {
  const dirs = dirsOf(o);
  const enrollment = readEnrollment(dirs);
  const journal = new Journal(dirs);
  const view = {
    enrollment: enrollment ?? null,
    policy: readPolicy(dirs),
    trustedKeys: listTrustedKeys(dirs),
    goalStateId: journal.state.goalState?.goalStateId ?? null,
    // goalStateId orders goal states only within one server epoch (docs/agent.md "Goal state order"): show both.
    goalStateEpoch: journal.state.goalState?.epoch ?? null,
    pastEpochs: journal.state.pastEpochs,
    extensions: Object.values(journal.state.extensions).map((r) => ({
      name: r.name,
      state: r.state,
      installedVersion: r.installedVersion,
      settingsSeqNo: r.installedSeq,
      lastKnownGood: r.lastKnownGood?.version ?? null,
      operationInFlight: r.op ? { operationId: r.op.operationId, version: r.op.ext.version, steps: Object.keys(r.op.steps) } : null,
      lastOperation: r.history[0] ?? null,
      lastError: r.lastError,
    })),
    patches: {
      inFlight: journal.state.patches.current
        ? {
            operationId: journal.state.patches.current.request.operationId,
            kind: journal.state.patches.current.request.kind,
            reboot: journal.state.patches.current.reboot,
          }
        : null,
      recent: journal.state.patches.history.map((h) => ({
        operationId: h.report.operationId,
        kind: h.report.kind,
        status: h.report.status,
        counts: h.report.counts,
        rebootStatus: h.report.rebootStatus,
        finishedAt: h.report.finishedAt,
      })),
    },
  };
  if (o.json) return void process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
  const lines = [
    enrollment ? `enrolled: agent ${enrollment.agentId} for ${enrollment.resourceId} at ${enrollment.serverUrl}` : 'not enrolled',
    `extensions: ${view.policy.extensionsEnabled ? 'enabled' : 'DISABLED'}; ` +
      `allowlist: ${view.policy.extensionsAllowList.join(',') || '(any)'}; blocklist: ${view.policy.extensionsBlockList.join(',') || '(none)'}`,
    `trusted keys: ${view.trustedKeys.join(', ') || '(none: every package will be rejected)'}`,
    `goal state: ${goalStateLine(view.goalStateId, view.goalStateEpoch, view.pastEpochs)}`,
    ...view.extensions.map((e) => {
      const last = e.lastOperation ? `; last ${e.lastOperation.operationId}: ${e.lastOperation.outcome}: ${e.lastOperation.message}` : '';
      const flight = e.operationInFlight ? `; in flight ${e.operationInFlight.operationId} → ${e.operationInFlight.version}` : '';
      return `  ${e.name}: ${e.state} ${e.installedVersion ?? '-'} (last known good ${e.lastKnownGood ?? '-'})${flight}${last}`;
    }),
    ...(view.patches.inFlight ? [`patching: ${view.patches.inFlight.kind} ${view.patches.inFlight.operationId} in flight${view.patches.inFlight.reboot ? `, reboot ${view.patches.inFlight.reboot.state}` : ''}`] : []),
    ...view.patches.recent.map((p) => `  patch ${p.kind} ${p.operationId}: ${p.status}, installed ${p.counts.installed}, failed ${p.counts.failed}, pending ${p.counts.pending}; reboot ${p.rebootStatus}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('the machine agent: enroll, run, local policy, trusted publisher keys (docs/agent.md)');
  withDirs(
    agent
      .command('connect')
      .description('enroll this machine with a Phasewise server (makes its key pair; the key never leaves the machine)')
      .option('--server <url>', 'the server, https://host:port')
      .option('--enrollment-token <token>', 'enrollment token (or $PHASEWISE_ENROLLMENT_TOKEN)')
      .option('--resource-id <id>', 'bind to this existing VM, scale-set instance or Arc machine')
      .option('--name <name>', 'name of the Arc machine to register (default: the host name)')
      .option('--subscription-id <id>', 'subscription of a new Arc machine')
      .option('--resource-group <name>', 'resource group of a new Arc machine')
      .option('--location <region>', 'region of a new Arc machine')
      .option('--ca-cert <file>', "trust this certificate for the server's TLS (also NODE_EXTRA_CA_CERTS)")
      .option('--force', 'enroll again even if this machine is enrolled'),
  ).action((o: ConnectCli) => guarded(() => connectCommand(o)));
  withDirs(
    agent
      .command('run')
      .description('run the agent: poll the goal state, run handlers, report status')
      .option('--imds-port <n>', 'loopback port of /metadata/scheduledevents (0 turns it off)', '8169')
      .option('--package-manager <name>', 'guest OS patching through auto, apt, dnf, yum or zypper', 'auto')
      .option('--package-manager-path <dirs>', `where its commands are, absolute folders joined by ":" (default ${DEFAULT_BIN_DIRS.join(':')})`)
      .option('--reboot-command <cmd>', 'shell command that reboots the machine after patching', DEFAULT_REBOOT_COMMAND)
      .option('--reboot-required-file <file>', "apt's reboot flag (default /var/run/reboot-required)"),
    true,
  ).action((o: DirOptions & PatchCli & { imdsPort: string }) => guarded(() => runCommand(o)));
  withDirs(agent.command('status').description("print the agent's local state").option('--json', 'as JSON'), true).action((o: DirOptions & { json?: boolean }) =>
    guarded(() => statusCommand(o)),
  );

  const config = agent.command('config').description(`local policy, which the control plane cannot change (${POLICY_KEYS.join(', ')})`);
  withDirs(config.command('set').argument('<key>').argument('<value>').description('set a policy value (lists: comma-separated Publisher.Type)')).action(
    (key: string, value: string, o: DirOptions) =>
      guarded(() => {
        setPolicy(dirsOf(o), key, value);
        process.stdout.write(`${key} = ${policyValue(readPolicy(dirsOf(o)), key)}\n`);
      }),
  );
  withDirs(config.command('get').argument('<key>').description('print a policy value')).action((key: string, o: DirOptions) =>
    guarded(() => void process.stdout.write(`${policyValue(readPolicy(dirsOf(o)), key)}\n`)),
  );
  withDirs(config.command('list').description('print every policy value')).action((o: DirOptions) =>
    guarded(() => {
      const p = readPolicy(dirsOf(o));
      for (const k of POLICY_KEYS) process.stdout.write(`${k} = ${policyValue(p, k)}\n`);
    }),
  );

  const trust = agent.command('trust').description('publisher keys this machine trusts for package signatures (Ed25519)');
  withDirs(trust.command('add').description('trust a publisher key').option('--key-id <id>', 'the key id packages name').option('--file <pem>', 'the Ed25519 public key (PEM)')).action(
    (o: DirOptions & { keyId?: string; file?: string }) =>
      guarded(() => {
        if (!o.keyId || !o.file) throw new UsageError('phasewise agent trust add: --key-id and --file are required');
        addTrustedKey(dirsOf(o), o.keyId, o.file);
        process.stdout.write(`trusted ${o.keyId}\n`);
      }),
  );
  withDirs(trust.command('list').description('list trusted key ids')).action((o: DirOptions) =>
    guarded(() => void process.stdout.write(listTrustedKeys(dirsOf(o)).map((k) => `${k}\n`).join(''))),
  );
  withDirs(trust.command('remove').argument('<keyId>').description('stop trusting a key')).action((keyId: string, o: DirOptions) =>
    guarded(() => {
      removeTrustedKey(dirsOf(o), keyId);
      process.stdout.write(`removed ${keyId}\n`);
    }),
  );

  const pkg = program.commands.find((c) => c.name() === 'package') ?? program.command('package').description('handler packages');
  pkg
    .command('build')
    .description('zip a handler folder (HandlerManifest.json at its root) for signing and upload')
    .option('--dir <dir>', 'the handler folder')
    .option('--out <file>', 'the zip to write (never overwritten)')
    .action((o: { dir?: string; out?: string }) =>
      guarded(async () => {
        if (!o.dir || !o.out) throw new UsageError('phasewise package build: --dir and --out are required');
        const r = await buildPackage(o.dir, o.out);
        process.stdout.write(`${o.out}: ${r.files} files, ${r.bytes} bytes\n`);
      }),
    );
}
