/**
 * Webhooks against a real loopback HTTP receiver: the small scenario's release is withdrawn with
 * rollback and the rollback completes; a failing release then breaches a gate and stops its rollout. Each
 * notification arrives signed (HMAC-SHA256 of the body), the receiver's first failures are retried,
 * and a second hook whose target is down gives up after its bounded attempts without holding the
 * engine back.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { call, eventually, startTestServer } from './helpers/api-server.js';
import type { TestServer } from './helpers/api-server.js';
import { parseMetrics } from './helpers/metrics.js';

const SECRET = 'webhook-secret-0123456789abcdef';
const AGENT = '/phasewise/publishers/Contoso.Monitoring/extensionTypes/Agent';

interface Received { headers: Record<string, string | string[] | undefined>; body: string; status: number }

describe('webhooks', () => {
  let s: TestServer;
  let receiver: Server;
  const received: Received[] = [];
  let failFirst = 2;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        const status = failFirst-- > 0 ? 500 : 204;
        received.push({ headers: req.headers, body, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    s = await startTestServer({
      scenario: 'examples/small.yaml', subscriptions: [],
      simulatedFailures: { '1.4.2.0': { unhealthyAfterUpgrade: 1 } },
      webhooks: [
        { url: `http://127.0.0.1:${port}/hooks`, secret: SECRET },
        { url: 'http://127.0.0.1:1/down', secret: SECRET, events: ['rollout.completed', 'version.withdrawn'] },
      ],
      webhookRetry: { maxAttempts: 3, initialBackoffMs: 20 },
    });
  });
  after(async () => {
    await s?.stop();
    await new Promise((r) => receiver.close(r));
  });

  const delivered = () => received.filter((r) => r.status === 204).map((r) => JSON.parse(r.body) as { id: string; type: string; event: { type: string } });

  test('signed notifications for a breach, a stop, a withdrawal and a completion; retries; a down target blocks nothing', async () => {
    await eventually(async () => (await call(s.url, 'GET', '/phasewise/rollouts/ro-1')).body.phases[0].status === 'completed', 60_000, 'the canary');
    const w = await call(s.url, 'POST', `${AGENT}/versions/1.4.1.0/withdraw`, { reason: 'breaks machines', rollback: true });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    await eventually(async () => delivered().some((d) => d.type === 'version.withdrawn'), 30_000, 'version.withdrawn');
    await eventually(async () => delivered().some((d) => d.type === 'rollout.completed'), 60_000, 'rollout.completed (the rollback)');
    // A release that turns every machine unhealthy: R23 breaches in the canary set and the rollout stops.
    assert.equal((await call(s.url, 'PUT', `${AGENT}/versions/1.4.2.0`, { os: ['linux', 'windows'] })).status, 201);
    await eventually(async () => delivered().some((d) => d.type === 'gate.breached'), 60_000, 'gate.breached');
    await eventually(async () => delivered().some((d) => d.type === 'rollout.stopped'), 60_000, 'rollout.stopped');

    for (const r of received) {
      assert.equal(r.headers['x-phasewise-signature'], `sha256=${createHmac('sha256', SECRET).update(r.body).digest('hex')}`);
      assert.equal(r.headers['content-type'], 'application/json');
      const body = JSON.parse(r.body) as { id: string; type: string; event: { seq: number } };
      assert.equal(r.headers['x-phasewise-event'], body.type);
      assert.equal(body.id, `phasewise-${body.event.seq}`);
    }
    // The first two answers were 500: the same delivery came again, in order.
    assert.equal(received[0]!.status, 500);
    assert.equal(received[0]!.body, received[2]!.body);
    const withdrawn = delivered().find((d) => d.type === 'version.withdrawn')! as unknown as { event: { kind: string; toVersion: string } };
    assert.equal(withdrawn.event.kind, 'withdrawn');
    assert.equal(withdrawn.event.toVersion, '1.4.1.0');
    const completed = delivered().find((d) => d.type === 'rollout.completed')! as unknown as { rollout: { id: string; toVersion: string } };
    assert.deepEqual(completed.rollout.toVersion, '1.4.0.0');
    // The hook to a closed port gave up after three attempts per notification; the engine went on regardless.
    await eventually(async () => {
      const ms = parseMetrics(await (await fetch(`${s.url}/metrics`)).text());
      return ms.find((m) => m.name === 'phasewise_webhook_deliveries_total' && m.labels.result === 'failed' && m.value >= 2);
    }, 20_000, 'the down hook to give up');
    const ms = parseMetrics(await (await fetch(`${s.url}/metrics`)).text());
    const retried = ms.find((m) => m.name === 'phasewise_webhook_deliveries_total' && m.labels.result === 'retried')!;
    assert.ok(retried.value >= 2 + 2 * 2, `retried ${retried.value}`);
  });
});
