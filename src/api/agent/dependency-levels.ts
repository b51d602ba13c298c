/**
 * `dependencyLevel` of each goal-state entry, from ARM's `provisionAfterExtensions` (the names of the
 * extensions on the same machine an extension is provisioned after): 0 without any, else one more than
 * the highest level among those it names that the goal state carries. The agent runs the levels in
 * order (src/agent/converge.ts). Names compare case-insensitively, as ARM's; a name not on the machine
 * is ignored; a cycle (which ARM would refuse) adds nothing past the point where it closes, so every
 * entry still gets a level.
 */
export function dependencyLevels(names: readonly string[], after: (name: string) => readonly string[]): Map<string, number> {
  const present = new Map(names.map((n) => [n.toLowerCase(), n]));
  const levels = new Map<string, number>();
  const visiting = new Set<string>();
  const levelOf = (key: string): number => {
    const known = levels.get(key);
    if (known !== undefined) return known;
    if (visiting.has(key)) return -1; // closes a cycle
    visiting.add(key);
    let level = 0;
    for (const dep of after(present.get(key)!)) {
      const k = dep.toLowerCase();
      if (k !== key && present.has(k)) level = Math.max(level, levelOf(k) + 1);
    }
    visiting.delete(key);
    levels.set(key, level);
    return level;
  };
  const out = new Map<string, number>();
  for (const n of names) out.set(n, levelOf(n.toLowerCase()));
  return out;
}
