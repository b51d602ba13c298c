/**
 * A test agent speaking the wire protocol with real keys: an RSA-2048 machine key and self-signed
 * certificate (as `phasewise agent` makes them), enrollment with a token, then mTLS with the client
 * certificate the server issued.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import forge from 'node-forge';
import type { EnrollRequest, EnrollResponse, StatusReport } from '../../src/protocol/agent-wire.js';
import { signPackage } from '../../src/protocol/package-signature.js';
import { CERT, PUBLISHER_TOKEN } from './api-server.js';
import type { TestServer } from './api-server.js';

export interface MachineIdentity { keyPem: string; certPem: string }

export function machineIdentity(cn = 'machine'): MachineIdentity {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicKey.export({ type: 'spki', format: 'pem' }) as string);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: cn }]);
  cert.setIssuer([{ name: 'commonName', value: cn }]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { keyPem, certPem: forge.pki.certificateToPem(cert) };
}

export interface Reply { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: any }

export function rawRequest(url: string, method: string, path: string, opts: { agent?: Agent; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname, port: u.port, path, method, agent: opts.agent ?? new Agent({ ca: readFileSync(CERT, 'utf8') }),
      headers: { ...(opts.body !== undefined && typeof opts.body === 'string' ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

export function enrollBody(id: MachineIdentity, extra: Partial<EnrollRequest> = {}): EnrollRequest {
  return { certificatePem: id.certPem, agentVersion: '0.1.0', osName: 'Ubuntu', osVersion: '24.04', computerName: 'host-1', ...extra };
}

export class TestAgent {
  readonly agent: Agent;
  constructor(readonly url: string, readonly id: MachineIdentity, readonly enrolled: EnrollResponse) {
    this.agent = new Agent({ keepAlive: true, ca: readFileSync(CERT, 'utf8'), key: id.keyPem, cert: enrolled.clientCertificatePem });
  }

  static async enroll(url: string, token: string, extra: Partial<EnrollRequest> = {}, id = machineIdentity()): Promise<TestAgent> {
    const r = await rawRequest(url, 'POST', '/v1/enroll', { body: JSON.stringify(enrollBody(id, extra)), headers: { authorization: `Bearer ${token}` } });
    if (r.status !== 201) throw new Error(`enroll answered ${r.status}: ${r.text}`);
    return new TestAgent(url, id, r.json as EnrollResponse);
  }

  get agentId(): string { return this.enrolled.agentId; }

  call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    return rawRequest(this.url, method, path, { agent: this.agent, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}), headers });
  }

  goalState(etag?: string, wait?: number): Promise<Reply> {
    return this.call('GET', `/v1/agents/${this.agentId}/goalstate${wait !== undefined ? `?wait=${wait}` : ''}`, undefined, etag ? { 'if-none-match': etag } : {});
  }

  status(report: StatusReport): Promise<Reply> {
    return this.call('PUT', `/v1/agents/${this.agentId}/status`, report);
  }

  close(): void { this.agent.destroy(); }
}

/** A well-formed status report; `ext` fills agentState and handlerAggregateStatus. */
type Outcome = 'succeeded' | 'rolledBack' | 'failed' | 'blocked' | 'rejected';
type ExtReport = { version: string | null; op?: { id: string; outcome: Outcome; message?: string } };

export function statusReport(opts: { goalStateId?: number; ext?: Record<string, ExtReport>; app?: 'Initializing' | 'Healthy' | 'Unhealthy' | 'Unknown' } = {}): StatusReport {
  const now = new Date().toISOString();
  const msg = (message: string) => ({ lang: 'en-US', message });
  const ext = opts.ext ?? {};
  return {
    version: '1.1', timestampUTC: now, goalStateId: opts.goalStateId ?? 0,
    aggregateStatus: {
      guestAgentStatus: { version: '0.1.0', status: 'Ready', formattedMessage: msg('Guest Agent is running') },
      handlerAggregateStatus: Object.entries(ext).filter(([, e]) => e.version).map(([name, e]) => ({
        handlerName: name, handlerVersion: e.version!, status: 'Ready' as const, code: 0, formattedMessage: msg('Plugin enabled'),
        runtimeSettingsStatus: {
          sequenceNumber: 1,
          settingsStatus: { version: 1, timestampUTC: now, status: { status: 'success' as const, code: 0, operation: 'Enable', formattedMessage: msg('enabled') } },
        },
      })),
      vmArtifactsAggregateStatus: {
        goalStateAggregateStatus: { inSvdSeqNo: opts.goalStateId ?? 0, status: 'Success', code: 0, timestampUTC: now, formattedMessage: msg('GoalState executed successfully') },
      },
    },
    guestOSInfo: { computerName: 'host-1', osName: 'Ubuntu', osVersion: '24.04', version: '0.1.0' },
    agentState: Object.fromEntries(Object.entries(ext).map(([name, e]) => [name, {
      state: e.version ? 'Enabled' as const : 'NotInstalled' as const, installedVersion: e.version, lastKnownGood: e.version,
      lastOperation: e.op ? { operationId: e.op.id, outcome: e.op.outcome, version: e.version, message: e.op.message ?? e.op.outcome, finishedAt: now } : null,
    }])),
    applicationHealth: opts.app ? { state: opts.app, extensionName: 'health' } : null,
    agentConfiguration: { extensionsEnabled: true, extensionsAllowList: [], extensionsBlockList: ['Bad.Ext'] },
  };
}

/** A zip with a HandlerManifest (what publishers upload); deterministic bytes per `tag`. */
export async function handlerZip(tag: string): Promise<Buffer> {
  const { ZipFile } = await import('yazl');
  const zip = new ZipFile();
  const mtime = new Date('2026-01-01T00:00:00Z');
  const handlerManifest = { installCommand: 'install.sh', enableCommand: 'enable.sh', uninstallCommand: 'true', updateCommand: 'true', disableCommand: 'true' };
  zip.addBuffer(Buffer.from(JSON.stringify([{ version: 1.0, handlerManifest }])), 'HandlerManifest.json', { mtime });
  zip.addBuffer(Buffer.from(`#!/bin/sh\necho ${tag}\n`), 'enable.sh', { mtime, mode: 0o755 });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The publisher's Ed25519 key of the tests (kept outside the server, as a real publisher's). */
export const publisherKey = generateKeyPairSync('ed25519');
export const publisherKeyPem = publisherKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

export async function uploadPackage(s: TestServer, publisher: string, type: string, version: string, zip: Buffer): Promise<{ status: number; body: any }> {
  const sha256 = createHash('sha256').update(zip).digest('hex');
  const doc = { name: `${publisher}.${type}`, version, sha256, size: zip.length, signature: signPackage(publisherKeyPem, 'test-2026', `${publisher}.${type}`, version, sha256, zip.length) };
  const r = await rawRequest(s.url, 'PUT', `/phasewise/publishers/${publisher}/extensionTypes/${type}/versions/${version}/package`, {
    body: zip, headers: { authorization: `Bearer ${PUBLISHER_TOKEN}`, 'content-type': 'application/zip', 'x-phasewise-package-signature': Buffer.from(JSON.stringify(doc)).toString('base64') },
  });
  return { status: r.status, body: r.json };
}

