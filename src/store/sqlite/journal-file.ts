/**
 * The group-commit journal file beside a database: `FILE-phasewise-journal` (not `FILE-journal`, which
 * is SQLite's own rollback journal name: SQLite would take ours for a hot journal). A header (magic and
 * the id of the database it belongs to), then records framed as [body length u32][CRC-32 u32][seq f64]
 * body, appended and made durable with fdatasync. A record cut short by a crash fails its length or its
 * checksum: it and anything after it are ignored (they were never durable, so nothing of them was sent).
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readFileSync, rmSync, writeSync, writevSync } from 'node:fs';
import { crc32 } from 'node:zlib';

const MAGIC = 'PWJ1';
const ID_BYTES = 32;
export const HEADER_BYTES = MAGIC.length + ID_BYTES;
const FRAME_BYTES = 16;

export const journalPath = (dbFile: string): string => `${dbFile}-phasewise-journal`;

export interface JournalRecord {
  seq: number;
  body: Uint8Array;
}

export interface JournalContents {
  /** The id of the database the journal was written for. */
  id: string;
  /** Whole records in order (a torn tail left out). */
  records: JournalRecord[];
}

export class JournalError extends Error {}

/** Reads a journal; null when there is none. A file without our header is refused (it is not a journal). */
export function readJournal(path: string): JournalContents | null {
  if (!existsSync(path)) return null;
  const buf = readFileSync(path);
  if (buf.length < HEADER_BYTES || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new JournalError(`${path} is not a Phasewise journal (no header)`);
  }
  const id = buf.toString('latin1', MAGIC.length, HEADER_BYTES);
  const records: JournalRecord[] = [];
  for (let at = HEADER_BYTES; at + FRAME_BYTES <= buf.length;) {
    const len = buf.readUInt32LE(at);
    const sum = buf.readUInt32LE(at + 4);
    if (at + FRAME_BYTES + len > buf.length) break; // torn: cut short
    const framed = buf.subarray(at + 8, at + FRAME_BYTES + len);
    if (crc32(framed) !== sum) break; // torn: not all of it reached the disk
    records.push({ seq: buf.readDoubleLE(at + 8), body: buf.subarray(at + FRAME_BYTES, at + FRAME_BYTES + len) });
    at += FRAME_BYTES + len;
  }
  return { id, records };
}

/** The journal open for appending (one writer: the process holding the database's lock). */
export class JournalFile {
  private readonly fd: number;
  private size: number;

  /** Creates (or empties) the journal for database `id`; the header is durable before any record. */
  constructor(readonly path: string, id: string, private readonly durable: boolean) {
    if (id.length !== ID_BYTES) throw new JournalError(`journal id: expected ${ID_BYTES} characters`);
    this.fd = openSync(path, 'w');
    writeSync(this.fd, Buffer.from(MAGIC + id, 'latin1'));
    fdatasyncSync(this.fd);
    this.size = fstatSync(this.fd).size;
  }

  /** Wall milliseconds spent waiting for fdatasync (a benchmark figure). */
  syncMs = 0;

  /** Bytes in the file now (records not yet dropped). */
  get bytes(): number {
    return this.size;
  }

  /** Appends one record; with `durable`, returns once it is on disk. */
  append(seq: number, body: Uint8Array): void {
    const head = Buffer.allocUnsafe(FRAME_BYTES);
    head.writeUInt32LE(body.length, 0);
    head.writeDoubleLE(seq, 8);
    head.writeUInt32LE(crc32(body, crc32(head.subarray(8))), 4);
    const total = FRAME_BYTES + body.length;
    let done = writevSync(this.fd, [head, body], this.size);
    // A short write (rare: a signal, a full disk) is completed from where it stopped.
    while (done < total) {
      const rest = Buffer.concat([head, body]).subarray(done);
      done += writeSync(this.fd, rest, 0, rest.length, this.size + done);
    }
    this.size += total;
    if (this.durable) {
      const t = performance.now();
      fdatasyncSync(this.fd);
      this.syncMs += performance.now() - t;
    }
  }

  /** Drops every record (all of them applied to the database). */
  clear(): void {
    ftruncateSync(this.fd, HEADER_BYTES);
    this.size = HEADER_BYTES;
  }

  close(remove: boolean): void {
    closeSync(this.fd);
    if (remove) rmSync(this.path, { force: true });
  }
}
