/**
 * The Application Health extension's semantics, run by the agent itself (R21, R25; agent-protocol §5).
 * Rule: the goal state runs it when it has an enabled extension whose handler name ends with
 * `ApplicationHealthLinux` (Azure's is Microsoft.ManagedServices.ApplicationHealthLinux); its public
 * settings configure the probe. The handler package is installed like any other; the probing is ours.
 *
 *   Initializing ──N identical valid probes──▶ Healthy | Unhealthy
 *        │ grace period over, nothing committed
 *        ▼
 *   Unhealthy (tcp) | Unknown (http/https) ──N identical observations──▶ the new state
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { ApplicationHealthState, GoalStateExtension } from '../protocol/agent-wire.js';

export interface AppHealthSettings {
  protocol: 'tcp' | 'http' | 'https';
  port: number;
  requestPath: string;
  intervalInSeconds: number;
  numberOfProbes: number;
  gracePeriod: number;
}

export type ProbeResult = 'Healthy' | 'Unhealthy' | 'Unknown';

export const isAppHealthExtension = (e: GoalStateExtension): boolean => e.state === 'enabled' && /ApplicationHealthLinux$/i.test(e.name);

const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

/** The settings, or a sentence naming the field that is out of range (the ranges of §5). */
export function parseAppHealthSettings(pub: Record<string, unknown> | null): AppHealthSettings | string {
  const s = pub ?? {};
  const protocol = s.protocol;
  if (protocol !== 'tcp' && protocol !== 'http' && protocol !== 'https') return 'protocol must be tcp, http or https';
  const port = s.port === undefined ? (protocol === 'tcp' ? undefined : protocol === 'http' ? 80 : 443) : int(s.port);
  if (port === undefined || port < 1 || port > 65535) return protocol === 'tcp' && s.port === undefined ? 'port is required for tcp' : 'port must be 1-65535';
  if (protocol === 'tcp' && s.requestPath !== undefined) return 'requestPath is not allowed for tcp';
  const requestPath = s.requestPath === undefined ? '/' : s.requestPath;
  if (typeof requestPath !== 'string' || requestPath.length > 2048 || /[\r\n]/.test(requestPath)) return 'requestPath must be a path';
  // Node refuses to send any other (a space, a tab, "/é"): the probe threw, and the agent ended at every start.
  if (/[^\u0021-\u007e]/.test(requestPath)) return 'requestPath must be a URL path of printable ASCII without spaces (percent-encode the rest: %20)';
  const interval = s.intervalInSeconds === undefined ? 5 : int(s.intervalInSeconds);
  if (interval === undefined || interval < 5 || interval > 60) return 'intervalInSeconds must be 5-60';
  const probes = s.numberOfProbes === undefined ? 1 : int(s.numberOfProbes);
  if (probes === undefined || probes < 1 || probes > 24) return 'numberOfProbes must be 1-24';
  if (interval * probes > 240) return 'intervalInSeconds × numberOfProbes must be at most 240';
  const grace = s.gracePeriod === undefined ? interval * probes : int(s.gracePeriod);
  if (grace === undefined || grace < 5 || grace > 14400) return 'gracePeriod must be 5-14400';
  return { protocol, port, requestPath: requestPath.startsWith('/') ? requestPath : `/${requestPath}`, intervalInSeconds: interval, numberOfProbes: probes, gracePeriod: grace };
}

/** The state machine alone: observations in, committed state out; time is passed in. */
export class HealthStateMachine {
  private committed: ApplicationHealthState = 'Initializing';
  private run: { result: ProbeResult; count: number } | null = null;
  readonly observations: Array<{ at: number; result: ProbeResult }> = [];

  constructor(
    private readonly settings: AppHealthSettings,
    private readonly startedAt: number,
    private readonly secondMs = 1000,
  ) {}

  get state(): ApplicationHealthState {
    return this.committed;
  }

  observe(result: ProbeResult, at: number): ApplicationHealthState {
    this.observations.push({ at, result });
    if (this.observations.length > 64) this.observations.shift();
    this.run = this.run?.result === result ? { result, count: this.run.count + 1 } : { result, count: 1 };
    const n = this.settings.numberOfProbes;
    const inGrace = at - this.startedAt < this.settings.gracePeriod * this.secondMs;
    if (this.committed === 'Initializing') {
      if (result !== 'Unknown' && this.run.count >= n) this.committed = result;
      else if (!inGrace) this.committed = this.settings.protocol === 'tcp' ? 'Unhealthy' : 'Unknown';
    } else if (this.run.count >= n) {
      this.committed = result;
    }
    return this.committed;
  }

  /** The gate's reading: N probes after `sinceMs` all Healthy, or all Unhealthy once a grace period passed. */
  verdictSince(sinceMs: number, nowMs: number): 'Healthy' | 'Unhealthy' | null {
    const n = this.settings.numberOfProbes;
    const recent = this.observations.filter((o) => o.at >= sinceMs).slice(-n);
    if (recent.length < n) return null;
    if (recent.every((o) => o.result === 'Healthy')) return 'Healthy';
    const graceOver = nowMs - sinceMs >= this.settings.gracePeriod * this.secondMs;
    if (graceOver && recent.every((o) => o.result === 'Unhealthy')) return 'Unhealthy';
    return null;
  }
}

const PROBE_TIMEOUT_MS = 30_000;
const MAX_BODY = 64 * 1024;

export function probe(s: AppHealthSettings, timeoutMs: number): Promise<ProbeResult> {
  const timeout = Math.min(timeoutMs, PROBE_TIMEOUT_MS);
  if (s.protocol === 'tcp') {
    return new Promise((resolve) => {
      const sock = net.connect({ host: '127.0.0.1', port: s.port });
      const done = (r: ProbeResult) => {
        sock.destroy();
        resolve(r);
      };
      sock.setTimeout(timeout, () => done('Unhealthy'));
      sock.on('connect', () => done('Healthy'));
      sock.on('error', () => done('Unhealthy'));
    });
  }
  return new Promise((resolveOnce) => {
    // The whole probe is bounded, not only the silences: an application that answers a byte at a time
    // would otherwise hold the probe, and with it the health state (possibly Healthy), for ever.
    const deadline = setTimeout(() => {
      req.destroy();
      resolve('Unknown');
    }, timeout);
    const resolve = (r: ProbeResult) => {
      clearTimeout(deadline);
      resolveOnce(r);
    };
    const lib = s.protocol === 'https' ? https : http;
    const opts = { host: 'localhost', port: s.port, path: s.requestPath, method: 'GET', timeout, ...(s.protocol === 'https' ? { rejectUnauthorized: false } : {}) };
    let req: http.ClientRequest;
    try {
      req = lib.request(opts, (res) => onResponse(res));
    } catch {
      // A request Node will not make (a path it refuses): no answer, never a rejection that ends the agent.
      clearTimeout(deadline);
      resolveOnce('Unknown');
      return;
    }
    const onResponse = (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > MAX_BODY) req.destroy();
      });
      res.on('end', () => {
        const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300; // no redirects followed
        try {
          const state = (JSON.parse(body) as { ApplicationHealthState?: unknown }).ApplicationHealthState;
          resolve(ok && (state === 'Healthy' || state === 'Unhealthy') ? state : 'Unknown');
        } catch {
          resolve('Unknown');
        }
      });
      res.on('error', () => resolve('Unknown'));
    };
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve('Unknown'));
    req.end();
  });
}

/** Probes on a timer while the goal state runs the Application Health extension. */
export class AppHealthMonitor {
  private machine: HealthStateMachine | null = null;
  private key = '';
  private timer: NodeJS.Timeout | null = null;
  extensionName: string | null = null;
  error: string | null = null;

  constructor(
    private readonly now: () => number,
    /** Milliseconds per "second" of the settings: 1000, smaller in tests. */
    private readonly secondMs = 1000,
    private readonly onChange: () => void = () => undefined,
  ) {}

  /** Follows the goal state: starts, restarts (settings changed) or stops probing. */
  configure(extensions: GoalStateExtension[]): void {
    const ext = extensions.find(isAppHealthExtension);
    const key = ext ? JSON.stringify([ext.name, ext.settings.publicSettings]) : '';
    if (key === this.key) return;
    this.key = key;
    this.stop();
    this.extensionName = ext?.extensionName ?? null;
    this.error = null;
    this.machine = null;
    if (!ext) return;
    const s = parseAppHealthSettings(ext.settings.publicSettings);
    if (typeof s === 'string') {
      this.error = `invalid Application Health settings: ${s}`;
      return;
    }
    this.machine = new HealthStateMachine(s, this.now(), this.secondMs);
    const tick = async () => {
      const machine = this.machine;
      if (!machine) return;
      const before = machine.state;
      const result = await probe(s, s.intervalInSeconds * this.secondMs);
      if (this.machine !== machine) return;
      machine.observe(result, this.now());
      if (machine.state !== before) this.onChange();
      this.timer = setTimeout(() => void tick(), s.intervalInSeconds * this.secondMs);
    };
    void tick();
  }

  active(): boolean {
    return this.extensionName !== null;
  }

  state(): ApplicationHealthState {
    return this.machine?.state ?? 'Unknown';
  }

  verdictSince(sinceMs: number): 'Healthy' | 'Unhealthy' | null {
    if (this.error) return 'Unhealthy';
    return this.machine?.verdictSince(sinceMs, this.now()) ?? null;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.machine = null;
  }
}
