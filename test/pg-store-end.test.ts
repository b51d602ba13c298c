/**
 * A PostgreSQL store that ended lets go of the state it loaded, at once: its client (and, through the client's
 * error listener, the store) stays reachable until the socket's close is handled, and bench:pg at 10,000,000
 * machines ran out of heap loading SQLite's copy while the PostgreSQL ticks' state was still held that way.
 * A literal of a long text (a rollout's plan) is the text pg.escapeLiteral writes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { compileScenario } from '../src/sim/scenario.js';
import { PgStore } from '../src/store/postgres/pg-store.js';
import { literal } from '../src/store/postgres/sql-batch.js';
import { baseScenario } from './helpers/harness.js';
import { createDatabase, usePgServer } from './helpers/pg-databases.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('PgStore.end', () => {
  const { server } = usePgServer('pgend');

  test('the loaded state is released when the store ends, before the event loop turns; load() then refuses', async () => {
    const url = await createDatabase(server().url, 'pgend_1');
    const init = await PgStore.open(url);
    await init.importState(compileScenario(baseScenario(), 'base').state, { load: false });
    await init.end();
    const store = await PgStore.open(url);
    const state = new WeakRef(store.load()!);
    assert.ok(state.deref()!.fleet.machines.size > 0);
    await store.end();
    gc();
    assert.equal(state.deref(), undefined, 'the state is collected while the store object is still held');
    assert.throws(() => store.load(), /closed/);
  });

  test('a literal of a long text with quotes and backslashes is the one pg.escapeLiteral writes', () => {
    const text = `${'{"machineIds":["gfill0000001"]},'.repeat(20_000)}it's a \\ path`;
    assert.equal(literal(text), pg.escapeLiteral(text));
    assert.equal(literal('plain'), pg.escapeLiteral('plain'));
  });
});
