/** Steps a simulation until a step throws (a refused commit) or it ends; returns what was thrown, or null. */
export function stepUntilFailure(sim: { step(): boolean }, guard = 100_000): unknown {
  for (let i = 0; i < guard; i++) {
    try {
      if (!sim.step()) return null;
    } catch (err) {
      return err;
    }
  }
  return null;
}
