/**
 * A scenario YAML with `n` written-out VM entries (one `fleet.vms` group of one VM each), the shape the
 * hostile-CLI pass fed to `phasewise plan`: 150,000 entries make about 12 MB.
 * `templates` more extension templates (t0, t1, …, all of the same type) make `extensions` one map of that
 * many keys, the shape the YAML parser's duplicate-key check was quadratic on.
 * Usage: node dist/bench/big-yaml.js N [TEMPLATES] > file.yaml
 */
const REGIONS = ['eastus', 'westus', 'northeurope', 'westeurope'];
const PAIRS: Record<string, string> = { eastus: 'westus', westus: 'eastus', northeurope: 'westeurope', westeurope: 'northeurope' };

/** The text of the scenario: four regions in two pairs, one extension, one release an hour in. */
export function bigVmScenarioYaml(n: number, templates = 0): string {
  const lines = [
    `name: big-${n}`,
    'start: 2026-03-02T00:00:00Z',
    'seed: 1',
    'horizon: P4W',
    'regions:',
    ...REGIONS.map((r) => `  - { name: ${r}, pair: ${PAIRS[r]}, zones: ["1", "2", "3"] }`),
    'catalog:',
    '  - publisher: Contoso.Monitoring',
    '    type: Agent',
    '    supportsAutomaticUpgrade: true',
    '    versions:',
    '      - { version: 1.4.0.0 }',
    'extensions:',
    '  agent: { publisher: Contoso.Monitoring, type: Agent, typeHandlerVersion: "1.4", enableAutomaticUpgrade: true }',
    ...Array.from({ length: templates }, (_, i) => `  t${i}: { publisher: Contoso.Monitoring, type: Agent, typeHandlerVersion: "1.4" }`),
    'fleet:',
    '  vms:',
  ];
  for (let i = 0; i < n; i++) {
    const region = REGIONS[i % REGIONS.length]!;
    lines.push(`    - { name: vm${String(i).padStart(6, '0')}, region: ${region}, subscription: sub${i % 50}, count: 1, zones: ["${1 + (i % 3)}"], extensions: [agent] }`);
  }
  lines.push('events:', '  - { at: PT1H, publish: { extension: agent, version: 1.4.1.0 } }', '');
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('big-yaml.js')) {
  const n = Number(process.argv[2] ?? 150_000);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`usage: big-yaml.js N (a whole number ≥ 1), got ${process.argv[2]}`);
  const templates = Number(process.argv[3] ?? 0);
  if (!Number.isSafeInteger(templates) || templates < 0) throw new Error(`usage: big-yaml.js N [TEMPLATES], got ${process.argv[3]}`);
  process.stdout.write(bigVmScenarioYaml(n, templates));
}
