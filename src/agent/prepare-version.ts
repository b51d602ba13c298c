/** Pieces both the forward sequence and the rollback use: unpacking a version, closing with an outcome. */
import { writeHandlerEnvironment, writeSettings } from './handler-files.js';
import { installManifest, readManifest } from './handler-manifest.js';
import type { HandlerManifest } from './handler-manifest.js';
import type { OperationJournal, OutcomeRecord } from './journal.js';
import { handlerDir } from './layout.js';
import { once } from './operation-context.js';
import type { AgentRuntime } from './operation-context.js';
import { unpackPackage } from './safe-unzip.js';

export function outcome(op: OperationJournal, rt: AgentRuntime, o: Omit<OutcomeRecord, 'operationId' | 'finishedAt'>): OutcomeRecord {
  return { operationId: op.operationId, finishedAt: new Date(rt.now()).toISOString(), ...o };
}

/** Unpacks a checked zip into `<lib>/<name>-<version>/` and writes what the handler reads (§3.2 #3–4). */
export async function prepareVersion(rt: AgentRuntime, op: OperationJournal, version: string, zip: string, tag = ''): Promise<HandlerManifest> {
  const ext = op.ext;
  const base = handlerDir(rt.dirs, ext.name, version);
  await once(rt, op, `${tag}unpack@${version}`, async () => {
    await unpackPackage(zip, base);
    installManifest(base);
    writeHandlerEnvironment(rt.dirs, ext.name, base);
  });
  await once(rt, op, `${tag}settings@${version}`, () => writeSettings(base, ext));
  return readManifest(base);
}
