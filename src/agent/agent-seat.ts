/**
 * The agent's seat: what tells this copy of an enrolled identity from another machine holding a copy of
 * its files (a cloned image, a restored backup). The boot id differs between machines (and after every
 * reboot), the host name between containers that share a kernel, the lib dir between two agents on one
 * host; a restart of the agent keeps all three. The server refuses a second seat while the first is in
 * contact (src/api/agent/agent-instances.ts).
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';

export function agentSeat(libDir: string, bootId: string | null, host: string = hostname()): string {
  let lib = resolve(libDir);
  try {
    lib = realpathSync(lib);
  } catch {
    // the lib dir exists once enrolled; the resolved path is as good if it does not
  }
  return createHash('sha256').update(`${bootId ?? 'no-boot-id'}\n${host}\n${lib}`).digest('hex').slice(0, 32);
}
