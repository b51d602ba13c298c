/**
 * Unpacks a verified handler zip into a fresh folder, refusing anything that could write outside it:
 * `..` segments, absolute paths, backslashes, symlink entries (any symlink: handlers don't need them),
 * and bounding the entry count and the total uncompressed size (zip bombs). Every file gets u+x, as
 * WALinuxAgent does. Extracts beside the target and renames, so a crash leaves no half folder.
 */
import { chmodSync, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import { PackageRejected } from './package-verify.js';

export interface UnzipLimits {
  maxEntries: number;
  maxTotalBytes: number;
}

export const DEFAULT_UNZIP_LIMITS: UnzipLimits = { maxEntries: 20_000, maxTotalBytes: 1024 * 1024 * 1024 };

/** Errors of a full, read-only or limited disk: a package that is fine could not be written out. */
const MACHINE_FAULTS = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'EMFILE', 'ENFILE']);

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

/** Why `name` may not be unpacked, or null. */
export function unsafeEntryReason(name: string, externalAttributes: number): string | null {
  if (name.length === 0 || name.length > 1024) return 'an empty or overlong name';
  if (name.includes('\\')) return 'a backslash in the path';
  if (name.includes('\0')) return 'a NUL byte in the path';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'an absolute path';
  if (name.split('/').some((seg) => seg === '..')) return 'a ".." segment';
  const mode = (externalAttributes >>> 16) & S_IFMT;
  if (mode === S_IFLNK) return 'a symbolic link';
  if (mode !== 0 && mode !== S_IFDIR && mode !== 0o100000) return 'a special file';
  return null;
}

function openZip(path: string): Promise<ZipFile> {
  return new Promise((res, rej) =>
    yauzl.open(path, { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: true }, (err, zip) => (err ? rej(err) : res(zip))),
  );
}

function openEntry(zip: ZipFile, entry: Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((res, rej) => zip.openReadStream(entry, (err, stream) => (err ? rej(err) : res(stream))));
}

async function extractAll(zipPath: string, into: string, limits: UnzipLimits): Promise<void> {
  let zip: ZipFile;
  try {
    zip = await openZip(zipPath);
  } catch (err) {
    throw new PackageRejected(`the package is not a readable zip: ${(err as Error).message}`);
  }
  if (zip.entryCount > limits.maxEntries) {
    zip.close();
    throw new PackageRejected(`the package has ${zip.entryCount} entries, over the limit of ${limits.maxEntries}`);
  }
  const root = resolve(into);
  let total = 0;
  await new Promise<void>((done, fail) => {
    const stop = (err: Error) => {
      zip.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (!(err instanceof PackageRejected) && code !== undefined && MACHINE_FAULTS.has(code)) {
        // The machine's fault, not the package's: not a rejection; the pass fails and is tried again later.
        return fail(Object.assign(new Error(`cannot unpack the package on this machine: ${code} (${err.message}); the operation is tried again later`), { code }));
      }
      fail(err instanceof PackageRejected ? err : new PackageRejected(`cannot unpack the package: ${err.message}`));
    };
    zip.on('error', stop);
    zip.on('end', () => done());
    const onEntry = (entry: Entry) => {
      const reason = unsafeEntryReason(entry.fileName, entry.externalFileAttributes);
      if (reason) return stop(new PackageRejected(`the package entry ${JSON.stringify(entry.fileName.slice(0, 200))} is refused: ${reason}`));
      const target = resolve(root, entry.fileName);
      if (target !== root && !target.startsWith(root + sep)) return stop(new PackageRejected(`the package entry ${entry.fileName} leaves the folder`));
      if (entry.fileName.endsWith('/')) {
        mkdirSync(target, { recursive: true, mode: 0o755 });
        zip.readEntry();
        return;
      }
      total += entry.uncompressedSize;
      if (total > limits.maxTotalBytes) return stop(new PackageRejected(`the package unpacks to more than ${limits.maxTotalBytes} bytes`));
      mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
      openEntry(zip, entry)
        .then((stream) => pipeline(stream, countBytes(entry.uncompressedSize), createWriteStream(target, { mode: 0o755, flags: 'wx' })))
        .then(() => {
          chmodSync(target, 0o755); // u+x on every file, as WALinuxAgent (umask may have removed it)
          zip.readEntry();
        })
        .catch(stop);
    };
    // A throw in the handler would escape into yauzl's read callback and end the agent: an entry under
    // a name that is already a file (`a`, then `a/b` or `a/`), a full or read-only disk.
    zip.on('entry', (entry: Entry) => {
      try {
        onEntry(entry);
      } catch (err) {
        stop(err as Error);
      }
    });
    zip.readEntry();
  });
}

/** Guards against an entry whose data is longer than its header says (yauzl checks too). */
function countBytes(limit: number): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb(n > limit ? new PackageRejected('a package entry is larger than its header says') : null, chunk);
    },
  });
}

/** Unpacks `zipPath` into `targetDir`, which must not exist yet (a leftover half folder is replaced). */
export async function unpackPackage(zipPath: string, targetDir: string, limits: UnzipLimits = DEFAULT_UNZIP_LIMITS): Promise<void> {
  const staging = `${targetDir}.unpacking`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true, mode: 0o755 });
  try {
    await extractAll(zipPath, staging, limits);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  if (existsSync(targetDir)) rmSync(targetDir, { recursive: true, force: true });
  renameSync(staging, targetDir);
}
