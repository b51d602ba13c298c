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
import { globMatch } from '../../protocol/glob-match.js';
import { maskedName } from '../../protocol/package-masks.js';
import type { AvailablePatch } from './types.js';

export function fnmatch(pattern: string, text: string): boolean {
  return globMatch(pattern, text);
}

/** A mask against a patch: `name-mask` or `name-mask=version-mask`; `name:arch` as maskedName says. */
export function maskMatches(mask: string, p: Pick<AvailablePatch, 'name' | 'version' | 'arch'>): boolean {
  const eq = mask.indexOf('=');
  if (eq < 0) return fnmatch(mask, maskedName(mask, p.name, p.arch));
  return fnmatch(mask.slice(0, eq), maskedName(mask.slice(0, eq), p.name, p.arch)) && fnmatch(mask.slice(eq + 1), p.version);
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
