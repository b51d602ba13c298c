/**
 * A follower's read model of the engine's state, kept in step with PostgreSQL commit by commit. The
 * first refresh loads the whole state; each later one reads, in one REPEATABLE READ transaction with the
 * commit version, only the rows written after the version it holds (their `cv`: the fleet's, schema
 * migration 7; the rollouts' progress and the API's tables, migration 8) and the tombstones of the rows
 * deleted, and applies them to what it keeps: the fleet (fleet-apply.ts), the rollouts and timers
 * (progress-apply.ts), and, with `side`, the API's tables (side-apply.ts). What is small is still read
 * whole (meta, catalog, regions and sets, maintenance, pending actions: the ones in flight) and new plans
 * once. So a refresh costs what changed, not the fleet's or a running rollout's size; it still makes a
 * new EngineState and derives its indexes (in-flight counts, waiters) from every kept rollout's units,
 * as a load does (docs/benchmarks.md). A follower whose version is below the tombstones' floor
 * (tombstones.ts), or whose changes cannot be applied safely (progress-apply.ts), loads whole again.
 * The state it gives equals a whole load at the same version (test/read-model.test.ts), except the order
 * of `fleet.instances`' artifact keys, which a whole load takes from the rows' order (nothing relies on it).
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { EngineState } from '../../engine/state.js';
import type { Plan } from '../../planner/types.js';
import { loadStateHead, loadStateTail, loadStateWithFleet } from '../sqlite/load.js';
import { parsePlan } from '../sqlite/rows.js';
import type { Row } from '../sqlite/load.js';
import { FleetApplier } from './fleet-apply.js';
import type { FleetChanges, MachineChanges, Tombstone } from './fleet-apply.js';
import { PROGRESS_TABLES, ProgressModel } from './progress-apply.js';
import type { ProgressChanges, TouchedFleet } from './progress-apply.js';
import { SIDE_TABLE_NAMES, SideModel } from './side-apply.js';
import type { SideRead } from './side-apply.js';
import { copyToSqlite, emptySqlite } from './snapshot.js';

const FLEET_TABLES = ['machines', 'instances', 'machine_health'];
/** Read apart, not copied: the fleet and progress tables by change, plans only the new ones. */
const NOT_COPIED: ReadonlySet<string> = new Set([...FLEET_TABLES, ...PROGRESS_TABLES, 'rollout_plans']);
/** A whole load reads the fleet and progress tables too; plans are always read apart (only the new ones). */
const PLANS: ReadonlySet<string> = new Set(['rollout_plans']);

export interface Refreshed {
  /** 'same': the version had not moved (nothing read); 'whole': a whole load; 'changes': the changes applied. */
  kind: 'same' | 'whole' | 'changes';
  version: number;
  /** Of a 'changes' refresh: the fleet rows and tombstones applied. */
  rows: number;
  /** Of a 'changes' refresh: the rollouts' progress rows (rollouts, phases, regions, units, gate runs, attempts, timers) and their tombstones read. */
  progressRows: number;
  /** Of a 'changes' refresh with `side`: the API tables' rows and tombstones applied. */
  sideRows: number;
  /** Of a 'changes' refresh: machines taken out and put in (re-added ones in both), for indexes kept beside the fleet. */
  machines: MachineChanges;
  /** Why changes the model could have applied were not (it loaded whole), or null. */
  fellBack: string | null;
  /** With `side`: the API tables' database a whole load replaced, for the caller to close once nothing reads it. */
  retired: Database.Database | null;
}

export interface RefreshOptions {
  /** Load the whole state even if the changes would do. */
  forceWhole?: boolean;
  /** Reads more in the refresh's transaction; run only when the version moved. */
  alsoRead?: (client: pg.Client) => Promise<void>;
  /** Told just before the model changes (after every read): with `whole` false, the objects in use (fleet, rollouts, `sideDb`) change in place. */
  applying?: (whole: boolean) => void;
}

interface Changes {
  fleet: FleetChanges;
  progress: ProgressChanges;
  side: Tombstone[];
}

export class ReadModel {
  private applier: FleetApplier | null = null;
  private held = -1;
  private stateNow: EngineState | null = null;
  /** Every rollout's plan, parsed once: a plan is written with its rollout and never changed, and it lists the rollout's machines. */
  private plans = new Map<string, Plan>();
  private progress = new ProgressModel();
  private readonly side: SideModel | null;

  /** With `side`, the model keeps the API's tables too (`sideDb`), as a follower's snapshot reads them. */
  constructor(opts: { side?: boolean } = {}) {
    this.side = opts.side ? new SideModel() : null;
  }

  /** The state at `version` (null before the first refresh, or while the database holds no fleet). */
  get state(): EngineState | null {
    return this.stateNow;
  }

  get version(): number {
    return this.held;
  }

  /** With `side`: the API's tables at `version`, in an SQLite database left query_only (null before the first refresh). */
  get sideDb(): Database.Database | null {
    return this.side?.db ?? null;
  }

  /** Closes the API tables' database. */
  close(): void {
    this.side?.close();
  }

  /**
   * Brings the model to the store's commit version, in one REPEATABLE READ transaction. The state is
   * changed only after every read succeeded: a failed refresh leaves the model as it was. Each refresh
   * gives a new EngineState object around the same fleet and rollouts, changed in place (a whole load makes new ones).
   */
  async refresh(client: pg.Client, opts: RefreshOptions = {}): Promise<Refreshed> {
    const none: MachineChanges = { added: [], removed: [] };
    const result = (kind: Refreshed['kind'], version: number): Refreshed => ({ kind, version, rows: 0, progressRows: 0, sideRows: 0, machines: none, fellBack: null, retired: null });
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let db: Database.Database | null = null;
    let side: SideRead | null = null;
    try {
      const { rows: [head] } = await client.query<{ version: string; floor: string }>(
        'SELECT (SELECT version FROM commit_version) AS version, (SELECT floor FROM tombstone_floor) AS floor');
      const version = Number(head!.version);
      if (version === this.held && !opts.forceWhole) {
        await client.query('COMMIT');
        return result('same', version);
      }
      db = emptySqlite(); // made only when the version moved: a follower looks twice a second
      // Tombstones at or below the floor were pruned: a model that old cannot know what was deleted. Before a fleet
      // was imported there is nothing to apply to (an import's rows carry no version: a load after it reads them whole).
      let whole = opts.forceWhole || !this.applier || !this.stateNow || this.held < Number(head!.floor);
      let changes: Changes | null = null;
      let sideRows: Row[][] = [];
      let fresh: Array<{ rollout_id: string; plan: string }> = [];
      let fellBack: string | null = null;
      if (!whole) {
        ({ changes, more: sideRows } = await readChanges(client, this.held, this.side?.changesSql(this.held) ?? []));
        fresh = await readPlans(client, [...this.plans.keys()]);
        const freshIds = fresh.map((r) => r.rollout_id);
        const fresher = new Set(freshIds);
        fellBack = this.progress.unappliable(changes.progress, (id) => this.plans.has(id) || fresher.has(id), freshIds);
        whole = fellBack !== null;
      }
      let applier = this.applier;
      if (whole) {
        changes = null;
        applier = (await copyToSqlite(client, db, { whole: false, inTransaction: true, skip: PLANS, fleet: (d) => new FleetApplier(d) })) as FleetApplier | null;
        applier ??= new FleetApplier(db); // no machine rows: an empty fleet
        fresh = await readPlans(client, []);
      } else {
        await copyToSqlite(client, db, { whole: false, inTransaction: true, skip: NOT_COPIED });
      }
      if (this.side) side = whole ? await this.side.readWhole(client) : this.side.changesOf(sideRows, changes!.side);
      await opts.alsoRead?.(client);
      await client.query('COMMIT');
      // From here on nothing waits: the model changes in one go.
      opts.applying?.(whole);
      const plans = whole ? new Map<string, Plan>() : this.plans;
      for (const r of fresh) plans.set(r.rollout_id, parsePlan<Plan>(r.plan));
      const out = result(whole ? 'whole' : 'changes', version);
      out.fellBack = fellBack;
      const imported = db.prepare("SELECT 1 FROM meta WHERE key = 'imported'").get() !== undefined;
      let state: EngineState | null = null;
      if (whole) {
        applier!.finish(db);
        if (imported) {
          state = loadStateWithFleet(db, applier!.fleet, plans);
          this.progress = new ProgressModel();
          this.progress.adopt(state);
        }
      } else {
        applier!.reloadSets(db);
        out.machines = applier!.apply(changes!.fleet);
        out.rows = changes!.fleet.tombstones.length + changes!.fleet.machines.length + changes!.fleet.instances.length + changes!.fleet.health.length;
        out.progressRows = changes!.progress.tombstones.length + Object.values(changes!.progress.rows).reduce((n, rows) => n + rows.length, 0);
        if (imported) {
          state = loadStateHead(db, applier!.fleet);
          this.progress.apply(applier!.fleet, changes!.progress, plans, touchedFleet(changes!.fleet));
          this.progress.fill(state);
          loadStateTail(db, state, this.progress.busyUnits);
        }
      }
      if (side) {
        const applied = this.side!.apply(side);
        side = null;
        out.retired = applied.retired;
        out.sideRows = applied.rows;
      }
      this.plans = plans;
      this.applier = applier;
      this.held = version;
      this.stateNow = state;
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      this.side?.discard(side);
      throw err;
    } finally {
      db?.close();
    }
  }
}

async function readPlans(client: pg.Client, known: string[]): Promise<Array<{ rollout_id: string; plan: string }>> {
  return (await client.query<{ rollout_id: string; plan: string }>('SELECT rollout_id, plan FROM rollout_plans WHERE NOT (rollout_id = ANY($1))', [known])).rows;
}

/**
 * The rows written, and the tombstones left, after version `after` (the cv indexes find them), with
 * `more` (the API tables' selects) in the same round trip: the statements go as one text, which the
 * simple protocol takes without parameters (`after` is a version this model holds, a whole number).
 */
async function readChanges(client: pg.Client, after: number, more: readonly string[]): Promise<{ changes: Changes; more: Row[][] }> {
  if (!Number.isSafeInteger(after)) throw new Error(`read model: a version must be a whole number, not ${after}`);
  const selects = [
    `SELECT tbl, k1, k2 FROM state_tombstones WHERE cv > ${after} ORDER BY cv`,
    `SELECT * FROM machines WHERE cv > ${after} ORDER BY ord`,
    `SELECT * FROM instances WHERE cv > ${after} ORDER BY ord`,
    `SELECT machine_id, signals FROM machine_health WHERE cv > ${after}`,
    ...PROGRESS_TABLES.map((t) => `SELECT * FROM ${t} WHERE cv > ${after}`),
    ...more,
  ];
  const results = (await client.query(selects.join(';\n'))) as unknown as Array<pg.QueryResult<Row>>;
  const [tombstones, machines, instances, health] = results.map((r) => r.rows) as [Tombstone[], Row[], Row[], Row[]];
  const of = (tables: ReadonlySet<string>) => tombstones.filter((t) => tables.has(t.tbl));
  const rows = {} as ProgressChanges['rows'];
  PROGRESS_TABLES.forEach((t, i) => (rows[t] = results[4 + i]!.rows));
  return {
    changes: {
      fleet: { tombstones: of(new Set(FLEET_TABLES)), machines, instances, health },
      progress: { tombstones: of(new Set(PROGRESS_TABLES)), rows },
      side: of(SIDE_TABLE_NAMES),
    },
    more: results.slice(4 + PROGRESS_TABLES.length).map((r) => r.rows),
  };
}

/** The instances and machines a fleet's changes touched: attempts on them hold objects that changed. */
function touchedFleet(ch: FleetChanges): TouchedFleet {
  const instances: Array<readonly [string, string]> = ch.instances.map((r) => [r.artifact_key as string, r.machine_id as string] as const);
  const machines: string[] = ch.machines.map((r) => r.id as string);
  for (const t of ch.tombstones) {
    if (t.tbl === 'instances') instances.push([t.k1, t.k2!]);
    else if (t.tbl === 'machines') machines.push(t.k1);
  }
  return { instances, machines };
}
