/**
 * A stand-in for `phasewise serve`'s agent routes, just enough to run real `phasewise agent`
 * processes against (the lead's end-to-end test uses the real server): enrollment with a token and an
 * agent CA (node-forge), mTLS on the agent paths (403 for another agent's path), goal state with ETag,
 * status reports, scheduled-event approvals, packages with Range.
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';
import type { EnrollRequest, GoalState, StatusReport } from '../../src/protocol/agent-wire.js';
import { PackageServer, TLS_CERT, TLS_KEY } from './agent-kit.js';

function makeCa(): { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey; pem: string } {
  // node:crypto makes the key (forge's pure-JS RSA key generation takes seconds).
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keys = {
    privateKey: forge.pki.privateKeyFromPem(pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()) as forge.pki.rsa.PrivateKey,
    publicKey: forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }).toString()),
  };
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const name = [{ name: 'commonName', value: 'test agent CA' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'keyUsage', keyCertSign: true, digitalSignature: true }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey, pem: forge.pki.certificateToPem(cert) };
}

export class ControlPlane {
  readonly packages = new PackageServer();
  readonly token = 'test-enrollment-token';
  private readonly ca = makeCa();
  private server!: https.Server;
  port = 0;
  private serial = 2;
  readonly agents = new Map<string, { resourceId: string; fingerprint: string }>();
  readonly goals = new Map<string, GoalState>();
  readonly reports = new Map<string, StatusReport[]>();
  readonly approvals: Array<{ agentId: string; ids: string[] }> = [];
  /** Answer the next goal-state polls with 503. */
  goalStateFailures = 0;
  /** Answer the next status reports with 500. */
  statusFailures = 0;
  /** Replace the next goal-state body with this text (malformed input tests). */
  rawGoalState: string | null = null;

  async start(): Promise<void> {
    this.server = https.createServer({ cert: TLS_CERT, key: TLS_KEY, ca: [this.ca.pem], requestCert: true, rejectUnauthorized: false }, (req, res) => {
      void this.handle(req, res).catch((err: Error) => this.send(res, 500, { error: { code: 'Internal', message: err.message } }));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    this.packages.port = this.port;
  }

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  private send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(text);
  }

  private async body(req: IncomingMessage): Promise<string> {
    let text = '';
    for await (const c of req) text += c as string;
    return text;
  }

  private issue(certificatePem: string): string {
    const machine = forge.pki.certificateFromPem(certificatePem);
    const cert = forge.pki.createCertificate();
    cert.publicKey = machine.publicKey;
    cert.serialNumber = (this.serial++).toString(16).padStart(2, '0');
    cert.validity.notBefore = new Date(Date.now() - 3600_000);
    cert.validity.notAfter = new Date(Date.now() + 86_400_000);
    cert.setSubject([{ name: 'commonName', value: `agent-${this.serial}` }]);
    cert.setIssuer(this.ca.cert.subject.attributes);
    cert.setExtensions([{ name: 'extKeyUsage', clientAuth: true }]);
    cert.sign(this.ca.key, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    if (url.pathname.startsWith('/v1/packages/')) return this.packages.serve(req, res);
    if (req.method === 'POST' && url.pathname === '/v1/enroll') {
      if (req.headers.authorization !== `Bearer ${this.token}`) return this.send(res, 401, { error: { code: 'InvalidEnrollmentToken', message: 'the enrollment token is not valid' } });
      const r = JSON.parse(await this.body(req)) as EnrollRequest;
      const agentId = `agent-${this.agents.size + 1}`;
      const clientCertificatePem = this.issue(r.certificatePem);
      const fingerprint = new X509Certificate(clientCertificatePem).fingerprint256;
      const resourceId = r.resourceId ?? `/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/${r.name ?? r.computerName}`;
      this.agents.set(agentId, { resourceId, fingerprint });
      return this.send(res, 201, { agentId, resourceId, clientCertificatePem, caCertificatePem: this.ca.pem, pollIntervalSeconds: 1, statusIntervalSeconds: 2 });
    }
    const m = /^\/v1\/agents\/([^/]+)\/(goalstate|status|scheduledevents)$/.exec(url.pathname);
    if (!m) return this.send(res, 404, { error: { code: 'NotFound', message: url.pathname } });
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    if (!socket.authorized || !peer?.fingerprint256) return this.send(res, 401, { error: { code: 'Unauthenticated', message: 'a client certificate is required' } });
    const agentId = m[1]!;
    if (this.agents.get(agentId)?.fingerprint !== peer.fingerprint256) return this.send(res, 403, { error: { code: 'Forbidden', message: 'not your agent' } });
    if (m[2] === 'goalstate') {
      if (this.goalStateFailures > 0) {
        this.goalStateFailures--;
        return this.send(res, 503, { error: { code: 'Busy', message: 'try later' } });
      }
      if (this.rawGoalState !== null) {
        const raw = this.rawGoalState;
        this.rawGoalState = null;
        res.writeHead(200, { 'content-type': 'application/json', etag: '"raw"' }).end(raw);
        return;
      }
      const g = this.goals.get(agentId);
      if (!g) return this.send(res, 404, { error: { code: 'NoGoalState', message: 'none yet' } });
      const etag = `"${g.goalStateId}"`;
      if (req.headers['if-none-match'] === etag) return this.send(res, 304, undefined, { etag });
      return this.send(res, 200, g, { etag });
    }
    if (m[2] === 'status' && req.method === 'PUT') {
      if (this.statusFailures > 0) {
        this.statusFailures--;
        await this.body(req);
        return this.send(res, 500, { error: { code: 'Internal', message: 'disk full' } });
      }
      const list = this.reports.get(agentId) ?? [];
      list.push(JSON.parse(await this.body(req)) as StatusReport);
      this.reports.set(agentId, list);
      return this.send(res, 204);
    }
    if (m[2] === 'scheduledevents' && req.method === 'POST') {
      const b = JSON.parse(await this.body(req)) as { StartRequests: Array<{ EventId: string }> };
      this.approvals.push({ agentId, ids: b.StartRequests.map((s) => s.EventId) });
      return this.send(res, 204);
    }
    return this.send(res, 405, { error: { code: 'MethodNotAllowed', message: req.method ?? '' } });
  }

  lastReport(agentId: string): StatusReport | undefined {
    return this.reports.get(agentId)?.at(-1);
  }
}
