/**
 * Extension packages' files in PostgreSQL, so replicas need no shared folder: each file (content-addressed
 * by its SHA-256, as in DATA_DIR/packages) is stored as parts of 1 MiB in `agent_package_files`, written in
 * one transaction (a file is there whole or not at all), and a leader writes the files it is missing
 * back to its folder at start. Files are checked against their address both ways.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { renameAtomic, tempPathFor } from '../../util/atomic-file.js';

export const PART_BYTES = 1 << 20;
const SHA256 = /^[0-9a-f]{64}$/;

/** Stores the file at `path` under `sha256`, unless already stored. Throws (storing nothing) when its content does not hash to `sha256`. */
export async function savePackageFile(client: pg.Client, path: string, sha256: string): Promise<{ stored: boolean; parts: number }> {
  if (!SHA256.test(sha256)) throw new Error(`'${sha256}' is not a SHA-256 in hex`);
  if (await isStored(client, sha256)) return { stored: false, parts: 0 };
  const hash = createHash('sha256');
  let part = 0;
  await client.query('BEGIN');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: PART_BYTES })) {
      const b = chunk as Buffer;
      hash.update(b);
      await client.query('INSERT INTO agent_package_files (sha256, part, bytes) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [sha256, part++, b]);
    }
    // An empty file is one empty part: part 0 is what says a file is stored.
    if (part === 0) await client.query('INSERT INTO agent_package_files (sha256, part, bytes) VALUES ($1, 0, $2) ON CONFLICT DO NOTHING', [sha256, Buffer.alloc(0)]);
    const actual = hash.digest('hex');
    if (actual !== sha256) throw new Error(`${path} hashes to ${actual}, not ${sha256}`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return { stored: true, parts: part };
}

async function isStored(client: pg.Client, sha256: string): Promise<boolean> {
  return (await client.query('SELECT 1 FROM agent_package_files WHERE sha256 = $1 AND part = 0', [sha256])).rows.length > 0;
}

/**
 * Writes every package file `agent_packages` names that `dir` lacks (a leader's start), part by part
 * (memory: one part), to a temporary file that is renamed only when its hash matches. `missing`: files
 * PostgreSQL does not hold either (recorded by a Phasewise that stored only on disk).
 */
export async function materialisePackageFiles(client: pg.Client, dir: string): Promise<{ written: string[]; missing: string[] }> {
  mkdirSync(dir, { recursive: true });
  const wanted = (await client.query<{ sha256: string }>('SELECT DISTINCT sha256 FROM agent_packages ORDER BY sha256')).rows.map((r) => r.sha256);
  const written: string[] = [];
  const missing: string[] = [];
  for (const sha256 of wanted) {
    if (!SHA256.test(sha256) || existsSync(join(dir, sha256))) continue;
    if (await writeFile(client, dir, sha256)) written.push(sha256);
    else missing.push(sha256);
  }
  return { written, missing };
}

async function writeFile(client: pg.Client, dir: string, sha256: string): Promise<boolean> {
  const path = join(dir, sha256);
  const tmp = tempPathFor(path);
  const hash = createHash('sha256');
  const out = await open(tmp, 'wx', 0o644);
  let parts = 0;
  try {
    for (;;) {
      const { rows } = await client.query<{ bytes: Buffer }>('SELECT bytes FROM agent_package_files WHERE sha256 = $1 AND part = $2', [sha256, parts]);
      if (rows.length === 0) break;
      hash.update(rows[0]!.bytes);
      await out.write(rows[0]!.bytes);
      parts++;
    }
    await out.sync();
  } catch (err) {
    await out.close();
    await discard(tmp);
    throw err;
  }
  await out.close();
  if (parts === 0) {
    await discard(tmp);
    return false;
  }
  const actual = hash.digest('hex');
  if (actual !== sha256) {
    await discard(tmp);
    throw new Error(`the package file ${sha256} stored in PostgreSQL hashes to ${actual}: it is damaged (${parts} parts); not written`);
  }
  renameAtomic(tmp, path);
  return true;
}

async function discard(tmp: string): Promise<void> {
  await rm(tmp, { force: true });
}
