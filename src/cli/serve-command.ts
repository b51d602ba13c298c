/**
 * `phasewise serve`: starts the API and the engine, prints where and how to reach them, and runs until
 * SIGINT or SIGTERM.
 */
import { createServer } from 'node:net';
import { ConfigError, loadConfig } from '../server/config.js';
import { preflight } from '../server/preflight.js';
import { startServer } from '../server/serve.js';
import type { ServeConfig } from '../server/config.js';
import { EXIT_STEPPED_DOWN, startReplica } from '../server/replicas/replica.js';
import { configuredBusyMaxMs } from '../server/replicas/lease-shared.js';
import { redact } from '../store/postgres/connect.js';
import { UsageError } from './errors.js';

export interface ServeOptions {
  config?: string;
  port?: string;
  host?: string;
  dataDir?: string;
  scenario?: string;
  clockFactor?: string;
  store?: string;
}

/** `--port`: a whole number 0–65535, checked before anything is created. */
function portOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`phasewise serve: --port: expected a whole number from 0 to 65535 (0 picks a free port), got '${text}'`);
  return Number(text);
}

function factorOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(`phasewise serve: --clock-factor: expected a positive number such as 1 or 3600, got '${text}'`);
  return n;
}

/** Fails with a clear message, before the data folder is made, when the address is taken. */
async function checkPortFree(host: string, port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(new UsageError(`phasewise serve: port ${port} on ${host} is in use (another Phasewise?); stop it or choose another with --port`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new UsageError(`phasewise serve: cannot listen on ${host}: no such local address (--host)`));
      else if (err.code === 'EACCES') reject(new UsageError(`phasewise serve: port ${port} needs privileges this process lacks; choose one above 1023 with --port`));
      else if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') reject(new UsageError(`phasewise serve: cannot listen on ${host.slice(0, 200)}: no such host (--host)`));
      else reject(err);
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

export async function serveCommand(opts: ServeOptions): Promise<void> {
  let config;
  const port = portOption(opts.port);
  const clockFactor = factorOption(opts.clockFactor);
  try {
    config = loadConfig(opts.config ?? process.env.PHASEWISE_CONFIG, process.env, {
      port,
      host: opts.host,
      dataDir: opts.dataDir,
      scenario: opts.scenario,
      clockFactor,
      store: opts.store,
    });
    preflight(config);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`phasewise: ${err.message}`);
    throw err;
  }
  await checkPortFree(config.host, config.port);
  // What the configuration meets only at start (a secret key that opens nothing stored) is a usage mistake too.
  const asUsage = (err: unknown) => {
    throw err instanceof ConfigError ? new UsageError(`phasewise: ${err.message}`) : err;
  };
  if (config.store) return serveReplica(config).catch(asUsage);
  const server = await startServer(config).catch(asUsage);
  const lines = [
    `Phasewise is serving the ARM API at ${server.url}`,
    `  certificate: ${server.certPath}   (trust it: export NODE_EXTRA_CA_CERTS=${server.certPath})`,
    server.token ? `  token:       ${server.token}   (kept in ${config.dataDir}/token)` : '  tokens:      from the configuration',
    `  clock:       ${config.clockFactor === 1 ? 'real time' : `${config.clockFactor}x real time`}${config.scenario ? `, fleet from ${config.scenario}` : ''}`,
    `  try:         curl --cacert ${server.certPath} -H "Authorization: Bearer ${server.token ?? '<token>'}" "${server.url}/phasewise/rollouts"`,
  ];
  // Stopping is set up before the lines that say it serves: whoever waits for them may signal at once.
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stderr.write(lines.join('\n') + '\n');
}

/** A replica on PostgreSQL: runs until stopped, or until it steps down (exit code 7: its supervisor starts it again). */
async function serveReplica(config: ServeConfig): Promise<void> {
  const log = { info: (m: string) => process.stderr.write(`${m}\n`), error: (m: string) => process.stderr.write(`${m}\n`) };
  const replica = await startReplica(config, {}, log);
  void replica.steppedDown.then(() => process.exit(EXIT_STEPPED_DOWN));
  const stop = () => {
    void replica.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stderr.write([
    `Phasewise replica ${replica.holder} is serving the ARM API at ${replica.url}`,
    `  store:       ${redact(config.store!)} (lease ${config.leaseMs} ms, busy limit ${configuredBusyMaxMs(config)} ms; the replica holding it runs the engine)`,
    `  certificate: ${replica.certPath}   (trust it: export NODE_EXTRA_CA_CERTS=${replica.certPath})`,
    `  health:      ${replica.url}/healthz and /readyz (no token)`,
  ].join('\n') + '\n');
}
