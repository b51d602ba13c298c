/**
 * The agent's lock on a disk that takes no more bytes (`ulimit -f 0` stands for a full disk: the write
 * fails with EFBIG as it would with ENOSPC). `agent run` said only "phasewise: ENOSPC: no space left on
 * device, write" and left `agent.lock.<pid>.tmp` behind, one more at every restart (systemd restarts it
 * every 5 s). Now the message names the lock and what to do, and nothing is left. A real child process.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDirs } from './helpers/agent-kit.js';
import { ROOT } from './helpers/cli.js';

test('a lock that cannot be written: an error naming the lock and what to do, no temporary file left', () => {
  const d = tempDirs();
  try {
    mkdirSync(join(d.lib, '.agent'), { recursive: true });
    const script = [
      `import { acquireAgentLock } from ${JSON.stringify(join(ROOT, 'dist/src/agent/agent-lock.js'))};`,
      'try {',
      `  acquireAgentLock(${JSON.stringify({ lib: d.lib, config: d.config, log: d.log })});`,
      "  console.log('locked');",
      '} catch (err) {',
      '  console.log(err.message);',
      '}',
    ].join('\n');
    for (let i = 0; i < 3; i++) {
      const r = spawnSync('sh', ['-c', 'ulimit -f 0; exec "$0" --input-type=module -e "$1"', process.execPath, script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout.trim(), /^cannot write the agent's lock .*\/\.agent\/agent\.lock: EFBIG: .*; free space or make the folder writable, then start the agent again$/);
    }
    assert.deepEqual(readdirSync(join(d.lib, '.agent')), [], 'no agent.lock.<pid>.tmp left by any of the three');
  } finally {
    rmSync(d.root, { recursive: true, force: true });
  }
});
