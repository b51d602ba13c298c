/**
 * Commander keeps the last of an option given twice (`--seed 1 --seed 2` runs seed 2) without a word.
 * An option that takes a value must be given once: the user meant one of the two, and we cannot tell which.
 */

/**
 * The first of `options` (long names with their dashes, e.g. `--seed`) given more than once in `argv`,
 * as `--seed` or `--seed=…`, before a `--` that ends the options; null if none is.
 */
export function repeatedOption(argv: readonly string[], options: readonly string[]): string | null {
  const seen = new Set<string>();
  for (const arg of argv) {
    if (arg === '--') break;
    const name = arg.startsWith('--') ? arg.split('=', 1)[0]! : null;
    if (name === null || !options.includes(name)) continue;
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return null;
}
