/**
 * `HandlerManifest.json` (agent-protocol §1): a JSON array, element [0]. Commands are paths relative to
 * the base dir (a leading `/` is stripped), run through `sh -c`. `"true"` is accepted for booleans.
 */
import { copyFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readJsonFile } from './atomic-file.js';

export type HandlerCommand = 'install' | 'enable' | 'update' | 'disable' | 'uninstall';

export interface HandlerManifest {
  commands: Record<HandlerCommand, string>;
  updateMode: 'UpdateWithInstall' | 'UpdateWithoutInstall';
  continueOnUpdateFailure: boolean;
  reportHeartbeat: boolean;
  supportsMultipleExtensions: boolean;
}

export class ManifestError extends Error {
  constructor(
    message: string,
    /** 1002 manifest missing, 1003 unparsable (WALinuxAgent's codes). */
    readonly code: 1002 | 1003,
  ) {
    super(message);
  }
}

const MAX_MANIFEST = 64 * 1024;

function bool(v: unknown): boolean {
  return v === true || (typeof v === 'string' && v.toLowerCase() === 'true');
}

export function parseManifest(raw: unknown): HandlerManifest {
  const first = Array.isArray(raw) ? (raw[0] as Record<string, unknown> | undefined) : undefined;
  const hm = first?.handlerManifest as Record<string, unknown> | undefined;
  if (!hm || typeof hm !== 'object') throw new ManifestError('HandlerManifest.json is not an array whose first element has handlerManifest', 1003);
  const commands = {} as Record<HandlerCommand, string>;
  for (const c of ['install', 'enable', 'update', 'disable', 'uninstall'] as const) {
    const v = hm[`${c}Command`];
    if (typeof v !== 'string' || v.trim() === '' || v.length > 4096) throw new ManifestError(`HandlerManifest.json lacks ${c}Command`, 1003);
    // No process can be given one ("\u0000" is valid JSON): spawn threw, and the pass failed without saying why.
    if (v.includes('\0')) throw new ManifestError(`HandlerManifest.json: ${c}Command holds a NUL byte, which no command can hold`, 1003);
    commands[c] = v.trim().replace(/^\/+/, '');
  }
  return {
    commands,
    updateMode: hm.updateMode === undefined || hm.updateMode === 'UpdateWithInstall' ? 'UpdateWithInstall' : 'UpdateWithoutInstall',
    continueOnUpdateFailure: bool(hm.continueOnUpdateFailure),
    reportHeartbeat: bool(hm.reportHeartbeat),
    supportsMultipleExtensions: bool(hm.supportsMultipleExtensions),
  };
}

/** The shallowest HandlerManifest.json under `dir` (bounded walk), relative to `dir`. */
function findManifest(dir: string, depth = 0): string | null {
  if (depth > 4) return null;
  const entries = readdirSync(dir, { withFileTypes: true }).slice(0, 1000);
  if (entries.some((e) => e.isFile() && e.name === 'HandlerManifest.json')) return join(dir, 'HandlerManifest.json');
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const found = findManifest(join(dir, e.name), depth + 1);
    if (found) return found;
  }
  return null;
}

/** Copies a deeper HandlerManifest.json to the base dir's root (§3.2 #3), then parses it. */
export function installManifest(baseDir: string): HandlerManifest {
  const rootPath = join(baseDir, 'HandlerManifest.json');
  if (!existsSync(rootPath)) {
    const found = findManifest(baseDir);
    if (!found) throw new ManifestError('the package has no HandlerManifest.json', 1002);
    if (statSync(found).size > MAX_MANIFEST) throw new ManifestError(`${relative(baseDir, found)} is larger than ${MAX_MANIFEST} bytes`, 1003);
    copyFileSync(found, rootPath);
  }
  return readManifest(baseDir);
}

export function readManifest(baseDir: string): HandlerManifest {
  let raw: unknown;
  try {
    raw = readJsonFile(join(baseDir, 'HandlerManifest.json'), MAX_MANIFEST, false); // the handler's file: no symlink, no FIFO
  } catch (err) {
    throw new ManifestError((err as Error).message, 1003);
  }
  if (raw === undefined) throw new ManifestError(`${baseDir}/HandlerManifest.json is missing`, 1002);
  return parseManifest(raw);
}
