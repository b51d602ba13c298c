/** Streams events to a JSON Lines file with large buffered writes. */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EngineEvent } from '../model/events.js';

export class JsonlWriter {
  private readonly fd: number;
  private buffer: string[] = [];
  private size = 0;
  written = 0;

  constructor(file: string, private readonly flushAt = 1 << 20) {
    mkdirSync(dirname(file), { recursive: true });
    this.fd = openSync(file, 'w');
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
    writeSync(this.fd, this.buffer.join(''));
    this.buffer = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}
