/**
 * What the agent driver persists, in the engine's database beside its tables: enrolled agents (the
 * machine each speaks for, its credential's fingerprint), each agent's goal (extension entries with
 * the operation they carry), operations by idempotency key with their answer, and the last status
 * report of each agent (written by group commit, see status-writer.ts).
 */
import type Database from 'better-sqlite3';
import { AGENT_TABLES_DDL } from '../../store/sqlite/side-schema.js';
import type { GoalStatePatchOperation, StatusReport } from '../../protocol/agent-wire.js';

export interface AgentInfo {
  agentVersion: string;
  osName: string;
  osVersion: string;
  computerName: string;
}

export interface AgentRecord {
  agentId: string;
  machineId: string;
  resourceId: string;
  /** fingerprint256 of the client certificate the CA issued. */
  fingerprint: string;
  /** The machine's self-signed certificate: protected settings are encrypted to it. */
  machineCertPem: string;
  thumbprint: string;
  enrolledAtMs: number;
  revokedAtMs: number | null;
  info: AgentInfo;
}

/** One extension of an agent's goal state, as the driver last set it. */
export interface GoalEntry {
  artifactKey: string;
  publisher: string;
  type: string;
  extensionName: string;
  version: string;
  state: 'enabled' | 'uninstall';
  operationId: string;
  settingsSeqNo: number;
}

export interface AgentGoal {
  goalStateId: number;
  /** Hash of what the last goal state said, so a restart keeps the id when nothing changed. */
  contentHash: string;
  entries: Record<string, GoalEntry>;
  /** Guest OS patch operations until the agent answers them, by operationId (`storeKey`: the install's idempotency key). */
  patchOps?: Record<string, { op: GoalStatePatchOperation; storeKey: string | null }>;
  /** R83: reboots the server announced for a schedule's run (by EventId) until the run ends; `approved`: the machine said start. */
  rebootNotices?: Record<string, { runId: string; notBeforeMs: number; reason: string; approved: boolean }>;
}

export interface OperationRecord {
  key: string;
  agentId: string;
  machineId: string;
  artifactKey: string;
  kind: string;
  toVersion: string;
  /** The observation answered for it (JSON), once known. */
  answer: string | null;
}

/** The last report of each agent, replaced by each new one (also run by the status writer thread). */
export const STATUS_UPSERT = `INSERT INTO agent_status (agent_id, received_at, report) VALUES (?, ?, ?)
  ON CONFLICT (agent_id) DO UPDATE SET received_at = excluded.received_at, report = excluded.report`;
/** The same with the report as UTF-8 bytes (the writer thread's): stored as TEXT, the bytes unchanged. */
export const STATUS_UPSERT_BYTES = STATUS_UPSERT.replace('VALUES (?, ?, ?)', 'VALUES (?, ?, CAST(? AS TEXT))');

export class AgentStore {
  private readonly st: Record<string, Database.Statement>;

  constructor(readonly db: Database.Database) {
    db.exec(AGENT_TABLES_DDL);
    this.st = {
      putAgent: db.prepare(`INSERT INTO agents (agent_id, machine_id, resource_id, fingerprint, machine_cert, thumbprint, enrolled_at, revoked_at, info, goal)
        VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`),
      revoke: db.prepare('UPDATE agents SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL'),
      putGoal: db.prepare('UPDATE agents SET goal = ? WHERE agent_id = ?'),
      agents: db.prepare('SELECT * FROM agents'),
      putOp: db.prepare('INSERT OR IGNORE INTO agent_ops (key, agent_id, machine_id, artifact_key, kind, to_version, answer) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      answerOp: db.prepare('UPDATE agent_ops SET answer = ? WHERE key = ?'),
      getOp: db.prepare('SELECT * FROM agent_ops WHERE key = ?'),
      openOps: db.prepare('SELECT * FROM agent_ops WHERE answer IS NULL'),
      putStatus: db.prepare(STATUS_UPSERT),
      statuses: db.prepare('SELECT agent_id, received_at, report FROM agent_status'),
    };
  }

  addAgent(a: AgentRecord, goal: AgentGoal): void {
    this.st.putAgent!.run(a.agentId, a.machineId, a.resourceId, a.fingerprint, a.machineCertPem, a.thumbprint, a.enrolledAtMs, JSON.stringify(a.info), JSON.stringify(goal));
  }

  revoke(agentId: string, at: number): void {
    this.st.revoke!.run(at, agentId);
  }

  putGoal(agentId: string, goal: AgentGoal): void {
    this.st.putGoal!.run(JSON.stringify(goal), agentId);
  }

  loadAgents(): Array<{ record: AgentRecord; goal: AgentGoal }> {
    return (this.st.agents!.all() as Array<Record<string, unknown>>).map((r) => ({
      record: {
        agentId: r.agent_id as string, machineId: r.machine_id as string, resourceId: r.resource_id as string, fingerprint: r.fingerprint as string,
        machineCertPem: r.machine_cert as string, thumbprint: r.thumbprint as string, enrolledAtMs: r.enrolled_at as number,
        revokedAtMs: (r.revoked_at as number | null) ?? null, info: JSON.parse(r.info as string) as AgentInfo,
      },
      goal: JSON.parse(r.goal as string) as AgentGoal,
    }));
  }

  /** False when the key was already recorded (a resend). */
  addOperation(op: Omit<OperationRecord, 'answer'>): boolean {
    return this.st.putOp!.run(op.key, op.agentId, op.machineId, op.artifactKey, op.kind, op.toVersion, null).changes === 1;
  }

  /** Records an operation already answered (refused before reaching the machine). */
  addAnsweredOperation(op: Omit<OperationRecord, 'answer'>, answer: unknown): void {
    this.st.putOp!.run(op.key, op.agentId, op.machineId, op.artifactKey, op.kind, op.toVersion, JSON.stringify(answer));
  }

  answer(key: string, answer: unknown): void {
    this.st.answerOp!.run(JSON.stringify(answer), key);
  }

  operation(key: string): OperationRecord | undefined {
    const r = this.st.getOp!.get(key) as Record<string, unknown> | undefined;
    return r ? rowToOp(r) : undefined;
  }

  openOperations(): OperationRecord[] {
    return (this.st.openOps!.all() as Array<Record<string, unknown>>).map(rowToOp);
  }

  /** One group of reports in one transaction: all durable together, or none. */
  putStatuses(rows: ReadonlyArray<{ agentId: string; receivedAtMs: number; json: string }>): void {
    const put = this.st.putStatus!;
    this.db.transaction(() => {
      for (const r of rows) put.run(r.agentId, r.receivedAtMs, r.json);
    }).immediate();
  }

  statuses(): Array<{ agentId: string; receivedAtMs: number; report: StatusReport }> {
    const rows = this.st.statuses!.all() as Array<{ agent_id: string; received_at: number; report: string }>;
    return rows.map((r) => ({ agentId: r.agent_id, receivedAtMs: r.received_at, report: JSON.parse(r.report) as StatusReport }));
  }
}

function rowToOp(r: Record<string, unknown>): OperationRecord {
  return {
    key: r.key as string, agentId: r.agent_id as string, machineId: r.machine_id as string, artifactKey: r.artifact_key as string,
    kind: r.kind as string, toVersion: r.to_version as string, answer: (r.answer as string | null) ?? null,
  };
}
