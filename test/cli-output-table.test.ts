/**
 * `-o table` and `-o tsv` show scalar fields only (docs/cli.md, "Output and queries"). A field that is an
 * object in some rows and null in others (`boundAtRisk` in `rollout list` once a rollout has ended) is
 * nested and left out: it printed `[object Object]` in a column of its own.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyTableNote, render } from '../src/cli/client/output.js';

const rollouts = [
  { id: 'ro-1', status: 'cancelled', boundAtRisk: { atRisk: false, reason: 'x' } },
  { id: 'ro-3', status: 'completed', boundAtRisk: null },
  { id: 'ro-7', status: 'running', tags: ['a'] },
];

test('a field that is an object in one row and null in another is left out of table and tsv', () => {
  const t = render(rollouts, 'table');
  assert.doesNotMatch(t, /object Object|BoundAtRisk|Tags/);
  assert.equal(t, 'Id    Status\n----  ---------\nro-1  cancelled\nro-3  completed\nro-7  running\n');
  assert.equal(render(rollouts, 'tsv'), 'ro-1\tcancelled\nro-3\tcompleted\nro-7\trunning\n');
});

test('a scalar field missing from some rows, or null in all, stays a column with empty cells', () => {
  const rows = [{ id: 'ro-1', reason: null, endedAt: '2026-01-01' }, { id: 'ro-2', reason: null }];
  assert.equal(render(rows, 'tsv'), 'ro-1\t\t2026-01-01\nro-2\t\t\n');
  assert.equal(render(rows, 'table'), 'Id    Reason  EndedAt\n----  ------  ----------\nro-1          2026-01-01\nro-2\n');
});

test('an answer with no scalar field (fleet pause: lists and an object) prints nothing in table and tsv, not blank lines, and says why', () => {
  const paused = { paused: ['ro-1', 'ro-2'], heldOtherwise: [{ id: 'ro-3', kind: 'operator', reason: 'mine' }], fleetStop: { reason: 'incident', caller: 'alice', since: '2026-01-01T00:00:00Z' } };
  for (const data of [paused, [paused, paused]]) {
    assert.equal(render(data, 'table'), '');
    assert.equal(render(data, 'tsv'), '');
    assert.match(emptyTableNote(data, 'table') ?? '', /-o table shows scalar fields, and this answer has none/);
  }
  assert.equal(emptyTableNote(paused, 'json'), null);
  assert.equal(emptyTableNote(rollouts, 'table'), null, 'an answer with columns has no note');
  assert.equal(emptyTableNote([], 'table'), null, 'an empty list is simply empty');
});

test('table and tsv never pass a terminal escape through (a repository-written line in a patch report): controls become U+FFFD, line breaks spaces', () => {
  const hostile = [{ name: 'openssl', message: 'E: \x1b]52;c;cm0gLXJmIH4=\x07 failed\x1b[2J\r\nnext\u202eline\u0085' }];
  for (const format of ['table', 'tsv'] as const) {
    const out = render(hostile, format);
    assert.doesNotMatch(out, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/, format);
    assert.equal(out.split('\n').length, format === 'table' ? 4 : 2, 'one row');
    assert.match(out, /E: \ufffd\]52;c;cm0gLXJmIH4=\ufffd failed\ufffd\[2J {2}next\ufffdline\ufffd/);
  }
  assert.equal(render([['a\tb', 'c']], 'tsv'), 'a b\tc\n', 'a tab inside a value does not make a column');
});
