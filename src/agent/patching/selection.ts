/**
 * Which offered patches an installation takes, as ARM's linuxParameters say: classifications to include,
 * package name masks to include and exclude (fnmatch-style: `*`, `?`, `[abc]`, `[!abc]`; a mask may
 * pin a version as `name=version-mask`). Pure.
 *
 * A patch is Excluded when an exclude mask matches it (exclusion wins); otherwise it is selected when
 * an include mask names it (whatever its classification, as Azure does), or when its classification is
 * included and no include mask is given; the rest are NotSelected. The same rule as the control plane's
 * selectPatches (src/model/patches.ts); names compare case-insensitively, as the package managers do.
 */
import type { PatchClassification } from '../../protocol/agent-wire.js';
import type { AvailablePatch } from './types.js';

const cache = new Map<string, RegExp>();

/** The regular expression of an fnmatch pattern (whole-string match). */
export function fnmatchRegExp(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) return hit;
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  const out = new RegExp(`^${re}$`, 'i');
  if (cache.size < 1024) cache.set(pattern, out);
  return out;
}

export function fnmatch(pattern: string, text: string): boolean {
  return fnmatchRegExp(pattern).test(text);
}

/** A mask against a patch: `name-mask` or `name-mask=version-mask`. */
export function maskMatches(mask: string, p: Pick<AvailablePatch, 'name' | 'version'>): boolean {
  const eq = mask.indexOf('=');
  if (eq < 0) return fnmatch(mask, p.name);
  return fnmatch(mask.slice(0, eq), p.name) && fnmatch(mask.slice(eq + 1), p.version);
}

export interface SelectionRules {
  classificationsToInclude: readonly PatchClassification[];
  packageNameMasksToInclude: readonly string[];
  packageNameMasksToExclude: readonly string[];
}

export type Verdict = 'Selected' | 'Excluded' | 'NotSelected';

export function selectionOf(p: AvailablePatch, rules: SelectionRules): Verdict {
  if (rules.packageNameMasksToExclude.some((m) => maskMatches(m, p))) return 'Excluded';
  if (rules.packageNameMasksToInclude.length > 0) return rules.packageNameMasksToInclude.some((m) => maskMatches(m, p)) ? 'Selected' : 'NotSelected';
  return p.classifications.some((c) => rules.classificationsToInclude.includes(c)) ? 'Selected' : 'NotSelected';
}
