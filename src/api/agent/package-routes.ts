/**
 * Packages: uploaded by a publisher with the signature document `phasewise package sign` wrote (the
 * server never holds a publisher's key), served to enrolled agents with Range requests.
 *
 *   PUT  /phasewise/publishers/{pub}/extensionTypes/{type}/versions/{v}/package   body: the zip
 *        (application/zip or application/octet-stream); header X-Phasewise-Package-Signature: the
 *        signature document (JSON, base64-encoded). 201 new, 200 the same again, 409 different.
 *   GET  /phasewise/publishers/{pub}/extensionTypes/{type}/versions/{v}/package   the record
 *   GET|HEAD /v1/packages/{sha256}   the bytes (mTLS), ETag "<sha256>", Range → 206 / 416
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isVersion } from '../../model/version.js';
import { LIMITS } from '../../protocol/agent-wire.js';
import { KEY_ID_PATTERN } from '../../protocol/package-signature.js';
import type { ArmContext } from '../arm/context.js';
import { baseUrlOf, writer } from '../arm/context.js';
import { ArmError, badRequest, conflict, invalidParameter, notFound } from '../arm/errors.js';
import { parseBody } from '../arm/validation.js';
import { agentServices, authenticateAgent } from './mtls.js';
import type { PackageRecord } from './package-store.js';
import { PackageTooLarge } from './package-store.js';

export const SIGNATURE_HEADER = 'x-phasewise-package-signature';

/** The signature document (`FILE.sig.json`): the signed statement's fields and the signature. */
export const signatureDocSchema = z.object({
  name: z.string().min(1).max(256),
  version: z.string().min(1).max(64),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits'),
  size: z.number().int().min(0),
  signature: z.object({
    alg: z.literal('ed25519'),
    keyId: z.string().regex(KEY_ID_PATTERN, 'letters, digits, dot, dash, underscore; at most 64'),
    sig: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'expected a base64 Ed25519 signature (64 bytes)'),
  }).strict(),
}).strict();
export type SignatureDoc = z.infer<typeof signatureDocSchema>;

export function packageRecordView(rec: PackageRecord, base: string): Record<string, unknown> {
  return { sha256: rec.sha256, size: rec.size, signature: rec.signature, uploadedAt: new Date(rec.uploadedAtMs).toISOString(), uri: `${base}/v1/packages/${rec.sha256}` };
}

export function registerPackageRoutes(app: FastifyInstance, ctx: ArmContext): void {
  const path = '/phasewise/publishers/:publisher/extensionTypes/:type/versions/:version/package';

  app.put(path, { bodyLimit: LIMITS.packageBytes }, async (req, reply) => {
    writer(req, 'Phasewise/publishers/extensionTypes/versions/package/write', 'publisher');
    const svc = agentServices(ctx);
    const { publisher, type, version } = req.params as { publisher: string; type: string; version: string };
    if (!isVersion(version) || !/^\d+(\.\d+){3}$/.test(version)) throw invalidParameter('version', `'${version}': expected a four-part version such as 1.31.0.0`);
    const t = ctx.engine.state.catalog.getType(publisher, type);
    if (!t) throw notFound('ArtifactNotFound', `The extension type '${publisher}.${type}' is not in the catalog; register it first.`);
    const body = req.body as Readable | undefined;
    if (!body || typeof (body as Readable).pipe !== 'function') {
      throw new ArmError(415, 'UnsupportedMediaType', 'The package must be the request body, as application/zip or application/octet-stream.');
    }
    const length = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(length) && length > LIMITS.packageBytes) throw new ArmError(413, 'PackageTooLarge', `The package is ${length} bytes; at most ${LIMITS.packageBytes} are accepted.`);
    const doc = signatureDoc(req.headers[SIGNATURE_HEADER]);
    const name = `${t.publisher}.${t.type}`;
    if (doc.name !== name) {
      throw badRequest('PackageSignatureMismatch', `The signature document names '${doc.name}', but this is ${name} (the name is part of what is signed; sign with --name ${name}).`, 'name');
    }
    if (doc.version !== version) throw badRequest('PackageSignatureMismatch', `The signature document is for version ${doc.version}, not ${version}.`, 'version');
    const key = `extension:${name}`.toLowerCase();
    const existing = svc.packages.get(key, version);
    if (existing && existing.sha256 !== doc.sha256) throw packageConflict(name, version, existing);
    let received: { tmp: string; sha256: string; size: number };
    try {
      received = await svc.packages.receive(body, LIMITS.packageBytes);
    } catch (err) {
      if (err instanceof PackageTooLarge) throw new ArmError(413, 'PackageTooLarge', `The package is larger than ${LIMITS.packageBytes} bytes.`);
      throw err;
    }
    const refuse = (e: ArmError) => {
      svc.packages.discard(received.tmp);
      return e;
    };
    if (received.sha256 !== doc.sha256) {
      const why = `The uploaded bytes have sha256 ${received.sha256}, but the signature document says ${doc.sha256}: the package or the document was changed after signing.`;
      throw refuse(badRequest('PackageSignatureMismatch', why, 'sha256'));
    }
    if (received.size !== doc.size) throw refuse(badRequest('PackageSignatureMismatch', `The uploaded bytes are ${received.size} long, but the signature document says ${doc.size}.`, 'size'));
    const published = t.versions.find((v) => v.version === version);
    if (published?.digest && published.digest !== `sha256:${received.sha256}`) {
      throw refuse(conflict('DigestMismatch', `Version ${version} of ${name} was published with digest ${published.digest}; this package is sha256:${received.sha256}.`));
    }
    const base = baseUrlOf(ctx, req);
    // Read the record again: another upload of this version may have been kept while this body streamed in.
    const stored = svc.packages.get(key, version);
    if (stored) {
      svc.packages.discard(received.tmp);
      return reply.status(200).send({ publisher: t.publisher, type: t.type, version, package: packageRecordView(sameOrConflict(name, version, stored, doc), base) });
    }
    const rec: PackageRecord = { artifactKey: key, version, sha256: received.sha256, size: received.size, signature: doc.signature, uploadedAtMs: svc.wallNow() };
    if (svc.replicateFile) {
      // The file where every replica finds it first: a record whose file another leader lacks would serve nothing.
      try {
        await svc.replicateFile(received.tmp, received.sha256);
      } catch (err) {
        svc.packages.discard(received.tmp);
        throw new ArmError(503, 'ServiceUnavailable', `The package could not be stored for every replica (${(err as Error).message}); nothing was kept; upload it again.`);
      }
    }
    const raced = svc.packages.get(key, version); // kept by another upload during the replication above
    if (raced) {
      svc.packages.discard(received.tmp);
      return reply.status(200).send({ publisher: t.publisher, type: t.type, version, package: packageRecordView(sameOrConflict(name, version, raced, doc), base) });
    }
    svc.packages.keep(received.tmp, rec);
    svc.goalStates.invalidateAll();
    return reply.status(201).send({ publisher: t.publisher, type: t.type, version, package: packageRecordView(rec, base) });
  });

  app.get(path, async (req) => {
    const svc = agentServices(ctx);
    const { publisher, type, version } = req.params as { publisher: string; type: string; version: string };
    const rec = svc.packages.get(`extension:${publisher}.${type}`, version);
    if (!rec) throw notFound('PackageNotFound', `No package is uploaded for ${publisher}.${type} ${version}.`);
    return { publisher, type, version, package: packageRecordView(rec, baseUrlOf(ctx, req)) };
  });

  app.route({ method: ['GET', 'HEAD'], url: '/v1/packages/:sha256', exposeHeadRoute: false, handler: async (req, reply) => servePackage(ctx, req, reply) });
}

function servePackage(ctx: ArmContext, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  authenticateAgent(ctx, req);
  const { sha256 } = req.params as { sha256: string };
  const file = agentServices(ctx).packages.file(sha256.toLowerCase());
  if (!file) throw notFound('PackageNotFound', `No package with sha256 ${sha256}.`);
  const etag = `"${sha256.toLowerCase()}"`;
  reply.header('etag', etag).header('accept-ranges', 'bytes').header('content-type', 'application/zip').header('cache-control', 'private, max-age=31536000, immutable');
  if (req.headers['if-none-match'] === etag) return reply.status(304).send();
  const head = req.method === 'HEAD';
  const ifRange = req.headers['if-range'];
  const range = typeof req.headers.range === 'string' && (ifRange === undefined || ifRange === etag) ? parseRange(req.headers.range, file.size) : null;
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${file.size}`);
    throw new ArmError(416, 'RangeNotSatisfiable', `The range '${String(req.headers.range)}' is outside the package (${file.size} bytes).`);
  }
  if (range) {
    reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${file.size}`).header('content-length', String(range.end - range.start + 1));
    return head ? reply.send() : reply.send(createReadStream(file.path, { start: range.start, end: range.end }));
  }
  reply.status(200).header('content-length', String(file.size));
  return head ? reply.send() : reply.send(createReadStream(file.path));
}

/** One `bytes=` range (first-last, first-, -suffix); several ranges are answered whole (RFC 9110 allows it). */
export function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return null;
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { start, end };
}

function signatureDoc(header: string | string[] | undefined): SignatureDoc {
  if (typeof header !== 'string' || header === '') {
    const why = `The ${SIGNATURE_HEADER} header must carry the signature document (the .sig.json of 'phasewise package sign', base64-encoded).`;
    throw badRequest('MissingPackageSignature', why, SIGNATURE_HEADER);
  }
  if (header.length > 8192) throw badRequest('InvalidPackageSignature', `The ${SIGNATURE_HEADER} header is too long.`, SIGNATURE_HEADER);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    throw badRequest('InvalidPackageSignature', `The ${SIGNATURE_HEADER} header is not base64-encoded JSON.`, SIGNATURE_HEADER);
  }
  try {
    return parseBody(signatureDocSchema, parsed);
  } catch (err) {
    if (err instanceof ArmError) throw new ArmError(400, 'InvalidPackageSignature', `signature document: ${err.message}`, err.target);
    throw err;
  }
}

/** An upload of a version that has a package: the same bytes and signature are that record (200), else 409. */
function sameOrConflict(name: string, version: string, stored: PackageRecord, doc: SignatureDoc): PackageRecord {
  const same = stored.sha256 === doc.sha256 && stored.signature.sig === doc.signature.sig && stored.signature.keyId === doc.signature.keyId;
  if (!same) throw packageConflict(name, version, stored);
  return stored;
}

function packageConflict(name: string, version: string, existing: PackageRecord): ArmError {
  const was = `sha256 ${existing.sha256}, key ${existing.signature.keyId}`;
  return conflict('PackageAlreadyUploaded', `${name} ${version} already has a package (${was}); packages are immutable: publish a new version instead.`);
}

