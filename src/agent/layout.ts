/**
 * Where everything lives on the machine (agent-protocol §8 "On-disk contract").
 *
 *   <lib>/<Publisher.Type>-<Version>/   handler base dir (config/, status/, HandlerEnvironment.json …)
 *   <lib>/<THUMB>.crt, <THUMB>.prv      the machine certificate and key (protected settings, mTLS)
 *   <lib>/.agent/enrollment.json        agentId, resourceId, server URL (EnrollResponse)
 *   <lib>/.agent/client.crt, ca.crt     the client certificate the server issued, the agent CA
 *   <lib>/.agent/server-ca.pem          the server's TLS certificate trusted with `--ca-cert`
 *   <lib>/.agent/state.json             the journal (per extension: operation, steps, LKG)
 *   <lib>/.agent/state.prev.json        the journal as it was one write before (a torn journal's fallback)
 *   <lib>/.agent/goalstate.json         the last accepted goal state and its ETag
 *   <lib>/.agent/packages/              verified zips: the rollback cache
 *   <lib>/.agent/downloads/             partial downloads (resumed with Range)
 *   <lib>/.agent/run/                   one wrapper per handler command: pid, exit code, output
 *   <config>/agent-config.json          local policy (allowlist, blocklist, enabled)
 *   <config>/trusted-keys/<keyId>.pub   publisher keys (Ed25519, PEM)
 *   <log>/<Publisher.Type>/             handler logFolder
 */
import { join } from 'node:path';

export const DEFAULT_LIB_DIR = '/var/lib/waagent';
export const DEFAULT_CONFIG_DIR = '/etc/phasewise';
export const DEFAULT_LOG_DIR = '/var/log/azure';

export interface AgentDirs {
  lib: string;
  config: string;
  log: string;
}

/** `Publisher.Type` names a folder: the server's rule too (src/protocol/handler-names.ts). */
export { HANDLER_NAME_PATTERN, MAX_HANDLER_NAME_CHARS } from '../protocol/handler-names.js';
/** Versions name folders too: digits and dots, a few labels. */
export const VERSION_PATTERN = /^[0-9]+(\.[0-9]+){0,3}$/;

export const agentDir = (d: AgentDirs): string => join(d.lib, '.agent');
export const statePath = (d: AgentDirs): string => join(agentDir(d), 'state.json');
export const previousStatePath = (d: AgentDirs): string => join(agentDir(d), 'state.prev.json');
export const goalStatePath = (d: AgentDirs): string => join(agentDir(d), 'goalstate.json');
export const enrollmentPath = (d: AgentDirs): string => join(agentDir(d), 'enrollment.json');
export const packagesDir = (d: AgentDirs): string => join(agentDir(d), 'packages');
export const downloadsDir = (d: AgentDirs): string => join(agentDir(d), 'downloads');
export const runDir = (d: AgentDirs): string => join(agentDir(d), 'run');
/** A command's run files are this plus `.pid`, `.exit`, `.out` (handler-process.ts). */
export const runBase = (d: AgentDirs, runId: string): string => join(runDir(d), runId);
export const handlerDir = (d: AgentDirs, name: string, version: string): string => join(d.lib, `${name}-${version}`);
export const handlerLogDir = (d: AgentDirs, name: string): string => join(d.log, name);
export const cachedPackagePath = (d: AgentDirs, name: string, version: string): string => join(packagesDir(d), `${name}__${version}.zip`);
export const agentConfigPath = (d: AgentDirs): string => join(d.config, 'agent-config.json');
export const trustedKeysDir = (d: AgentDirs): string => join(d.config, 'trusted-keys');
