/**
 * `phasewise agent connect`: make the machine's key pair, send its certificate to `POST /v1/enroll`
 * with the enrollment token, and keep what the server issues under `<lib>/.agent/`.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { hostname, release, type } from 'node:os';
import { join } from 'node:path';
import type { EnrollRequest, EnrollResponse } from '../protocol/agent-wire.js';
import { readJsonFile, readRegularFile, writeFileAtomic, writeJsonAtomic } from './atomic-file.js';
import { errorMessageOf, request, trustedCas } from './http-client.js';
import { generateIdentity, readIdentity, writeIdentity } from './identity.js';
import type { MachineIdentity } from './identity.js';
import { agentDir, enrollmentPath } from './layout.js';
import type { AgentDirs } from './layout.js';

/** A CA certificate (or a short chain) is a few KiB. */
const MAX_CA_CERT_BYTES = 1024 * 1024;

export const AGENT_VERSION = '0.1.0';

/** What the agent keeps after enrolling (`<lib>/.agent/enrollment.json`). */
export interface Enrollment {
  serverUrl: string;
  agentId: string;
  resourceId: string;
  thumbprint: string;
  pollIntervalSeconds: number;
  statusIntervalSeconds: number;
  enrolledAt: string;
}

export interface ConnectOptions {
  server: string;
  token: string;
  resourceId?: string;
  name?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  location?: string;
  caCertFile?: string;
  force?: boolean;
}

/** A failure the user can act on; the CLI prints the message alone and exits 1. */
export class EnrollError extends Error {}

export function readEnrollment(dirs: AgentDirs): Enrollment | undefined {
  const raw = readJsonFile(enrollmentPath(dirs), 64 * 1024) as Enrollment | undefined;
  if (raw === undefined) return undefined;
  if (typeof raw.agentId !== 'string' || typeof raw.serverUrl !== 'string' || typeof raw.thumbprint !== 'string') {
    throw new EnrollError(`${enrollmentPath(dirs)} is damaged; enroll again with --force`);
  }
  return raw;
}

export interface AgentCredentials {
  enrollment: Enrollment;
  identity: MachineIdentity;
  clientCertPem: string;
  /** CAs trusted for the server's TLS certificate. */
  ca: string[];
}

export function loadCredentials(dirs: AgentDirs): AgentCredentials {
  const enrollment = readEnrollment(dirs);
  if (!enrollment) throw new EnrollError(`this machine is not enrolled (no ${enrollmentPath(dirs)}); run \`phasewise agent connect\` first`);
  const identity = readIdentity(dirs.lib, enrollment.thumbprint);
  const dir = agentDir(dirs);
  const clientCertPem = readFileSync(join(dir, 'client.crt'), 'utf8');
  checkCredentialPair(join(dir, 'client.crt'), clientCertPem, join(dirs.lib, `${enrollment.thumbprint}.prv`), identity.privateKeyPem);
  const extra = [join(dir, 'server-ca.pem'), join(dir, 'ca.crt')].filter(existsSync).map((f) => readFileSync(f, 'utf8'));
  return { enrollment, identity, clientCertPem, ca: trustedCas(extra) };
}

/**
 * The client certificate must be for the machine key: `agent connect --force` cut short between its writes
 * (power loss) left a new client.crt beside the old key, and every request then failed inside TLS (the agent
 * ended 30 s later on a timer that had no request to cut). Said once, with what to do.
 */
function checkCredentialPair(certFile: string, certPem: string, keyFile: string, keyPem: string): void {
  const again = 'enroll again with `phasewise agent connect --force`';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new EnrollError(`the client certificate ${certFile} cannot be read (${(err as Error).message}); ${again}`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new EnrollError(`the machine key ${keyFile} cannot be read (${(err as Error).message}); ${again}`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new EnrollError(`the client certificate ${certFile} is not for the machine key ${keyFile} (an \`agent connect\` cut short, or files of two enrollments); ${again}`);
  }
}

function validateServerUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new EnrollError(`--server ${JSON.stringify(server)} is not a URL (expected https://host:port)`);
  }
  if (url.protocol !== 'https:') throw new EnrollError(`--server must be an https:// URL, not ${url.protocol}//`);
  return url;
}

function enrollRequest(opts: ConnectOptions, identity: MachineIdentity): EnrollRequest {
  const body: EnrollRequest = {
    certificatePem: identity.certificatePem,
    agentVersion: AGENT_VERSION,
    osName: type(),
    osVersion: release(),
    computerName: hostname(),
  };
  if (opts.resourceId) body.resourceId = opts.resourceId;
  if (opts.name) body.name = opts.name;
  if (opts.subscriptionId) body.subscriptionId = opts.subscriptionId;
  if (opts.resourceGroup) body.resourceGroup = opts.resourceGroup;
  if (opts.location) body.location = opts.location;
  return body;
}

function parseEnrollResponse(raw: Buffer): EnrollResponse {
  let r: EnrollResponse;
  try {
    r = JSON.parse(raw.toString('utf8')) as EnrollResponse;
  } catch {
    throw new EnrollError('the server answered the enrollment with something that is not JSON');
  }
  const fields = ['agentId', 'resourceId', 'clientCertificatePem', 'caCertificatePem'] as const;
  for (const f of fields) if (typeof r?.[f] !== 'string' || r[f].length === 0) throw new EnrollError(`the enrollment answer lacks ${f}`);
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(r.agentId)) throw new EnrollError(`the server issued an agent id that cannot name a path: ${r.agentId.slice(0, 80)}`);
  // Kept and used as the waits before any goal state: 0, a negative or a text made the agent poll without
  // pause, and past 24.8 days Node's timer fires at once too. The goal state's own bounds.
  for (const f of ['pollIntervalSeconds', 'statusIntervalSeconds'] as const) {
    const v = r[f] as unknown;
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 3600)) {
      throw new EnrollError(`the enrollment answer has ${f} ${JSON.stringify(v)?.slice(0, 40)}; expected a whole number of seconds from 1 to 3600`);
    }
  }
  return r;
}

/**
 * The issued certificates, checked before anything is kept: a text that is not a certificate, or a client
 * certificate for another key, was kept as an enrollment, and every request after it failed in TLS.
 */
function checkIssuedCertificates(r: EnrollResponse, identity: MachineIdentity): void {
  let client: X509Certificate;
  try {
    client = new X509Certificate(r.clientCertificatePem);
    new X509Certificate(r.caCertificatePem);
  } catch (err) {
    throw new EnrollError(`the enrollment answer holds a certificate that cannot be read (${(err as Error).message}); nothing was kept`);
  }
  if (!client.checkPrivateKey(createPrivateKey(identity.privateKeyPem))) {
    throw new EnrollError('the enrollment answer\'s client certificate is not for this machine\'s key; nothing was kept');
  }
}

export async function connect(dirs: AgentDirs, opts: ConnectOptions, now: Date): Promise<Enrollment> {
  const url = validateServerUrl(opts.server);
  if (!opts.force && readEnrollment(dirs)) {
    throw new EnrollError(`this machine is already enrolled (${enrollmentPath(dirs)}); use --force to enroll it again`);
  }
  let serverCa: string | undefined;
  if (opts.caCertFile) {
    let ca: { text: string; size: number };
    try {
      ca = readRegularFile(opts.caCertFile, MAX_CA_CERT_BYTES + 1); // a regular file only: /dev/zero or a FIFO never end
    } catch (err) {
      throw new EnrollError(`cannot read --ca-cert ${opts.caCertFile}: ${(err as Error).message}`);
    }
    if (ca.size > MAX_CA_CERT_BYTES) throw new EnrollError(`cannot read --ca-cert ${opts.caCertFile}: larger than ${MAX_CA_CERT_BYTES / 1024} KiB; expected a PEM certificate`);
    serverCa = ca.text;
  }
  const identity = generateIdentity(opts.name ?? hostname(), now);
  const res = await request(new URL('/v1/enroll', url).toString(), {
    method: 'POST',
    headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(enrollRequest(opts, identity)),
    ca: trustedCas(serverCa ? [serverCa] : []),
    maxBytes: 256 * 1024,
    timeoutMs: 30_000,
  }).catch((err: Error) => {
    throw new EnrollError(`enrollment failed: ${err.message}`);
  });
  if (res.status === 401 || res.status === 403) throw new EnrollError(`the server refused the enrollment token (${res.status}): ${errorMessageOf(res.body)}`);
  if (res.status !== 200 && res.status !== 201) throw new EnrollError(`enrollment failed with HTTP ${res.status}: ${errorMessageOf(res.body)}`);
  const answer = parseEnrollResponse(res.body);
  checkIssuedCertificates(answer, identity);
  // The key first, the enrollment record last: a crash in between leaves the machine "not enrolled".
  writeIdentity(dirs.lib, identity);
  const dir = agentDir(dirs);
  writeFileAtomic(join(dir, 'client.crt'), answer.clientCertificatePem, 0o600);
  writeFileAtomic(join(dir, 'ca.crt'), answer.caCertificatePem, 0o600);
  if (serverCa) writeFileAtomic(join(dir, 'server-ca.pem'), serverCa, 0o600);
  const enrollment: Enrollment = {
    serverUrl: url.origin,
    agentId: answer.agentId,
    resourceId: answer.resourceId,
    thumbprint: identity.thumbprint,
    pollIntervalSeconds: answer.pollIntervalSeconds,
    statusIntervalSeconds: answer.statusIntervalSeconds,
    enrolledAt: now.toISOString(),
  };
  writeJsonAtomic(enrollmentPath(dirs), enrollment);
  return enrollment;
}
