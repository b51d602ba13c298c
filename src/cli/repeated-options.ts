/**
 * Commander keeps the last of an option given twice (`--seed 1 --seed 2` runs seed 2) without a word.
 * An option that takes a value must be given once: the user meant one of the two, and we cannot tell which.
 */

/** An option that takes a value: its long name, its short one if any (`-o`), whether the value may be left out. */
export interface ValuedOption {
  long: string;
  short?: string;
  optional?: boolean;
}

/**
 * The first of `options` (long names with their dashes, e.g. `--seed`, or their specs) given more than once
 * in `argv`, as `--seed`, `--seed=…`, or by its short name (`-o`, `-ojson`; `-o table --output json` is twice
 * too), before a `--` that ends the options; null if none is. The value after an option is its value, not an
 * option (`--reason "-o x"`), as commander reads it.
 */
export function repeatedOption(argv: readonly string[], options: readonly (string | ValuedOption)[]): string | null {
  const specs = options.map((o) => (typeof o === 'string' ? { long: o } : o));
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.flatMap((s) => (s.short ? [[s.short, s] as const] : [])));
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    let spec: ValuedOption | undefined;
    let valueFollows = false;
    if (arg.startsWith('--')) {
      const name = arg.split('=', 1)[0]!;
      spec = byLong.get(name);
      valueFollows = name === arg;
    } else if (/^-[A-Za-z]/.test(arg)) {
      spec = byShort.get(arg.slice(0, 2));
      valueFollows = arg.length === 2;
    }
    if (!spec) continue;
    if (seen.has(spec.long)) return spec.long;
    seen.add(spec.long);
    // commander takes the next word as a required value whatever it looks like, an optional one unless it is an option.
    if (valueFollows && i + 1 < argv.length && (!spec.optional || !argv[i + 1]!.startsWith('-'))) i++;
  }
  return null;
}
