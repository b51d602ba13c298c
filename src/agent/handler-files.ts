/**
 * The files the agent exchanges with a handler (agent-protocol §2): it writes HandlerEnvironment.json
 * and `config/<seq>.settings`; it reads `status/<seq>.status` and `heartbeat.log` with WALinuxAgent's
 * limits (128 KiB read, message cut to 1 KiB and substatus fields to 10 KiB over it; missing =
 * transitioning; malformed = error 1012).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LIMITS } from '../protocol/agent-wire.js';
import type { GoalStateExtension, HandlerStatusBody } from '../protocol/agent-wire.js';
import { NotRegularFile, readRegularFile, writeFileAtomic, writeJsonAtomic } from './atomic-file.js';
import { handlerLogDir } from './layout.js';
import type { AgentDirs } from './layout.js';

export function writeHandlerEnvironment(dirs: AgentDirs, name: string, baseDir: string): void {
  const logFolder = handlerLogDir(dirs, name);
  const eventsFolder = join(logFolder, 'events');
  mkdirSync(eventsFolder, { recursive: true, mode: 0o700 });
  mkdirSync(join(baseDir, 'config'), { recursive: true, mode: 0o700 });
  mkdirSync(join(baseDir, 'status'), { recursive: true, mode: 0o700 });
  const env = [
    {
      name,
      version: 1.0,
      handlerEnvironment: {
        logFolder,
        configFolder: join(baseDir, 'config'),
        statusFolder: join(baseDir, 'status'),
        heartbeatFile: join(baseDir, 'heartbeat.log'),
        eventsFolder,
        eventsFolder_preview: eventsFolder,
      },
    },
  ];
  writeJsonAtomic(join(baseDir, 'HandlerEnvironment.json'), env, 0o644);
}

/** `config/<seq>.settings` in the runtimeSettings shape; protectedSettings stays the CMS ciphertext. */
export function writeSettings(baseDir: string, ext: GoalStateExtension): void {
  const s = ext.settings;
  const empty = s.publicSettings === null && s.protectedSettings === null;
  const doc = empty
    ? ''
    : JSON.stringify({
        runtimeSettings: [
          {
            handlerSettings: {
              publicSettings: s.publicSettings,
              protectedSettings: s.protectedSettings,
              protectedSettingsCertThumbprint: s.protectedSettingsCertThumbprint,
            },
          },
        ],
      });
  writeFileAtomic(join(baseDir, 'config', `${ext.settingsSeqNo}.settings`), doc, 0o600);
}

export interface ReadStatus {
  body: HandlerStatusBody;
  /** The file's mtime (ms), or null when there is no file. */
  mtimeMs: number | null;
}

const MESSAGE_CUT = 1024;
const SUBSTATUS_CUT = 10 * 1024;
const STATUSES = new Set(['transitioning', 'error', 'success', 'warning']);

export const isTerminal = (s: HandlerStatusBody['status']): boolean => s === 'success' || s === 'error';

/** A handler's own file, read bounded; a symlink is not followed, a FIFO or device refused (NotRegularFile). */
const readBounded = (path: string, max: number) => readRegularFile(path, max, false);

const cut = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}…` : s);

function formatted(v: unknown, limit: number): { lang: string; message: string } | undefined {
  if (v === undefined || v === null) return undefined;
  const f = v as { lang?: unknown; message?: unknown };
  if (typeof f !== 'object' || typeof f.message !== 'string') throw new Error('formattedMessage needs lang and message');
  return { lang: typeof f.lang === 'string' ? cut(f.lang, 16) : 'en-US', message: cut(f.message, limit) };
}

/** Shape of `[0].status`, bounded; throws on a malformed document. */
export function parseStatusDocument(raw: unknown, trimmed: boolean): HandlerStatusBody {
  const first = Array.isArray(raw) ? (raw[0] as { status?: Record<string, unknown> } | undefined) : undefined;
  const st = first?.status;
  if (!st || typeof st !== 'object' || typeof st.status !== 'string') throw new Error('the status file needs [0].status.status');
  const msgLimit = trimmed ? MESSAGE_CUT : LIMITS.handlerStatusBytes;
  const subLimit = trimmed ? SUBSTATUS_CUT : LIMITS.handlerStatusBytes;
  // With 32 substatus of at most 10 KiB after trimming, a trimmed report stays bounded.
  const body: HandlerStatusBody = {
    status: STATUSES.has(st.status) ? (st.status as HandlerStatusBody['status']) : 'error',
    code: typeof st.code === 'number' && Number.isInteger(st.code) ? st.code : 0,
  };
  if (typeof st.name === 'string') body.name = cut(st.name, 256);
  if (typeof st.operation === 'string') body.operation = cut(st.operation, 64);
  if (typeof st.configurationAppliedTime === 'string') body.configurationAppliedTime = cut(st.configurationAppliedTime, 64);
  const fm = formatted(st.formattedMessage, msgLimit);
  if (fm) body.formattedMessage = fm;
  if (Array.isArray(st.substatus)) {
    body.substatus = st.substatus
      .filter((s): s is Record<string, unknown> => s !== null && typeof s === 'object')
      .slice(0, 32)
      .map((s) => {
        const out: NonNullable<HandlerStatusBody['substatus']>[number] = { status: typeof s.status === 'string' ? cut(s.status, 32) : 'error' };
        if (typeof s.name === 'string') out.name = cut(s.name, 256);
        if (typeof s.code === 'number') out.code = s.code;
        const sfm = formatted(s.formattedMessage, subLimit);
        if (sfm) out.formattedMessage = sfm;
        return out;
      });
  }
  return body;
}

const invalidBody = (seq: number, why: string): HandlerStatusBody => ({
  status: 'error',
  code: 1012,
  formattedMessage: { lang: 'en-US', message: `the handler's status file status/${seq}.status is invalid: ${why}` },
});

/** Status files up to this size are parsed (and trimmed when over 128 KiB); larger ones are error 1012. */
export const STATUS_FILE_HARD_LIMIT = 1024 * 1024;

/**
 * The handler's status for `seq`. Over 128 KiB, WALinuxAgent parses the file and cuts the message to
 * 1 KiB and substatus messages to 10 KiB; we do the same up to 1 MiB and refuse larger files (1012).
 */
export function readHandlerStatus(baseDir: string, seq: number): ReadStatus {
  const path = join(baseDir, 'status', `${seq}.status`);
  let file: { text: string; size: number; mtimeMs: number };
  try {
    file = readBounded(path, STATUS_FILE_HARD_LIMIT);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { body: { status: 'transitioning', code: 0 }, mtimeMs: null };
    if (err instanceof NotRegularFile) return { body: invalidBody(seq, err.message), mtimeMs: null };
    return { body: { status: 'error', code: -1, formattedMessage: { lang: 'en-US', message: `cannot read the status file: ${(err as Error).message}` } }, mtimeMs: null };
  }
  const invalid = (why: string): ReadStatus => ({ body: invalidBody(seq, why), mtimeMs: file.mtimeMs });
  if (file.size > STATUS_FILE_HARD_LIMIT) return invalid(`it is ${file.size} bytes, over the ${STATUS_FILE_HARD_LIMIT}-byte limit`);
  try {
    return { body: parseStatusDocument(JSON.parse(file.text), file.size > LIMITS.handlerStatusBytes), mtimeMs: file.mtimeMs };
  } catch (err) {
    return invalid(cut((err as Error).message, 200));
  }
}

/**
 * Copies a handler's small file (mrseq, a status file) to the new version's folder: only a regular file
 * up to STATUS_FILE_HARD_LIMIT is copied; a symlink, FIFO, device or a larger file is left behind (the
 * new version starts without it), so an upgrade neither blocks, nor copies /etc/shadow, nor doubles a huge file.
 */
export function copyHandlerFile(from: string, to: string): boolean {
  let file: { text: string; size: number };
  try {
    file = readRegularFile(from, STATUS_FILE_HARD_LIMIT, false);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof NotRegularFile) return false;
    throw err;
  }
  if (file.size > STATUS_FILE_HARD_LIMIT) return false;
  writeFileAtomic(to, file.text, 0o600);
  return true;
}

export interface Heartbeat {
  status: 'Ready' | 'NotReady' | 'Unresponsive';
  code: number;
  message: string;
}

export const HEARTBEAT_STALE_MS = 600_000;

/** `heartbeat.log` of a handler with reportHeartbeat: stale over 600 s = Unresponsive (§2). */
export function readHeartbeat(baseDir: string, nowMs: number): Heartbeat {
  let file: { text: string; size: number; mtimeMs: number };
  try {
    file = readBounded(join(baseDir, 'heartbeat.log'), 16 * 1024);
  } catch (err) {
    if (err instanceof NotRegularFile) return { status: 'NotReady', code: -1, message: `the heartbeat file is invalid: ${err.message}` };
    return { status: 'NotReady', code: -1, message: 'Failed to get heart beat file' };
  }
  if (nowMs - file.mtimeMs > HEARTBEAT_STALE_MS) return { status: 'Unresponsive', code: -1, message: 'The handler has not written its heartbeat for more than 10 minutes' };
  try {
    const hb = (JSON.parse(file.text) as Array<{ heartbeat?: { status?: string; code?: number; formattedMessage?: { message?: string } } }>)[0]?.heartbeat;
    if (!hb || typeof hb.status !== 'string') throw new Error('no [0].heartbeat.status');
    return {
      status: hb.status.toLowerCase() === 'ready' ? 'Ready' : 'NotReady',
      code: typeof hb.code === 'number' ? hb.code : 0,
      message: cut(typeof hb.formattedMessage?.message === 'string' ? hb.formattedMessage.message : '', MESSAGE_CUT),
    };
  } catch (err) {
    return { status: 'NotReady', code: -1, message: `the heartbeat file is invalid: ${cut((err as Error).message, 200)}` };
  }
}
