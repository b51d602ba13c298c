/** Real `phasewise agent` processes against the stand-in control plane, bounded and cleaned up. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScheduledEvent, StatusReport } from '../../src/protocol/agent-wire.js';
import { HANDLER, sleep } from './agent-kit.js';
import type { tempDirs } from './agent-kit.js';
import { cli, CLI, ROOT } from './cli.js';
import { ControlPlane } from './control-plane.js';

export type Dirs = ReturnType<typeof tempDirs>;
export type AgentProcess = ChildProcess & { output: () => string };
export const caFile = join(ROOT, 'test/fixtures/tls/cert.pem');
export const dirArgs = (d: Dirs) => ['--lib-dir', d.lib, '--config-dir', d.config];

export class AgentRig {
  readonly cp = new ControlPlane();
  private readonly children: ChildProcess[] = [];

  start(): Promise<void> {
    return this.cp.start();
  }

  async stop(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await this.cp.stop();
  }

  async enroll(d: Dirs): Promise<string> {
    const r = await cli('agent', 'connect', '--server', this.cp.url, '--enrollment-token', this.cp.token, '--ca-cert', caFile, '--name', 'm1', ...dirArgs(d));
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(readFileSync(join(d.lib, '.agent/enrollment.json'), 'utf8')).agentId as string;
  }

  /** `agent run` with timeouts scaled by 0.02 and no NODE_EXTRA_CA_CERTS (trust comes from --ca-cert). */
  startAgent(d: Dirs, extraArgs: string[] = []): AgentProcess {
    const env: Record<string, string | undefined> = { ...process.env, PHASEWISE_AGENT_TIMEOUT_SCALE: '0.02' };
    delete env.NODE_EXTRA_CA_CERTS;
    // A free IMDS port unless the test names one (an option given twice is a usage error).
    const imds = extraArgs.includes('--imds-port') ? [] : ['--imds-port', '0'];
    const args = [CLI, 'agent', 'run', ...dirArgs(d), '--log-dir', d.log, ...imds, ...extraArgs];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    return Object.assign(child, { output: () => out });
  }
}

export async function until<T>(what: string, fn: () => T | undefined | null | false, timeoutMs = 20_000, agent?: { output: () => string }): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}${agent ? `\nagent output:\n${agent.output()}` : ''}`);
    await sleep(50);
  }
}

export const outcomeOf = (r: StatusReport | undefined, opId: string) => {
  const last = r?.agentState[HANDLER]?.lastOperation;
  return last?.operationId === opId ? last : undefined;
};

export function reimage(EventId: string): ScheduledEvent {
  const r = { EventType: 'Reimage', ResourceType: 'VirtualMachine', EventStatus: 'Scheduled', NotBefore: '' } as const;
  return { EventId, ...r, Resources: ['m1'], Description: 'OS image upgrade', EventSource: 'Platform', DurationInSeconds: -1 };
}

export function killed(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}
