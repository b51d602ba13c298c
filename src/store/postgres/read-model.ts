/**
 * A follower's read model of the engine's state, kept in step with PostgreSQL commit by commit. The
 * first refresh loads the whole state; each later one reads, in one REPEATABLE READ transaction with the
 * commit version, only the fleet rows written after the version it holds (their `cv`, schema migration 7)
 * and the tombstones of the ones deleted, applies them to the fleet it keeps (fleet-apply.ts), and reads
 * the other tables whole (rollouts, attempts, timers, pending actions, catalog). So a refresh costs what
 * changed in the fleet plus the running rollouts' state, rebuilt from their plans (one unit per batch:
 * while a rollout runs, that part still grows with its size; docs/benchmarks.md), never the whole fleet.
 * A follower whose version is below the tombstones' floor (tombstones.ts) loads the whole state again.
 * The state it gives equals a whole load at the same version (test/read-model.test.ts), except the order
 * of `fleet.instances`' artifact keys, which a whole load takes from the rows' order (nothing relies on it).
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import type { EngineState } from '../../engine/state.js';
import type { Plan } from '../../planner/types.js';
import { loadStateWithFleet } from '../sqlite/load.js';
import { parsePlan } from '../sqlite/rows.js';
import type { Row } from '../sqlite/load.js';
import { FleetApplier } from './fleet-apply.js';
import type { FleetChanges, MachineChanges, Tombstone } from './fleet-apply.js';
import { copyToSqlite, emptySqlite } from './snapshot.js';

const FLEET_TABLES: ReadonlySet<string> = new Set(['machines', 'instances', 'machine_health', 'rollout_plans']);
/** A whole load reads the fleet tables too; plans are always read apart (only the new ones). */
const PLANS: ReadonlySet<string> = new Set(['rollout_plans']);

export interface Refreshed {
  /** 'same': the version had not moved (nothing read); 'whole': a whole load; 'changes': the changes applied. */
  kind: 'same' | 'whole' | 'changes';
  version: number;
  /** Of a 'changes' refresh: the fleet rows and tombstones applied. */
  rows: number;
  /** Of a 'changes' refresh: machines taken out and put in (re-added ones in both), for indexes kept beside the fleet. */
  machines: MachineChanges;
}

export interface RefreshOptions {
  /** Load the whole state even if the changes would do. */
  forceWhole?: boolean;
  /** Reads more in the refresh's transaction (a follower copies the API's tables there); run only when the version moved. */
  alsoRead?: (client: pg.Client) => Promise<void>;
  /** Told just before the model changes (after every read): with `whole` false, the fleet objects in use change in place. */
  applying?: (whole: boolean) => void;
}

export class ReadModel {
  private applier: FleetApplier | null = null;
  private held = -1;
  private stateNow: EngineState | null = null;
  /** Every rollout's plan, parsed once: a plan is written with its rollout and never changed, and it lists the rollout's machines. */
  private plans = new Map<string, Plan>();

  /** The state at `version` (null before the first refresh, or while the database holds no fleet). */
  get state(): EngineState | null {
    return this.stateNow;
  }

  get version(): number {
    return this.held;
  }

  /**
   * Brings the model to the store's commit version, in one REPEATABLE READ transaction. The state is
   * changed only after every read succeeded: a failed refresh leaves the model as it was. Each refresh
   * gives a new EngineState object (rollouts rebuilt, so the engine's hot-path references are found again
   * on first use, as after a load) around the same fleet, changed in place (a whole load makes a new one).
   */
  async refresh(client: pg.Client, opts: RefreshOptions = {}): Promise<Refreshed> {
    const none: MachineChanges = { added: [], removed: [] };
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let db: Database.Database | null = null;
    try {
      const { rows: [head] } = await client.query<{ version: string; floor: string }>(
        'SELECT (SELECT version FROM commit_version) AS version, (SELECT floor FROM tombstone_floor) AS floor');
      const version = Number(head!.version);
      if (version === this.held && !opts.forceWhole) {
        await client.query('COMMIT');
        return { kind: 'same', version, rows: 0, machines: none };
      }
      db = emptySqlite(); // made only when the version moved: a follower looks twice a second
      // Tombstones at or below the floor were pruned: a model that old cannot know what was deleted.
      const whole = opts.forceWhole || !this.applier || this.held < Number(head!.floor);
      let changes: FleetChanges | null = null;
      let applier = this.applier;
      if (whole) {
        applier = (await copyToSqlite(client, db, { whole: false, inTransaction: true, skip: PLANS, fleet: (d) => new FleetApplier(d) })) as FleetApplier | null;
        applier ??= new FleetApplier(db); // no machine rows: an empty fleet
      } else {
        changes = await readFleetChanges(client, this.held);
        await copyToSqlite(client, db, { whole: false, inTransaction: true, skip: FLEET_TABLES });
      }
      const plans = whole ? new Map<string, Plan>() : this.plans;
      const known = [...plans.keys()];
      const fresh = await client.query<{ rollout_id: string; plan: string }>('SELECT rollout_id, plan FROM rollout_plans WHERE NOT (rollout_id = ANY($1))', [known]);
      await opts.alsoRead?.(client);
      await client.query('COMMIT');
      // From here on nothing waits: the model changes in one go.
      opts.applying?.(whole);
      let machines = none;
      if (whole) applier!.finish(db);
      else {
        applier!.reloadSets(db);
        machines = applier!.apply(changes!);
      }
      for (const r of fresh.rows) plans.set(r.rollout_id, parsePlan<Plan>(r.plan));
      this.plans = plans;
      this.applier = applier;
      this.held = version;
      const imported = db.prepare("SELECT 1 FROM meta WHERE key = 'imported'").get() !== undefined;
      this.stateNow = imported ? loadStateWithFleet(db, applier!.fleet, plans) : null;
      const rows = changes ? changes.tombstones.length + changes.machines.length + changes.instances.length + changes.health.length : 0;
      return { kind: whole ? 'whole' : 'changes', version, rows, machines };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      db?.close();
    }
  }
}

/** The fleet rows written, and the tombstones left, after version `after` (the cv indexes find them). */
async function readFleetChanges(client: pg.Client, after: number): Promise<FleetChanges> {
  const q = async <T>(sql: string) => (await client.query(sql, [after])).rows as T[];
  const tombstones = await q<Tombstone>('SELECT tbl, k1, k2 FROM state_tombstones WHERE cv > $1 ORDER BY cv');
  const machines = await q<Row>('SELECT * FROM machines WHERE cv > $1 ORDER BY ord');
  const instances = await q<Row>('SELECT * FROM instances WHERE cv > $1 ORDER BY ord');
  const health = await q<Row>('SELECT machine_id, signals FROM machine_health WHERE cv > $1');
  return { tombstones, machines, instances, health };
}
