/** Store problems with a stable code: the CLI prints the message and exits with a code per kind (main.ts). */
export type StoreErrorCode =
  | 'STORE_CORRUPT' | 'STORE_NOT_DATABASE' | 'STORE_NEWER' | 'STORE_LOCKED' | 'STORE_MISSING' | 'STORE_EXISTS' | 'STORE_IO'
  /** PostgreSQL: this replica's lease (fencing token) is no longer current; it must not write. */
  | 'STORE_FENCED'
  /** PostgreSQL: the server cannot be reached (address, credentials, network). */
  | 'STORE_UNREACHABLE'
  /** PostgreSQL: the URL cannot be parsed (bad input, exit code 2). */
  | 'STORE_BAD_URL';

/** A store problem with a stable code; the CLI prints the message and exits with a code per kind. */
export class StoreError extends Error {
  constructor(readonly code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreError';
  }
}
