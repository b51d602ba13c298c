/**
 * Test kit for the machine agent: real shell-script handlers zipped with yazl, signed with a test
 * publisher key, served by a loopback HTTPS server (Range, injectable faults), and an AgentRuntime
 * with fast polls. Handler scripts append every call to a log the tests read.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yazl from 'yazl';
import type { GoalState, GoalStateExtension, PackageReference, StatusReport } from '../../src/protocol/agent-wire.js';
import { signPackage } from '../../src/protocol/package-signature.js';
import { Journal } from '../../src/agent/journal.js';
import type { AgentDirs } from '../../src/agent/layout.js';
import { readPolicy } from '../../src/agent/local-policy.js';
import type { AgentRuntime, HealthView } from '../../src/agent/operation-context.js';
import { downloadPackage } from '../../src/agent/package-download.js';
import { ROOT } from './cli.js';

export const TLS_CERT = readFileSync(join(ROOT, 'test/fixtures/tls/cert.pem'), 'utf8');
export const TLS_KEY = readFileSync(join(ROOT, 'test/fixtures/tls/key.pem'), 'utf8');
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const HANDLER = 'Contoso.Test.Agent';

/** Shell bodies per command; `$V`, `$SEQ` are set; the default enable writes a success status. */
export interface HandlerBehaviour {
  install?: string;
  enable?: string;
  update?: string;
  disable?: string;
  uninstall?: string;
  updateMode?: 'UpdateWithInstall' | 'UpdateWithoutInstall';
  continueOnUpdateFailure?: boolean;
  /** Extra files in the zip (name → content). */
  files?: Record<string, string>;
}

export const writeStatus = (status: 'success' | 'error' | 'transitioning', message = 'ok') =>
  `printf '[{"version":1.0,"timestampUTC":"2026-01-01T00:00:00Z","status":{"name":"x","operation":"Enable",` +
  `"status":"${status}","code":0,"formattedMessage":{"lang":"en-US","message":"${message}"}}}]' > status/$SEQ.status.tmp` +
  ` && mv status/$SEQ.status.tmp status/$SEQ.status; echo $SEQ > mrseq`;

export function handlerScript(callLog: string, b: HandlerBehaviour): string {
  const body = (c: keyof HandlerBehaviour, dflt: string) => (typeof b[c] === 'string' ? (b[c] as string) : dflt);
  return [
    '#!/bin/sh',
    'cmd="$1"; V="$AZURE_GUEST_AGENT_EXTENSION_VERSION"; SEQ="$ConfigSequenceNumber"',
    'E="from=$AZURE_GUEST_AGENT_UPDATING_FROM_VERSION dis=$AZURE_GUEST_AGENT_DISABLE_CMD_EXIT_CODE unin=$AZURE_GUEST_AGENT_UNINSTALL_CMD_EXIT_CODE"',
    `echo "$cmd $V $SEQ $PHASEWISE_OPERATION_ID $E" >> '${callLog}'`,
    'case "$cmd" in',
    `  install) ${body('install', 'true')} ;;`,
    `  enable) ${body('enable', writeStatus('success'))} ;;`,
    `  update) ${body('update', 'true')} ;;`,
    `  disable) ${body('disable', 'true')} ;;`,
    `  uninstall) ${body('uninstall', 'true')} ;;`,
    'esac',
    '',
  ].join('\n');
}

export function manifest(b: HandlerBehaviour): string {
  return JSON.stringify([
    {
      name: 'TestAgent',
      version: '1.0',
      handlerManifest: {
        installCommand: './bin/handler.sh install',
        enableCommand: './bin/handler.sh enable',
        updateCommand: './bin/handler.sh update',
        disableCommand: './bin/handler.sh disable',
        uninstallCommand: './bin/handler.sh uninstall',
        rebootAfterInstall: false,
        reportHeartbeat: false,
        updateMode: b.updateMode ?? 'UpdateWithInstall',
        continueOnUpdateFailure: b.continueOnUpdateFailure ?? false,
      },
    },
  ]);
}

/** A zip from name → content (a `null` content makes a symlink entry to `/etc/passwd`). */
export function zipOf(entries: Record<string, string | null>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(entries)) {
    if (content === null) zip.addBuffer(Buffer.from('/etc/passwd'), name, { mode: 0o120777 });
    else zip.addBuffer(Buffer.from(content), name, { mode: 0o644 });
  }
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.on('error', reject);
  });
}

/** Renames an entry in place (same length), to write names yazl refuses (`../x`, `/abs`). */
export function patchName(zip: Buffer, from: string, to: string): Buffer {
  if (from.length !== to.length) throw new Error('patchName needs names of the same length');
  const out = Buffer.from(zip);
  let at = out.indexOf(from);
  let n = 0;
  while (at >= 0) {
    out.write(to, at, 'latin1');
    n++;
    at = out.indexOf(from, at + from.length);
  }
  if (n === 0) throw new Error(`${from} is not in the zip`);
  return out;
}

export function handlerZip(callLog: string, b: HandlerBehaviour = {}): Promise<Buffer> {
  return zipOf({ 'HandlerManifest.json': manifest(b), 'bin/handler.sh': handlerScript(callLog, b), ...(b.files ?? {}) });
}

export interface Faults {
  /** Answer this many package requests with 503 first. */
  fail5xx?: number;
  /** Cut the connection after this many bytes, this many times. */
  cutAfterBytes?: number;
  cuts?: number;
  /** Append garbage: the server sends more bytes than the package's size. */
  oversize?: boolean;
  /** Send in 8 KiB chunks this many ms apart (to kill an agent mid-download). */
  slowMs?: number;
}

/** A loopback HTTPS server for packages (`/v1/packages/<sha>`), honouring Range, with faults. */
export class PackageServer {
  private readonly blobs = new Map<string, Buffer>();
  readonly faults: Faults = {};
  requests: Array<{ path: string; range: string | undefined }> = [];
  private server!: https.Server;
  port = 0;

  async start(): Promise<void> {
    this.server = https.createServer({ cert: TLS_CERT, key: TLS_KEY }, (req, res) => this.serve(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Answers a package request (also used by the test control plane). */
  serve(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
    this.requests.push({ path: req.url ?? '', range: req.headers.range });
    const sha = (req.url ?? '').split('/').pop() ?? '';
    const blob = this.blobs.get(sha);
    if (this.faults.fail5xx && this.faults.fail5xx > 0) {
      this.faults.fail5xx--;
      res.writeHead(503).end('{"error":{"code":"Busy","message":"try later"}}');
      return;
    }
    if (!blob) return void res.writeHead(404).end();
    let body = this.faults.oversize ? Buffer.concat([blob, Buffer.alloc(4096, 1)]) : blob;
    let status = 200;
    const headers: Record<string, string> = { 'content-type': 'application/zip' };
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
      body = body.subarray(start);
      status = 206;
    }
    if (this.faults.cuts && this.faults.cuts > 0 && this.faults.cutAfterBytes !== undefined && body.length > this.faults.cutAfterBytes) {
      this.faults.cuts--;
      res.writeHead(status, { ...headers, 'content-length': String(body.length) });
      res.write(body.subarray(0, this.faults.cutAfterBytes), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (this.faults.slowMs) {
      res.writeHead(status, { ...headers, 'content-length': String(body.length) });
      const slowMs = this.faults.slowMs;
      let at = 0;
      const next = () => {
        if (res.destroyed) return;
        if (at >= body.length) return void res.end();
        res.write(body.subarray(at, at + 8192));
        at += 8192;
        setTimeout(next, slowMs);
      };
      return next();
    }
    res.writeHead(status, { ...headers, 'content-length': String(body.length) }).end(body);
  }

  add(zip: Buffer): { sha256: string; size: number; uri: string } {
    const sha256 = createHash('sha256').update(zip).digest('hex');
    this.blobs.set(sha256, zip);
    return { sha256, size: zip.length, uri: `https://localhost:${this.port}/v1/packages/${sha256}` };
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface Publisher {
  keyId: string;
  privatePem: string;
  publicPem: string;
}

export function newPublisher(keyId = 'test-publisher'): Publisher {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { keyId, privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function trust(dirs: AgentDirs, p: Publisher): void {
  mkdirSync(join(dirs.config, 'trusted-keys'), { recursive: true });
  writeFileSync(join(dirs.config, 'trusted-keys', `${p.keyId}.pub`), p.publicPem);
}

export function packageRef(server: PackageServer, p: Publisher, name: string, version: string, zip: Buffer): PackageReference {
  const { sha256, size, uri } = server.add(zip);
  return { uris: [uri], sha256, size, signature: signPackage(p.privatePem, p.keyId, name, version, sha256, size) };
}

export function extension(over: Partial<GoalStateExtension> & { version: string; package: PackageReference; operationId: string }): GoalStateExtension {
  return {
    name: HANDLER,
    extensionName: 'testagent',
    state: 'enabled',
    autoUpgrade: true,
    dependencyLevel: 0,
    settingsSeqNo: 1,
    settings: { publicSettings: { level: 1 }, protectedSettings: 'MIIBcmsCiphertext', protectedSettingsCertThumbprint: 'A'.repeat(40) },
    rollback: { enabled: true, healthGateSeconds: 0 },
    ...over,
  };
}

export function goal(id: number, extensions: GoalStateExtension[]): GoalState {
  return {
    schemaVersion: '1.0',
    goalStateId: id,
    activityId: `act-${id}`,
    createdAt: '2026-12-05T00:00:00Z',
    requiredFeatures: [],
    pollIntervalSeconds: 1,
    statusIntervalSeconds: 5,
    extensions,
    scheduledEvents: { DocumentIncarnation: 0, Events: [] },
  };
}

export function tempDirs(): AgentDirs & { root: string; callLog: string } {
  const root = mkdtempSync(join(tmpdir(), 'pw-agent-'));
  const dirs = { root, lib: join(root, 'lib'), config: join(root, 'etc'), log: join(root, 'log'), callLog: join(root, 'calls.log') };
  for (const d of [dirs.lib, dirs.config, dirs.log]) mkdirSync(d, { recursive: true });
  return dirs;
}

export function calls(callLog: string): string[] {
  return existsSync(callLog) ? readFileSync(callLog, 'utf8').trim().split('\n').filter(Boolean) : [];
}

export const noHealth: HealthView = { active: () => false, verdictSince: () => null, state: () => 'Unknown' };

export function runtime(dirs: AgentDirs, over: Partial<AgentRuntime> = {}): AgentRuntime & { lines: string[] } {
  const lines: string[] = [];
  const rt: AgentRuntime & { lines: string[] } = {
    dirs,
    journal: new Journal(dirs),
    now: () => Date.now(),
    sleep,
    pollMs: 20,
    log: (l) => lines.push(l),
    lines,
    timeoutsMs: { install: 10_000, enable: 10_000, update: 10_000, disable: 10_000, uninstall: 10_000 },
    statusWaitMs: 5_000,
    statusPollMs: 30,
    fetchPackage: (ref, dest) => downloadPackage(ref, dest, { ca: [TLS_CERT], attempts: 3, backoffMs: 20, timeoutMs: 5_000, sleep }),
    health: noHealth,
    policy: () => readPolicy(dirs),
    wireAddress: null,
    downloadRetryMs: 50,
    ...over,
  };
  return rt;
}


/** A goal state moved to another server epoch (a server restored from a backup starts a new one). */
export const inEpoch = (g: GoalState, epoch: string): GoalState => ({ ...g, epoch });

/** The message of a status report's goal state aggregate (why a goal state was refused), or ''. */
export const gsMessage = (r: StatusReport | undefined): string =>
  r?.aggregateStatus.vmArtifactsAggregateStatus.goalStateAggregateStatus.formattedMessage.message ?? '';
