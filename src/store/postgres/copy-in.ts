/**
 * `COPY table (columns) FROM STDIN` through `pg`'s query-object interface (an object with `submit`,
 * as `pg` documents for custom queries), so bulk imports need no further package. The rows come from
 * a generator and go out in chunks of about a megabyte, waiting when the socket is full: millions of
 * rows are never all held as text. A row that cannot be encoded aborts the COPY (CopyFail), and the
 * server rolls the statement back.
 */
import { once } from 'node:events';
import type pg from 'pg';

/** The part of `pg`'s connection a query object talks to. */
interface Wire {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: NodeJS.WritableStream & { writableNeedDrain?: boolean };
}

/**
 * Text per COPY data message. Short strings flatten within the cache: 32 K characters took 60% of the time
 * a megabyte's did to build at 300,000 machines (the chunk is a tree of concatenations until encoded).
 */
const CHUNK_CHARS = 1 << 15;
const NEEDS_ESCAPE = /[\\\t\n\r]/;

/** A value in COPY's text format: \N for NULL, and backslash, tab, newline and carriage return escaped. */
export function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot store the number ${v}`);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? '1' : '0';
  const s = String(v);
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

/** Rows in COPY's text format, gathered into chunks of about CHUNK_CHARS characters. */
export class CopyChunks {
  private text = '';

  constructor(private readonly width: number) {}

  /** Appends one row; true once the chunk is long enough to send. */
  row(row: readonly unknown[]): boolean {
    if (row.length !== this.width) throw new Error(`a row of ${row.length} values for ${this.width} columns`);
    const last = row.length - 1;
    let text = this.text;
    for (let i = 0; i <= last; i++) {
      const v = row[i];
      // The field, then its separator, each appended to the chunk: no per-row string is built.
      text += typeof v === 'string' && !NEEDS_ESCAPE.test(v) ? v : copyField(v);
      text += i === last ? '\n' : '\t';
    }
    this.text = text;
    return text.length >= CHUNK_CHARS;
  }

  /** The rows appended since the last take, as UTF-8. */
  take(): Buffer {
    const out = Buffer.from(this.text, 'utf8');
    this.text = '';
    return out;
  }

  get size(): number {
    return this.text.length;
  }
}

class CopyIn {
  private error: Error | null = null;
  private copied = 0;
  private finished = false;

  constructor(readonly text: string, private readonly rows: Iterable<readonly unknown[]>, private readonly width: number, private readonly done: (err: Error | null, rows: number) => void) {}

  submit(connection: Wire): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: Wire): void {
    void this.pump(connection);
  }

  private async pump(connection: Wire): Promise<void> {
    try {
      const chunks = new CopyChunks(this.width);
      for (const row of this.rows) {
        if (this.finished) return; // the server refused the COPY: the rest is not sent
        if (chunks.row(row)) {
          connection.sendCopyFromChunk(chunks.take());
          if (connection.stream.writableNeedDrain) await once(connection.stream, 'drain');
        }
      }
      if (chunks.size > 0) connection.sendCopyFromChunk(chunks.take());
      connection.endCopyFrom();
    } catch (err) {
      this.error ??= err as Error;
      connection.sendCopyFail((err as Error).message);
    }
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.copied = Number(/^COPY (\d+)/.exec(msg.text ?? '')?.[1] ?? 0);
  }

  /** A server error (its readyForQuery then goes to no query) or a lost connection: the COPY is over. */
  handleError(err: Error): void {
    this.error ??= err;
    this.finish();
  }

  handleReadyForQuery(): void {
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.done(this.error, this.copied);
  }

  // Messages a COPY FROM never receives; `pg` calls them on any query object.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** Streams `rows` into `table (columns)`; resolves with the number of rows the server copied. */
export function copyRows(client: pg.Client, table: string, columns: readonly string[], rows: Iterable<readonly unknown[]>): Promise<number> {
  return new Promise((resolve, reject) => {
    const q = new CopyIn(`COPY ${table} (${columns.join(', ')}) FROM STDIN`, rows, columns.length, (err, n) => (err ? reject(err) : resolve(n)));
    client.query(q as unknown as pg.QueryConfig);
  });
}
