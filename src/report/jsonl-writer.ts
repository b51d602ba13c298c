/**
 * Streams events to a JSON Lines file with large buffered writes. A failing write (a full disk,
 * /dev/full) is an OutputFileError naming the option and file, not a bare "ENOSPC … write".
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EngineEvent } from '../model/events.js';

export class JsonlWriter {
  private readonly fd: number;
  private buffer: string[] = [];
  private size = 0;
  written = 0;

  /** `option` names where the file came from (`--events`) in errors. */
  constructor(private readonly file: string, private readonly flushAt = 1 << 20, private readonly option = 'the event log') {
    this.fd = this.guard('open', () => {
      mkdirSync(dirname(file), { recursive: true });
      return openSync(file, 'w');
    });
  }

  readonly onEvents = (events: readonly EngineEvent[]): void => {
    for (const e of events) {
      const line = JSON.stringify(e) + '\n';
      this.buffer.push(line);
      this.size += line.length;
    }
    this.written += events.length;
    if (this.size >= this.flushAt) this.flush();
  };

  flush(): void {
    if (this.buffer.length === 0) return;
    const text = this.buffer.join('');
    this.buffer = [];
    this.guard('write', () => writeSync(this.fd, text));
    this.size = 0;
  }

  close(): void {
    this.flush();
    this.guard('close', () => closeSync(this.fd));
  }

  private guard<T>(action: string, run: () => T): T {
    try {
      return run();
    } catch (err) {
      throw new OutputFileError(this.option, this.file, action, err);
    }
  }
}

/** An output file that could not be written: says which option, which file, and the system's reason. */
export class OutputFileError extends Error {
  constructor(option: string, file: string, action: string, cause: unknown) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOSPC' ? 'no space left on the device' : (cause as Error).message;
    super(`${option} ${file}: cannot ${action} the file (${reason}); nothing more was written to it`, { cause });
    this.name = 'OutputFileError';
  }
}
