/**
 * `GET /healthz` and `GET /readyz`, without a token, for load balancers and supervisors: whether this
 * process serves, whether it leads (runs the engine), and whether it can take requests now.
 */
import type { FastifyInstance } from 'fastify';

export interface HealthView {
  store: 'sqlite' | 'postgres';
  /** This process runs the engine (always, on SQLite). */
  leader: boolean;
  /** It can take API requests now (a leader whose engine runs; a follower that reaches the database). */
  ready: boolean;
  /** Why it is not ready, when it is not. */
  reason?: string;
  /** Replicas: this one's name in the lease, and the lease's fencing token while it leads. */
  holder?: string;
  token?: number;
  /** A follower: the commit version its read snapshot holds (-1: none yet), or why it has none. */
  readSnapshot?: number;
  readSnapshotOff?: string;
}

export function registerHealthRoutes(app: FastifyInstance, view: () => HealthView): void {
  app.get('/healthz', async (_req, reply) => reply.status(200).send({ serving: true, ...view() }));
  app.get('/readyz', async (_req, reply) => {
    const v = view();
    return reply.status(v.ready ? 200 : 503).send(v);
  });
}
