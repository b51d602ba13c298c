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
 *
 * A journal is two such files, `FILE-phasewise-journal` and `FILE-phasewise-journal-2` (the second made
 * when the first is full): records go to one until it passes a size, then to the other, which is emptied
 * first (group-journal.ts). Read together, their records follow one another in seq.
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, openSync, readSync, rmSync, writeSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { fsyncDir } from '../../util/atomic-file.js';

/** PWJ2: a journal may be two files (PWJ1 was one; a PWJ1 reader would miss the second file's records). */
const MAGIC = 'PWJ2';
const ID_BYTES = 32;
export const HEADER_BYTES = MAGIC.length + ID_BYTES;
/** A record's frame before its body: length, CRC-32, seq. */
export const FRAME_BYTES = 16;
/** Zeros written ahead at a time. */
export const AHEAD_BYTES = 16 * 1024 * 1024;

export const journalPath = (dbFile: string): string => `${dbFile}-phasewise-journal`;
/** Both files of a database's journal, the first one first (the second exists once the first filled up). */
export const journalPaths = (dbFile: string): [string, string] => [journalPath(dbFile), `${journalPath(dbFile)}-2`];

export interface JournalRecord {
  seq: number;
  body: Uint8Array;
}

export interface JournalContents {
  /** The id of the database the journal was written for; null when its header was cut short (no records then). */
  id: string | null;
  /** Whole records in order (a torn tail left out). */
  records: JournalRecord[];
}

export class JournalError extends Error {}

/** The record framed at `at`: null past the end, 'bad' when cut short, its checksum wrong, or zeros. */
function frameAt(fd: number, at: number, size: number): JournalRecord | 'bad' | null {
  if (at + FRAME_BYTES > size) return null;
  const frame = Buffer.alloc(FRAME_BYTES);
  readSync(fd, frame, 0, FRAME_BYTES, at);
  const len = frame.readUInt32LE(0);
  // Checked before the body is read: a length field is never trusted with an allocation beyond the file.
  if (at + FRAME_BYTES + len > size) return 'bad';
  const body = Buffer.alloc(len);
  if (len > 0) readSync(fd, body, 0, len, at + FRAME_BYTES);
  if (crc32(body, crc32(frame.subarray(8))) !== frame.readUInt32LE(4)) return 'bad';
  return { seq: frame.readDoubleLE(8), body };
}

function frameLength(fd: number, at: number): number {
  const len = Buffer.alloc(4);
  readSync(fd, len, 0, 4, at);
  return len.readUInt32LE(0);
}

/** Reads a journal, record by record (not the zeros ahead); null when there is none. A file without our header is refused. */
export function readJournal(path: string): JournalContents | null {
  if (!existsSync(path)) return null;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(HEADER_BYTES);
    const got = readSync(fd, head, 0, HEADER_BYTES, 0);
    const magic = head.toString('latin1', 0, Math.min(got, MAGIC.length));
    // Killed while the journal was created (it is created before any record): nothing to apply.
    // (A header of zeros: the zeros written ahead reached the disk, the header not; its fdatasync never returned.)
    if ((got < HEADER_BYTES && MAGIC.startsWith(magic)) || head.every((b) => b === 0)) return { id: null, records: [] };
    if (got < HEADER_BYTES || !magic.startsWith('PWJ')) throw new JournalError(`${path} is not a Phasewise journal (no header)`);
    if (magic !== MAGIC) throw new JournalError(`${path} is a journal of another Phasewise version (${magic}; this one reads ${MAGIC})`);
    const records: JournalRecord[] = [];
    for (let at = HEADER_BYTES; ;) {
      const r = frameAt(fd, at, size);
      const next = (records[records.length - 1]?.seq ?? Number.NaN) + 1;
      if (r === 'bad') {
        // A torn record is the last one written: after it come zeros or older records. A whole record that
        // follows it in seq means it was durable and damaged since; skipping it would drop sent groups.
        const after = records.length > 0 ? frameAt(fd, at + FRAME_BYTES + frameLength(fd, at), size) : null;
        if (after !== null && after !== 'bad' && after.seq === next + 1) throw new JournalError(`${path}: group ${next} is damaged (bad checksum), groups after it are whole`);
        break;
      }
      if (r === null || (records.length > 0 && r.seq !== next)) break; // the end, or a record from before the file was emptied
      records.push(r);
      at += FRAME_BYTES + r.body.length;
    }
    return { id: head.toString('latin1', MAGIC.length, HEADER_BYTES), records };
  } finally {
    closeSync(fd);
  }
}

export interface JournalFiles {
  /** Each file that exists, with the id of the database its header names (null: cut inside its header). */
  files: Array<{ path: string; id: string | null }>;
  /** The whole records of both files, in seq order. */
  records: JournalRecord[];
}

/** Reads both files of a database's journal (see journalPaths); null when neither exists. */
export function readJournals(dbFile: string): JournalFiles | null {
  const read = journalPaths(dbFile).map((path) => ({ path, contents: readJournal(path) }));
  const files = read.filter((f) => f.contents !== null).map((f) => ({ path: f.path, id: f.contents!.id, records: f.contents!.records }));
  if (files.length === 0) return null;
  return { files: files.map(({ path, id }) => ({ path, id })), records: files.flatMap((f) => f.records).sort((a, b) => a.seq - b.seq) };
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
    // No zeros yet: with group-journal.ts the apply worker writes them (extendedTo), off the engine thread;
    // a JournalFile used alone writes its own in append (writeAhead).
    this.allocated = this.size;
    fdatasyncSync(this.fd);
    // A new file's name is durable only once its folder is: without this a power loss could lose the
    // whole journal, every group in it sent, however many fdatasyncs its records had.
    if (durable) fsyncDir(dirname(path));
  }

  /** Zeros after the end, so that the next records up to `need` bytes land inside the file's size (unless another thread wrote them: extendedTo). */
  private writeAhead(need: number): void {
    if (this.size + need <= this.allocated) return;
    const zeros = Buffer.alloc(Math.max(AHEAD_BYTES, need));
    for (let done = 0; done < zeros.length;) done += writeSync(this.fd, zeros, done, zeros.length - done, this.allocated + done);
    this.allocated += zeros.length;
  }

  /** Wall milliseconds spent waiting for fdatasync (a benchmark figure). */
  syncMs = 0;

  /** Bytes of the file written so far (records, then zeros ahead). */
  get extent(): number {
    return this.allocated;
  }

  /** Another thread wrote zeros up to `bytes` (group-journal.ts: the apply worker does, off the engine thread). */
  extendedTo(bytes: number): void {
    if (bytes > this.allocated) this.allocated = bytes;
  }

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
