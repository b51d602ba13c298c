/** fast-check generators shared by the property tests. */
import fc from 'fast-check';

/** A scale set's rolling-upgrade policy, anywhere in its valid ranges. */
export const policyArb = fc.record({
  maxBatchInstancePercent: fc.integer({ min: 1, max: 100 }),
  maxUnhealthyInstancePercent: fc.integer({ min: 1, max: 100 }),
  maxUnhealthyUpgradedInstancePercent: fc.integer({ min: 0, max: 100 }),
  enableCrossZoneUpgrade: fc.boolean(),
  pauseTimeBetweenBatches: fc.constantFrom('PT0S', 'PT1M', 'PT10M'),
});
