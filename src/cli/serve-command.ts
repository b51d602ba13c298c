/**
 * `phasewise serve`: starts the API and the engine, prints where and how to reach them, and runs until
 * SIGINT or SIGTERM.
 */
import { ConfigError, loadConfig } from '../server/config.js';
import { startServer } from '../server/serve.js';
import { UsageError } from './errors.js';

export interface ServeOptions {
  config?: string;
  port?: string;
  host?: string;
  dataDir?: string;
  scenario?: string;
  clockFactor?: string;
}

export async function serveCommand(opts: ServeOptions): Promise<void> {
  let config;
  try {
    config = loadConfig(opts.config ?? process.env.PHASEWISE_CONFIG, process.env, {
      port: opts.port !== undefined ? Number(opts.port) : undefined,
      host: opts.host,
      dataDir: opts.dataDir,
      scenario: opts.scenario,
      clockFactor: opts.clockFactor !== undefined ? Number(opts.clockFactor) : undefined,
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`phasewise: ${err.message}`);
    throw err;
  }
  const server = await startServer(config);
  const lines = [
    `Phasewise is serving the ARM API at ${server.url}`,
    `  certificate: ${server.certPath}   (trust it: export NODE_EXTRA_CA_CERTS=${server.certPath})`,
    server.token ? `  token:       ${server.token}   (kept in ${config.dataDir}/token)` : '  tokens:      from the configuration',
    `  clock:       ${config.clockFactor === 1 ? 'real time' : `${config.clockFactor}x real time`}${config.scenario ? `, fleet from ${config.scenario}` : ''}`,
    `  try:         curl --cacert ${server.certPath} -H "Authorization: Bearer ${server.token ?? '<token>'}" "${server.url}/phasewise/rollouts"`,
  ];
  process.stderr.write(lines.join('\n') + '\n');
  const stop = () => {
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
