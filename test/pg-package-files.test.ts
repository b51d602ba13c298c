/**
 * Package files in PostgreSQL (issue 15: replicas without a shared folder): a file stored by one replica
 * is written back, byte for byte, into another's empty DATA_DIR/packages at its start, where its
 * PackageStore serves it; damaged or absent files are never written as if they were whole.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import pg from 'pg';
import { PackageStore } from '../src/api/agent/package-store.js';
import { usePgServer } from './helpers/pg-databases.js';
import { materialisePackageFiles, PART_BYTES, savePackageFile } from '../src/store/postgres/package-files.js';
import { installCapture, takeChanges } from '../src/store/postgres/side-capture.js';
import { loadSideTables } from '../src/store/postgres/side-load.js';
import { emptySqlite } from '../src/store/postgres/snapshot.js';

const { freshPg, tempDir } = usePgServer('files');

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A replica that records a package (file on its disk, row shipped to PostgreSQL) and stores the file. */
async function upload(client: pg.Client, dataDir: string, version: string, bytes: Buffer): Promise<string> {
  const db = emptySqlite();
  await loadSideTables(client, db);
  installCapture(db);
  const store = new PackageStore(db, dataDir);
  const tmp = join(store.dir, `upload-${version}`);
  writeFileSync(tmp, bytes);
  const digest = sha(bytes);
  store.keep(tmp, { artifactKey: 'extension:p.t', version, sha256: digest, size: bytes.length, signature: {} as never, uploadedAtMs: 1 });
  await savePackageFile(client, join(store.dir, digest), digest);
  await client.query(takeChanges(db)!);
  db.close();
  return digest;
}

describe('package files on PostgreSQL', () => {
  test('files of several parts, of exactly one part and empty come back byte for byte into another replica\'s folder, and its PackageStore serves them', async () => {
    const client = await freshPg();
    try {
      const first = tempDir();
      const files = [randomBytes(2 * PART_BYTES + 12_345), randomBytes(PART_BYTES), Buffer.alloc(0)];
      const digests: string[] = [];
      for (const [i, f] of files.entries()) digests.push(await upload(client, first, `1.${i}`, f));
      const parts = (await client.query<{ n: string }>('SELECT count(*) AS n FROM agent_package_files')).rows[0]!.n;
      assert.equal(Number(parts), 3 + 1 + 1);

      const second = tempDir();
      const result = await materialisePackageFiles(client, join(second, 'packages'));
      assert.deepEqual(result.written, [...digests].sort());
      assert.deepEqual(result.missing, []);
      const db = emptySqlite();
      await loadSideTables(client, db);
      const store = new PackageStore(db, second);
      for (const [i, f] of files.entries()) {
        const file = store.file(store.get('extension:p.t', `1.${i}`)!.sha256);
        assert.ok(file, `1.${i} is served`);
        assert.equal(file.size, f.length);
        assert.ok(readFileSync(file.path).equals(f));
      }
      assert.deepEqual(readdirSync(store.dir).sort(), [...digests].sort(), 'no temporary file left behind');
      assert.deepEqual(await materialisePackageFiles(client, store.dir), { written: [], missing: [] }, 'nothing to do a second time');
      assert.deepEqual(await savePackageFile(client, join(store.dir, digests[0]!), digests[0]!), { stored: false, parts: 0 }, 'stored once');
      db.close();
    } finally {
      await client.end();
    }
  });

  test('a file that does not hash to its address is refused and nothing is stored', async () => {
    const client = await freshPg();
    try {
      const dir = tempDir();
      const path = join(dir, 'f');
      writeFileSync(path, randomBytes(PART_BYTES + 10));
      await assert.rejects(savePackageFile(client, path, '0'.repeat(64)), /hashes to [0-9a-f]{64}, not 0{64}/);
      assert.equal((await client.query('SELECT 1 FROM agent_package_files')).rows.length, 0);
      await assert.rejects(savePackageFile(client, path, '../etc/passwd'), /not a SHA-256/);
    } finally {
      await client.end();
    }
  });

  test('a damaged part is never written as the file; a file PostgreSQL lacks is reported missing', async () => {
    const client = await freshPg();
    try {
      const first = tempDir();
      const good = await upload(client, first, '1.0', randomBytes(PART_BYTES + 100));
      await client.query("UPDATE agent_package_files SET bytes = '\\x00'::bytea WHERE sha256 = $1 AND part = 1", [good]);
      const target = join(tempDir(), 'packages');
      await assert.rejects(materialisePackageFiles(client, target), new RegExp(`the package file ${good} stored in PostgreSQL hashes to [0-9a-f]{64}: it is damaged \\(2 parts\\)`));
      assert.deepEqual(readdirSync(target), [], 'neither the file nor a temporary one');

      await client.query('DELETE FROM agent_package_files');
      assert.deepEqual(await materialisePackageFiles(client, target), { written: [], missing: [good] });
      assert.equal(existsSync(join(target, good)), false);
    } finally {
      await client.end();
    }
  });
});
