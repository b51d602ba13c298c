/**
 * The agent CA every replica shares: made by the first replica that needs it and kept in PostgreSQL's
 * `meta` table, its key sealed with the secret key all replicas share. So an agent enrolled through one
 * replica is recognised by all (each checks client certificates against it), and a backup holds the key
 * only sealed.
 */
import type pg from 'pg';
import { AgentCa } from '../../api/agent/agent-ca.js';
import type { SecretBox } from '../../api/arm/secrets.js';
import { ConfigError } from '../config.js';

const KEY = 'agentCa';

interface Stored {
  certPem: string;
  sealedKey: string;
}

export async function sharedAgentCa(client: pg.Client, secrets: SecretBox, now: number): Promise<AgentCa> {
  const read = async () => (await client.query<{ value: string }>('SELECT value FROM meta WHERE key = $1', [KEY])).rows[0]?.value;
  let text = await read();
  if (text === undefined) {
    const pems = AgentCa.generate(now);
    const made: Stored = { certPem: pems.certPem, sealedKey: secrets.seal(pems.keyPem) };
    // Two replicas starting together: the first insert wins and both use it.
    await client.query('INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [KEY, JSON.stringify(made)]);
    text = await read();
  }
  const stored = JSON.parse(text!) as Stored;
  let keyPem: string;
  try {
    keyPem = secrets.open(stored.sealedKey) as string;
  } catch {
    throw new ConfigError('the agent CA in the database was sealed with another secretKey: every replica needs the same secretKey (PHASEWISE_SECRET_KEY)');
  }
  return AgentCa.fromPems({ keyPem, certPem: stored.certPem });
}
