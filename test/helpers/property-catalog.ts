/**
 * The property tests' catalog (properties.test.ts, properties-combined.test.ts): two extension types,
 * Agent 1.0.0.0 and Monitor 3.0.0.0, both on every machine with automatic upgrade on, and the phase bakes
 * that keep a 12- or 20-week horizon affordable. Spread into a scenario.
 */
export function twoExtensionCatalog() {
  return {
    profiles: { standard: { phaseBake: 'PT12H' }, critical: { phaseBake: 'PT6H' } },
    catalog: [
      { publisher: 'P', type: 'Agent', supportsAutomaticUpgrade: true, versions: [{ version: '1.0.0.0' }] },
      { publisher: 'P', type: 'Monitor', supportsAutomaticUpgrade: true, versions: [{ version: '3.0.0.0' }] },
    ],
    extensions: {
      agent: { publisher: 'P', type: 'Agent', typeHandlerVersion: '1.0', enableAutomaticUpgrade: true },
      monitor: { publisher: 'P', type: 'Monitor', typeHandlerVersion: '3.0', enableAutomaticUpgrade: true },
    },
  };
}
