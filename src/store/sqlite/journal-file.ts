/**
 * The group-commit journal file beside a database: `FILE-phasewise-journal` (not `FILE-journal`, which
 * is SQLite's own rollback journal name: SQLite would take ours for a hot journal). A header (magic and
 * the id of the database it belongs to), then records framed as [body length u32][CRC-32 u32][seq f64]
 * body, appended and made durable with fdatasync. A record cut short by a crash fails its length or its
 * checksum: it and anything after it are ignored (they were never durable, so nothing of them was sent).
 *
 * The file is written ahead with zeros, 16 MiB at a time, and records overwrite them: an fdatasync of
 * data within the file's size need not commit the file system's metadata too (about half the wait,
 * measured). Emptying the file starts writing at the header again without truncating; records left
 * beyond are older, and reading stops at the first record whose seq does not follow the one before.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, openSync, readSync, rmSync, writeSync, writevSync } from 'node:fs';
import { crc32 } from 'node:zlib';

const MAGIC = 'PWJ1';
const ID_BYTES = 32;
export const HEADER_BYTES = MAGIC.length + ID_BYTES;
const FRAME_BYTES = 16;
const AHEAD_BYTES = 16 * 1024 * 1024;

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

/** Reads a journal, record by record (not the zeros ahead); null when there is none. A file without our header is refused. */
export function readJournal(path: string): JournalContents | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(HEADER_BYTES);
    if (size < HEADER_BYTES || readSync(fd, head, 0, HEADER_BYTES, 0) < HEADER_BYTES || head.toString('latin1', 0, MAGIC.length) !== MAGIC) {
      throw new JournalError(`${path} is not a Phasewise journal (no header)`);
    }
    const records: JournalRecord[] = [];
    const frame = Buffer.alloc(FRAME_BYTES);
    for (let at = HEADER_BYTES; at + FRAME_BYTES <= size;) {
      readSync(fd, frame, 0, FRAME_BYTES, at);
      const len = frame.readUInt32LE(0);
      if (at + FRAME_BYTES + len > size) break; // torn: cut short
      const body = Buffer.alloc(len);
      if (len > 0) readSync(fd, body, 0, len, at + FRAME_BYTES);
      // Torn (not all of it reached the disk), or the zeros written ahead.
      if (crc32(body, crc32(frame.subarray(8))) !== frame.readUInt32LE(4)) break;
      const seq = frame.readDoubleLE(8);
      if (records.length > 0 && seq !== records[records.length - 1]!.seq + 1) break; // a record from before the file was emptied
      records.push({ seq, body });
      at += FRAME_BYTES + len;
    }
    return { id: head.toString('latin1', MAGIC.length, HEADER_BYTES), records };
  } finally {
    closeSync(fd);
  }
}

/** The journal open for appending (one writer: the process holding the database's lock). */
export class JournalFile {
  private readonly fd: number;
  private size: number;
  /** Bytes of the file written so far (records, then zeros ahead). */
  private allocated: number;

  /** Creates (or empties) the journal for database `id`; the header is durable before any record. */
  constructor(readonly path: string, id: string, private readonly durable: boolean) {
    if (id.length !== ID_BYTES) throw new JournalError(`journal id: expected ${ID_BYTES} characters`);
    this.fd = openSync(path, 'w');
    writeSync(this.fd, Buffer.from(MAGIC + id, 'latin1'));
    this.size = fstatSync(this.fd).size;
    this.allocated = this.size;
    this.writeAhead(0);
    fdatasyncSync(this.fd);
  }

  /** Zeros after the end, so that the next records up to `need` bytes land inside the file's size. */
  private writeAhead(need: number): void {
    if (this.size + need <= this.allocated) return;
    const zeros = Buffer.alloc(Math.max(AHEAD_BYTES, need));
    for (let done = 0; done < zeros.length;) done += writeSync(this.fd, zeros, done, zeros.length - done, this.allocated + done);
    this.allocated += zeros.length;
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
    this.writeAhead(total);
    try {
      let done = writevSync(this.fd, [head, body], this.size);
      // A short write (rare: a signal, a full disk) is completed from where it stopped.
      while (done < total) {
        const rest = Buffer.concat([head, body]).subarray(done);
        done += writeSync(this.fd, rest, 0, rest.length, this.size + done);
      }
      if (this.durable) {
        const t = performance.now();
        fdatasyncSync(this.fd);
        this.syncMs += performance.now() - t;
      }
    } catch (err) {
      // The group fails (its sends never leave): its record must not be applied at the next open either.
      try {
        writeSync(this.fd, Buffer.alloc(FRAME_BYTES), 0, FRAME_BYTES, this.size);
      } catch {
        // the disk refuses even this: a record not fsynced may still be read back (docs/store.md)
      }
      throw err;
    }
    this.size += total;
  }

  /** Drops every record (all of them applied to the database): the next is written after the header. */
  clear(): void {
    this.size = HEADER_BYTES;
  }

  close(remove: boolean): void {
    closeSync(this.fd);
    if (remove) rmSync(this.path, { force: true });
  }
}
