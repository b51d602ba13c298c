/**
 * What ARM documents show of an agent-managed machine: Arc's connection properties (status,
 * lastStatusChange, agentVersion, osName, agentConfiguration from the machine's own policy) and
 * extension instance views built from the handler statuses the agent reported.
 */
import type { ExtensionInstance } from '../../model/artifact.js';
import type { Machine } from '../../model/fleet.js';
import type { ArmContext } from '../arm/context.js';

export function agentProperties(ctx: ArmContext, m: Machine): Record<string, unknown> {
  const driver = ctx.agents?.driver;
  const conn = driver?.connection(m.id);
  const agent = driver?.agentOfMachine(m.id);
  if (!conn || !agent) return {};
  const r = conn.report;
  return {
    status: conn.status,
    lastStatusChange: new Date(conn.lastStatusChangeMs).toISOString(),
    agentVersion: r?.aggregateStatus.guestAgentStatus.version ?? agent.info.agentVersion,
    osName: r?.guestOSInfo.osName ?? agent.info.osName,
    osVersion: r?.guestOSInfo.osVersion ?? agent.info.osVersion,
    machineFqdn: r?.guestOSInfo.computerName ?? agent.info.computerName,
    agentConfiguration: r
      ? {
        extensionsEnabled: String(r.agentConfiguration.extensionsEnabled),
        extensionsAllowList: r.agentConfiguration.extensionsAllowList.map((name) => ({ publisher: publisherOf(name), type: typeOf(name) })),
        extensionsBlockList: r.agentConfiguration.extensionsBlockList.map((name) => ({ publisher: publisherOf(name), type: typeOf(name) })),
      }
      : undefined,
    phasewiseAgentId: agent.agentId,
  };
}

/** The instance view of an extension from the agent's report, or null when the agent has not reported it. */
export function agentInstanceView(ctx: ArmContext, m: Machine, inst: ExtensionInstance): Record<string, unknown> | null {
  const report = ctx.agents?.driver.connection(m.id)?.report;
  if (!report) return null;
  const name = `${inst.publisher}.${inst.type}`.toLowerCase();
  const h = report.aggregateStatus.handlerAggregateStatus.find((x) => x.handlerName.toLowerCase() === name);
  if (!h) return null;
  const s = h.runtimeSettingsStatus?.settingsStatus;
  const body = s?.status;
  const level = (st: string) => (st === 'error' ? 'Error' : st === 'warning' ? 'Warning' : 'Info');
  return {
    name: inst.name, type: inst.type, typeHandlerVersion: h.handlerVersion,
    status: {
      code: body ? `${body.status}` : h.status === 'Ready' ? 'success' : 'transitioning',
      level: body ? level(body.status) : h.status === 'Ready' ? 'Info' : 'Warning',
      displayStatus: `Handler ${h.status}`,
      message: body?.formattedMessage?.message ?? h.formattedMessage.message,
      time: s?.timestampUTC ?? report.timestampUTC,
    },
    substatuses: (body?.substatus ?? []).map((x) => ({ code: x.name ?? '', level: level(x.status), displayStatus: x.status, message: x.formattedMessage?.message ?? '' })),
  };
}

function publisherOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i > 0 ? name.slice(0, i) : name;
}

function typeOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i > 0 ? name.slice(i + 1) : '';
}
