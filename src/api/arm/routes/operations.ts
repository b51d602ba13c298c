/**
 * Operation status (`Azure-AsyncOperation`) and monitor (`Location`) URLs of every long-running
 * operation: `/subscriptions/{sub}/providers/{RP}/locations/{loc}/operations/{id}`.
 */
import type { FastifyInstance } from 'fastify';
import type { ArmContext } from '../context.js';
import { apiVersionOf, baseUrlOf, booleanQuery, nowIso } from '../context.js';
import { ArmError, notFound } from '../errors.js';
import { operationPath, urlPathOf } from '../operations.js';

interface Params { sub: string; provider: string; location: string; id: string }

export function registerOperationRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const handler = async (req: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const p = req.params as Params;
    const path = operationPath(p.sub, p.provider, p.location, p.id);
    const op = ctx.ops.read(path, ctx.engine.state, nowIso(ctx));
    if (!op) throw notFound('OperationNotFound', `The operation '${p.id}' was not found.`);
    // `monitor` as every boolean parameter: its name and value in any casing (`?Monitor=True`), else a 400.
    if (booleanQuery(req, 'monitor', false)) {
      // The monitor: 202 while running, 200 when done (never 204: the SDKs reject it), the error when failed.
      if (op.status === 'InProgress') {
        reply.header('Location', `${baseUrlOf(ctx, req)}${urlPathOf(path)}?monitor=true&api-version=${encodeURIComponent(apiVersionOf(req))}`);
        reply.header('Retry-After', String(ctx.retryAfterSeconds));
        return reply.status(202).send();
      }
      if (op.status === 'Failed') throw new ArmError(409, op.error?.code ?? 'OperationFailed', op.error?.message ?? 'The operation failed.');
      if (op.status === 'Canceled') throw new ArmError(409, 'OperationCanceled', 'The operation was canceled.');
      return reply.status(200).send(op.result ?? {});
    }
    if (op.status === 'InProgress') reply.header('Retry-After', String(ctx.retryAfterSeconds));
    return { name: op.name, status: op.status, startTime: op.startTime, ...(op.endTime ? { endTime: op.endTime } : {}), ...(op.error ? { error: op.error } : {}) };
  };
  app.get('/subscriptions/:sub/providers/:provider/locations/:location/operations/:id', handler);
  app.get('/subscriptions/:sub/providers/:provider/locations/:location/operationStatuses/:id', handler);
}
