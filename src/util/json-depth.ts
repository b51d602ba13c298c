/**
 * How deep a JSON-like value nests, found with an explicit stack: a value nested thousands of levels
 * deep is measured without recursion (JSON.stringify of it would overflow the stack, at commit time).
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Deepest nesting the engine stores (the API refuses bodies deeper than 32, docs/api.md#limits). */
export const MAX_STORED_DEPTH = 64;
