/**
 * One live copy per agent identity. A machine whose enrollment files were copied to another one (a
 * cloned VM image, a restored backup) has two agents presenting one credential: their status reports
 * would interleave and the server could not tell. Each agent names its *seat* in every request
 * (`x-phasewise-agent-seat`: a hash of the machine's boot id, host name and lib dir, so a restart of the
 * agent keeps it and a copy elsewhere has another). The seat that is in contact holds the identity; a
 * request from another seat while the holder was seen within the lease is refused (409
 * DuplicateAgentInstance), so the machine the server knows keeps being managed and the copy is told to
 * re-enroll. A holder silent for the lease (a reboot: a new boot id; a copy whose original is gone) is
 * replaced by the next seat that calls. Requests without a seat (agents before this check) pass.
 */
import { AGENT_SEAT_HEADER } from '../../protocol/agent-wire.js';
import { ArmError } from '../arm/errors.js';

export { AGENT_SEAT_HEADER };
const SEAT = /^[A-Za-z0-9._-]{1,128}$/;

interface Holder {
  seat: string;
  lastSeenMs: number;
}

/** What the server saw of a second copy of one agent (GET /phasewise/agents, the metric). */
export interface DuplicateSighting {
  seat: string;
  holderSeat: string;
  /** Wall-clock times, for people. */
  firstRefusedMs: number;
  lastRefusedMs: number;
  refused: number;
  /** The lease's clock at the last refusal. */
  lastRefusedAt: number;
}

export class AgentInstances {
  private readonly holders = new Map<string, Holder>();
  private readonly duplicates = new Map<string, DuplicateSighting>();

  constructor(
    /** How long a holder counts as live after its last request. */
    private readonly leaseMs: number,
    /** The lease's clock: monotonic (a wall-clock step must neither end nor stretch a lease). */
    private readonly now: () => number,
    private readonly wall: () => number,
    /** Told once per refused seat (the server logs a warning). */
    private readonly onDuplicate: (agentId: string, sighting: DuplicateSighting) => void = () => {},
  ) {}

  /** Records the request's seat for the agent, or throws 409 when another seat holds it and is live. */
  check(agentId: string, rawSeat: string | string[] | undefined): void {
    if (rawSeat === undefined) return;
    const seat = Array.isArray(rawSeat) ? rawSeat[0]! : rawSeat;
    if (!SEAT.test(seat)) throw new ArmError(400, 'InvalidParameter', `The ${AGENT_SEAT_HEADER} header must match ${SEAT.source}.`);
    const now = this.now();
    const holder = this.holders.get(agentId);
    if (!holder || holder.seat === seat || now - holder.lastSeenMs >= this.leaseMs) {
      if (holder && holder.seat !== seat) this.duplicates.delete(agentId); // a takeover: the old copy went quiet
      this.holders.set(agentId, { seat, lastSeenMs: now });
      return;
    }
    let s = this.duplicates.get(agentId);
    if (!s || s.seat !== seat) {
      s = { seat, holderSeat: holder.seat, firstRefusedMs: this.wall(), lastRefusedMs: 0, refused: 0, lastRefusedAt: now };
      this.duplicates.set(agentId, s);
      this.onDuplicate(agentId, s);
    }
    s.refused++;
    s.lastRefusedMs = this.wall();
    s.lastRefusedAt = now;
    const waitS = Math.ceil((this.leaseMs - (now - holder.lastSeenMs)) / 1000);
    throw new ArmError(409, 'DuplicateAgentInstance',
      `Another machine is using the identity of agent '${agentId}' and is in contact with the server (seat ${holder.seat}, last seen ${Math.round((now - holder.lastSeenMs) / 1000)} s ago); ` +
      `this copy (seat ${seat}) is refused. If this machine is a copy of another (a cloned image, a restored backup), give it its own identity: ` +
      `phasewise agent connect --force (with its own --name or --resource-id). If the other copy is gone for good, this one is accepted ${waitS} s after its last contact.`);
  }

  /**
   * The holder is stopping (its SIGTERM: a reboot, `systemctl stop`): another seat is accepted at once
   * instead of after the lease. Only the holder's own seat releases; any other changes nothing.
   */
  release(agentId: string, rawSeat: string | string[] | undefined): void {
    const seat = Array.isArray(rawSeat) ? rawSeat[0] : rawSeat;
    if (seat !== undefined && this.holders.get(agentId)?.seat === seat) this.holders.delete(agentId);
  }

  /** The second copy seen for the agent within the last lease, if any. */
  duplicate(agentId: string): DuplicateSighting | null {
    const s = this.duplicates.get(agentId);
    return s && this.now() - s.lastRefusedAt < this.leaseMs ? s : null;
  }

  /** Agents with a second copy refused within the last lease (the metric). */
  duplicateCount(): number {
    let n = 0;
    for (const id of this.duplicates.keys()) if (this.duplicate(id)) n++;
    return n;
  }
}

/** The lease: two of the shorter interval (an agent polls and reports on both) plus slack for a slow loop. */
export function instanceLeaseMs(pollIntervalSeconds: number, statusIntervalSeconds: number): number {
  return (2 * Math.min(pollIntervalSeconds, statusIntervalSeconds) + 30) * 1000;
}
