/**
 * Reads a user's file as UTF-8 text, up to a size. readFileSync would read `/dev/zero` or a named pipe
 * that never ends until memory runs out, and a huge file whole before anyone looks at its size.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export class FileTooLargeError extends Error {
  constructor(readonly file: string, readonly maxBytes: number) {
    super(`${file} is larger than ${maxBytes} bytes`);
  }
}

/** The file's text; FileTooLargeError past `maxBytes`; fs errors (ENOENT, EISDIR, …) as they come. */
export function readTextUpTo(file: string, maxBytes: number): string {
  const fd = openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new FileTooLargeError(file, maxBytes);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
