/**
 * Streams a package to a partial file under `<lib>/.agent/downloads/`: never more than `size` bytes
 * (the transfer is cut as soon as it goes over), resumed with `Range` after a cut connection, URIs
 * tried in order, transient failures retried with backoff. What comes out is checked by package-verify.
 */
import { createWriteStream, existsSync, rmSync, statSync, truncateSync } from 'node:fs';
import https from 'node:https';
import type { PackageReference } from '../protocol/agent-wire.js';

/** The package could not be fetched now (network, 5xx): the operation waits and tries again later. */
export class DownloadError extends Error {}
/** The server sent what cannot be this package (more bytes than its size): refused, not retried. */
export class DownloadRejected extends Error {}

export interface DownloadOptions {
  agent?: https.Agent;
  ca?: string[];
  attempts: number;
  backoffMs: number;
  /** Longest silence in a transfer, and the allowance on top of the transfer time at `minBytesPerSecond`. */
  timeoutMs: number;
  /** Slowest transfer accepted: an attempt ends once it is late by this rate (it resumes at the next one). */
  minBytesPerSecond?: number;
  sleep: (ms: number) => Promise<void>;
}

/** 32 KiB/s: the largest package (512 MiB) still gets about 4.5 hours per attempt. */
export const MIN_BYTES_PER_SECOND = 32 * 1024;

export const DEFAULT_DOWNLOAD: Omit<DownloadOptions, 'sleep'> = { attempts: 5, backoffMs: 500, timeoutMs: 60_000, minBytesPerSecond: MIN_BYTES_PER_SECOND };

type Attempt = { done: true } | { done: false; retry: boolean; message: string };

function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/** One GET from where the partial file ends; appends to it. */
function attempt(uri: string, dest: string, size: number, opts: DownloadOptions): Promise<Attempt> {
  if (!/^https:\/\//i.test(uri)) return Promise.resolve({ done: false, retry: false, message: `only https URIs are fetched, not ${uri.slice(0, 100)}` });
  return new Promise((resolve, reject) => {
    let offset = sizeOf(dest);
    let tooSlow: string | null = null;
    if (offset > size) {
      truncateSync(dest, 0);
      offset = 0;
    }
    if (offset === size) {
      resolve({ done: true });
      return;
    }
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const req = https.get(uri, { headers, agent: opts.agent, ...(opts.agent ? {} : { ca: opts.ca }) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status === 200 && offset > 0) {
        truncateSync(dest, 0); // the server ignored Range: start over
        offset = 0;
      } else if (status === 206) {
        const m = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
        if (!m || Number(m[1]) !== offset) {
          res.resume();
          truncateSync(dest, 0);
          resolve({ done: false, retry: true, message: `the server resumed at the wrong offset (${res.headers['content-range'] ?? 'no Content-Range'})` });
          return;
        }
      } else if (status !== 200) {
        res.resume();
        resolve({ done: false, retry: status >= 500 || status === 429 || status === 416, message: `HTTP ${status} from ${new URL(uri).pathname}` });
        if (status === 416) truncateSync(dest, 0);
        return;
      }
      const out = createWriteStream(dest, { flags: offset > 0 ? 'a' : 'w', mode: 0o600 });
      let written = offset;
      let over = false;
      let finished = false;
      // A full disk, a read-only or vanished folder: not the server's fault, and not worth another try
      // within this pass (the operation stays open and is retried later). Without a listener the
      // stream's error would end the agent.
      out.on('error', (err) => {
        if (over) return;
        finished = true; // also when it failed while flushing at the end: this answer comes first
        req.destroy();
        resolve({ done: false, retry: false, message: `cannot write the package to ${dest}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
      });
      res.on('data', (chunk: Buffer) => {
        written += chunk.length;
        if (written > size && !over) {
          over = true;
          req.destroy();
          out.destroy();
          rmSync(dest, { force: true });
          reject(new DownloadRejected(`the server sent more than the package's ${size} bytes`));
          return;
        }
        if (!over && !out.write(chunk)) res.pause();
      });
      out.on('drain', () => res.resume());
      const finish = (message: string | null) => {
        if (over || finished) return;
        finished = true;
        out.end(() => {
          if (message === null && sizeOf(dest) === size) return resolve({ done: true });
          resolve({ done: false, retry: true, message: tooSlow ?? message ?? `the transfer ended after ${sizeOf(dest)} of ${size} bytes` });
        });
      };
      res.on('end', () => finish(null));
      res.on('error', (err) => finish(`the transfer broke off: ${err.message}`));
      res.on('aborted', () => finish('the server cut the transfer'));
    });
    req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`no data for ${opts.timeoutMs} ms`)));
    // A byte now and then beats the silence timeout: the attempt as a whole is bounded too, by a slowest
    // sane rate. What arrived stays in the partial file, and the next attempt resumes from there.
    const rate = opts.minBytesPerSecond ?? MIN_BYTES_PER_SECOND;
    const allowedMs = opts.timeoutMs + Math.ceil(((size - offset) / rate) * 1000);
    const deadline = setTimeout(() => {
      const got = sizeOf(dest) - offset;
      tooSlow = `the transfer is slower than ${rate} bytes/s (${got} of ${size - offset} bytes in ${Math.round(allowedMs / 1000)} s)`;
      req.destroy(new Error(tooSlow));
    }, allowedMs);
    req.on('close', () => clearTimeout(deadline));
    req.on('error', (err) => resolve({ done: false, retry: true, message: tooSlow ?? `cannot download from ${new URL(uri).host}: ${err.message}` }));
  });
}

/** Fetches `ref` into `dest` (kept between calls so a later call resumes). Throws DownloadError/Rejected. */
export async function downloadPackage(ref: PackageReference, dest: string, opts: DownloadOptions): Promise<void> {
  let last = 'no URI to download from';
  for (let i = 0; i < opts.attempts; i++) {
    for (const uri of ref.uris) {
      const r = await attempt(uri, dest, ref.size, opts);
      if (r.done) return;
      last = r.message;
      if (!r.retry) {
        rmSync(dest, { force: true });
        throw new DownloadError(`cannot download the package: ${last}`);
      }
    }
    const delay = opts.backoffMs * 2 ** i;
    await opts.sleep(delay / 2 + Math.random() * (delay / 2));
  }
  throw new DownloadError(`cannot download the package after ${opts.attempts} attempts: ${last}`);
}
