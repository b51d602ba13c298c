/** Databases of their own on a test's embedded PostgreSQL server, and checks of an engine's log kept there. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/store/postgres/embedded-server.js';
import type { EmbeddedPostgres } from '../../src/store/postgres/embedded-server.js';
import { InvariantChecker } from '../../src/audit/invariants.js';
import type { EngineEvent } from '../../src/model/events.js';
import type { Region } from '../../src/model/fleet.js';
import { symmetricPairs } from '../../src/model/fleet.js';
import { connect, migrate } from '../../src/store/postgres/connect.js';

/** Creates database `name` on the server of `serverUrl` (a URL ending in /phasewise); its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return serverUrl.replace(/\/phasewise$/, `/${name}`);
}

/** A new, migrated database, through Phasewise's own client (BIGINT parsed as numbers). */
export async function migratedDatabase(serverUrl: string, name: string): Promise<pg.Client> {
  const url = await createDatabase(serverUrl, name);
  const client = await connect(url);
  await migrate(client, url);
  return client;
}

/** The log has no gap, keeps the invariants, and starts no upgrade attempt twice; the attempts started. */
export function assertLogHolds(events: readonly EngineEvent[], regions: Iterable<Region>): Set<string> {
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `event ${i} has seq ${e.seq}`));
  const checker = new InvariantChecker({ pairs: symmetricPairs([...regions]) });
  checker.onEvents(events);
  assert.deepEqual(checker.finish(), []);
  const starts = new Set<string>();
  for (const e of events) {
    if (e.type !== 'instance.upgrade.started') continue;
    const id = `${e.machineId} → ${e.toVersion} attempt ${e.attempt}`;
    assert.ok(!starts.has(id), `upgrade started twice: ${id}`);
    starts.add(id);
  }
  return starts;
}

export interface PgTestServer {
  /** The server (started before the file's tests). */
  server(): EmbeddedPostgres;
  /** A new, migrated database named `PREFIX_N`. */
  freshPg(): Promise<pg.Client>;
  /** A new temporary folder, removed after the file's tests. */
  tempDir(): string;
}

/** One embedded PostgreSQL for a test file: started before its tests, stopped after, with its temporary folders. */
export function usePgServer(prefix: string): PgTestServer {
  let server: EmbeddedPostgres | null = null;
  let n = 0;
  const dirs: string[] = [];
  before(async () => {
    server = await startEmbeddedPostgres();
  });
  after(async () => {
    await server?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return {
    server: () => server!,
    freshPg: () => migratedDatabase(server!.url, `${prefix}_${++n}`),
    tempDir: () => {
      const d = mkdtempSync(join(tmpdir(), `phasewise-${prefix}-`));
      dirs.push(d);
      return d;
    },
  };
}
