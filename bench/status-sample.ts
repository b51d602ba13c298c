/** The status report bench:checkin and bench:checkin-pipeline send (3,062 bytes as JSON). */
import type { StatusReport } from '../src/protocol/agent-wire.js';

/** A status report the size of a real one: three extensions, app health, the agent's policy. */
export function sampleReport(seq: number): StatusReport {
  const now = new Date().toISOString();
  const msg = (message: string) => ({ lang: 'en-US', message });
  const names = ['Microsoft.Azure.Monitor.AzureMonitorLinuxAgent', 'Microsoft.ManagedServices.ApplicationHealthLinux', 'Microsoft.Azure.Extensions.CustomScript'];
  return {
    version: '1.1', timestampUTC: now, goalStateId: seq,
    aggregateStatus: {
      guestAgentStatus: { version: '0.1.0', status: 'Ready', formattedMessage: msg('Guest Agent is running') },
      handlerAggregateStatus: names.map((n) => ({
        handlerName: n, handlerVersion: '1.31.0.0', status: 'Ready', code: 0, formattedMessage: msg('Plugin enabled'),
        runtimeSettingsStatus: {
          sequenceNumber: 4,
          settingsStatus: { version: 1, timestampUTC: now, status: { name: n, operation: 'Enable', status: 'success', code: 0, formattedMessage: msg('Enable succeeded: the handler is running') } },
        },
      })),
      vmArtifactsAggregateStatus: { goalStateAggregateStatus: { inSvdSeqNo: 1, status: 'Success', code: 0, timestampUTC: now, formattedMessage: msg('GoalState executed successfully') } },
    },
    guestOSInfo: { computerName: 'bench-host', osName: 'Ubuntu', osVersion: '24.04', version: '0.1.0' },
    agentState: Object.fromEntries(names.map((n) => [n, {
      state: 'Enabled' as const, installedVersion: '1.31.0.0', lastKnownGood: '1.31.0.0',
      lastOperation: { operationId: 'bind:x', outcome: 'succeeded' as const, version: '1.31.0.0', message: 'enabled', finishedAt: now },
    }])),
    applicationHealth: { state: 'Healthy', extensionName: 'health' },
    agentConfiguration: { extensionsEnabled: true, extensionsAllowList: [], extensionsBlockList: [] },
  };
}
