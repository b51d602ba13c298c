/**
 * Extension handler packages, content-addressed in DATA_DIR/packages/<sha256> (written temp, fsync,
 * rename), and the package recorded on each (type, version): sha256, size and the publisher's
 * signature. A record is immutable once set. Uploads stream to disk; nothing holds a whole package.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Database from 'better-sqlite3';
import type { PackageSignature } from '../../protocol/agent-wire.js';
import { AGENT_PACKAGES_DDL } from '../../store/sqlite/side-schema.js';
import { renameAtomic, tempPathFor } from '../../util/atomic-file.js';

export interface PackageRecord {
  /** `extension:publisher.type`, lower case (the engine's artifact key). */
  artifactKey: string;
  version: string;
  sha256: string;
  size: number;
  signature: PackageSignature;
  uploadedAtMs: number;
}

export class PackageTooLarge extends Error {}

export class PackageStore {
  readonly dir: string;
  private readonly byVersion = new Map<string, PackageRecord>();
  private readonly st: { put: Database.Statement };

  constructor(db: Database.Database, dataDir: string) {
    this.dir = join(dataDir, 'packages');
    mkdirSync(this.dir, { recursive: true });
    db.exec(AGENT_PACKAGES_DDL);
    this.st = { put: db.prepare('INSERT INTO agent_packages (artifact_key, version, sha256, size, signature, uploaded_at) VALUES (?, ?, ?, ?, ?, ?)') };
    for (const r of db.prepare('SELECT * FROM agent_packages').all() as Array<Record<string, unknown>>) {
      const rec: PackageRecord = {
        artifactKey: r.artifact_key as string, version: r.version as string, sha256: r.sha256 as string, size: r.size as number,
        signature: JSON.parse(r.signature as string) as PackageSignature, uploadedAtMs: r.uploaded_at as number,
      };
      this.byVersion.set(`${rec.artifactKey}@${rec.version}`, rec);
    }
  }

  get(artifactKey: string, version: string): PackageRecord | undefined {
    return this.byVersion.get(`${artifactKey.toLowerCase()}@${version}`);
  }

  has(artifactKey: string, version: string): boolean {
    return this.byVersion.has(`${artifactKey.toLowerCase()}@${version}`);
  }

  /** The file of a stored package, or null. */
  file(sha256: string): { path: string; size: number } | null {
    if (!/^[0-9a-f]{64}$/.test(sha256)) return null;
    const path = join(this.dir, sha256);
    if (!existsSync(path)) return null;
    return { path, size: statSync(path).size };
  }

  /**
   * Streams a body to a temporary file, hashing it, refusing more than `maxBytes` (PackageTooLarge,
   * the temporary file removed). The caller checks the result, then `keep`s or `discard`s it.
   */
  async receive(body: Readable, maxBytes: number): Promise<{ tmp: string; sha256: string; size: number }> {
    const tmp = tempPathFor(join(this.dir, 'upload'));
    const hash = createHash('sha256');
    let size = 0;
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
    try {
      for await (const chunk of body) {
        const b = chunk as Buffer;
        size += b.length;
        if (size > maxBytes) throw new PackageTooLarge(`the package is larger than ${maxBytes} bytes`);
        hash.update(b);
        if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      const fh = await open(tmp, 'r');
      try { await fh.sync(); } finally { await fh.close(); }
    } catch (err) {
      out.destroy();
      this.discard(tmp);
      throw err;
    }
    return { tmp, sha256: hash.digest('hex'), size };
  }

  discard(tmp: string): void {
    try { unlinkSync(tmp); } catch { /* gone already */ }
  }

  /** Moves a received file to its content address and records it on the version. */
  keep(tmp: string, rec: PackageRecord): void {
    const path = join(this.dir, rec.sha256);
    if (existsSync(path)) this.discard(tmp); // same bytes already stored (another version)
    else renameAtomic(tmp, path);
    this.st.put.run(rec.artifactKey, rec.version, rec.sha256, rec.size, JSON.stringify(rec.signature), rec.uploadedAtMs);
    this.byVersion.set(`${rec.artifactKey}@${rec.version}`, rec);
  }
}
