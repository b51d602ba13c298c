/**
 * Local policy, as Arc's `azcmagent config`: set on the machine, read-only for the control plane.
 * An empty allowlist allows everything; a blocklist entry wins over an allowlist entry.
 */
import { readJsonFile, writeJsonAtomic } from './atomic-file.js';
import { agentConfigPath, HANDLER_NAME_PATTERN, MAX_HANDLER_NAME_CHARS } from './layout.js';
import type { AgentDirs } from './layout.js';
import { shown } from './shown.js';

export interface LocalPolicy {
  extensionsEnabled: boolean;
  extensionsAllowList: string[];
  extensionsBlockList: string[];
}

export const DEFAULT_POLICY: LocalPolicy = { extensionsEnabled: true, extensionsAllowList: [], extensionsBlockList: [] };

export const POLICY_KEYS = ['extensions.enabled', 'extensions.allowlist', 'extensions.blocklist'] as const;
export type PolicyKey = (typeof POLICY_KEYS)[number];

export class PolicyError extends Error {}

const MAX_ENTRIES = 256;

/** `Publisher.Type` or Arc's `Publisher/Type`, kept in the handler-name form. */
function parseList(value: string): string[] {
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (entries.length > MAX_ENTRIES) throw new PolicyError(`at most ${MAX_ENTRIES} entries, not ${entries.length}`);
  return entries.map((entry) => {
    const name = entry.includes('/') ? entry.replace('/', '.') : entry;
    if (!HANDLER_NAME_PATTERN.test(name) || name.length > MAX_HANDLER_NAME_CHARS) throw new PolicyError(`${shown(entry)} is not an extension name (Publisher.Type or Publisher/Type)`);
    return name;
  });
}

export function readPolicy(dirs: AgentDirs): LocalPolicy {
  const raw = readJsonFile(agentConfigPath(dirs), 256 * 1024) as Partial<LocalPolicy> | undefined;
  if (raw === undefined) return { ...DEFAULT_POLICY };
  const lists = (v: unknown, key: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new PolicyError(`${agentConfigPath(dirs)}: ${key} must be a list of names`);
    return parseList(v.join(','));
  };
  if (raw.extensionsEnabled !== undefined && typeof raw.extensionsEnabled !== 'boolean') throw new PolicyError(`${agentConfigPath(dirs)}: extensionsEnabled must be true or false`);
  return {
    extensionsEnabled: raw.extensionsEnabled ?? true,
    extensionsAllowList: lists(raw.extensionsAllowList, 'extensionsAllowList'),
    extensionsBlockList: lists(raw.extensionsBlockList, 'extensionsBlockList'),
  };
}

export function setPolicy(dirs: AgentDirs, key: string, value: string): LocalPolicy {
  const policy = readPolicy(dirs);
  switch (key) {
    case 'extensions.enabled':
      if (value !== 'true' && value !== 'false') throw new PolicyError(`extensions.enabled takes true or false, not ${shown(value)}`);
      policy.extensionsEnabled = value === 'true';
      break;
    case 'extensions.allowlist':
      policy.extensionsAllowList = parseList(value);
      break;
    case 'extensions.blocklist':
      policy.extensionsBlockList = parseList(value);
      break;
    default:
      throw new PolicyError(`unknown setting ${shown(key)}; the settings are ${POLICY_KEYS.join(', ')}`);
  }
  writeJsonAtomic(agentConfigPath(dirs), policy, 0o644);
  return policy;
}

export function policyValue(policy: LocalPolicy, key: string): string {
  switch (key) {
    case 'extensions.enabled':
      return String(policy.extensionsEnabled);
    case 'extensions.allowlist':
      return policy.extensionsAllowList.join(',');
    case 'extensions.blocklist':
      return policy.extensionsBlockList.join(',');
    default:
      throw new PolicyError(`unknown setting ${shown(key)}; the settings are ${POLICY_KEYS.join(', ')}`);
  }
}

/** Why local policy forbids `name`, or null when it may run. Names compare case-insensitively. */
export function policyVerdict(policy: LocalPolicy, name: string): string | null {
  const lower = name.toLowerCase();
  const has = (list: string[]) => list.some((n) => n.toLowerCase() === lower);
  if (!policy.extensionsEnabled) return 'extension management is turned off on this machine (extensions.enabled=false)';
  if (has(policy.extensionsBlockList)) return `${name} is on this machine's extension blocklist`;
  if (policy.extensionsAllowList.length > 0 && !has(policy.extensionsAllowList)) return `${name} is not on this machine's extension allowlist`;
  return null;
}
