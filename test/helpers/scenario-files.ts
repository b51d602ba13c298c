/**
 * What the scenario-file tests share: a temporary folder for the files they write (made before the
 * file's tests, removed after), and a valid scenario changed by one case.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/** A temporary folder for this test file; `path(name)` is a file in it, `write` writes one there. */
export function scenarioFolder(prefix: string): { path(name: string): string; write(name: string, content: string | Buffer): string } {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const path = (name: string) => join(dir, name);
  return {
    path,
    write(name, content) {
      writeFileSync(path(name), content);
      return path(name);
    },
  };
}

/** A fresh copy of `valid()` with one change made to it. */
export function variant<T>(valid: () => T, change: (s: T) => void): T {
  const s = valid();
  change(s);
  return s;
}
