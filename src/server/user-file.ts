/** Reading a file a user named in serve's configuration: bounded, a regular file, errors in one line. */
import { statSync } from 'node:fs';
import { FileTooLargeError, readTextUpTo } from '../util/bounded-read.js';
import { ConfigError } from './config-error.js';

/** A user's file, bounded, that must be a regular file (a FIFO would block the start). */
export function readUserFile(what: string, file: string, maxBytes: number): string {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new ConfigError(`${what} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (!st.isFile()) throw new ConfigError(`${what} ${file}: not a regular file`);
  try {
    return readTextUpTo(file, maxBytes);
  } catch (err) {
    if (err instanceof FileTooLargeError) throw new ConfigError(`${what} ${file}: larger than ${maxBytes} bytes`);
    throw new ConfigError(`${what} ${file}: cannot read it: ${(err as Error).message}`);
  }
}
