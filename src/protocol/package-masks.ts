/**
 * The one rule for a Linux package name mask (ARM's linuxParameters.packageNameMasksToInclude/Exclude),
 * shared by the API's validation and the agent driver so that a request the API takes is one an agent
 * takes. A mask is an fnmatch pattern on the package name (`*`, `?`, `[abc]`, `[!abc]`, `[^abc]`),
 * optionally pinning a version as `name=version-mask` (as Azure's Linux patch extension reads it).
 *
 * Characters: what apt, dnf and zypper package names and versions are made of (letters, digits,
 * `. _ + : ~ -`), `=` for the version pin, and the glob characters. Not `< >` (zypper's `name>=1.0` is a
 * capability, not a name apt or dnf know, and both are shell redirections) nor spaces, quotes or `/`.
 * The first character is a letter, a digit or a glob character, never `-`: a package manager would
 * read `-foo` as an option.
 */
import { PATCH_LIMITS } from './agent-wire.js';

/** Masks per include/exclude list, the agent's goal-state limit (agents in the field refuse more). */
export const MAX_MASKS_PER_LIST: number = PATCH_LIMITS.masksPerList;
/** Characters in one mask. */
export const MAX_MASK_CHARS: number = PATCH_LIMITS.maskChars;

const MASK = /^[A-Za-z0-9*?[][A-Za-z0-9*?[\]!^._+:~=-]*$/;

/** The rule in words, for error messages and docs. */
export const MASK_RULE = `letters, digits, . _ + : ~ - =, the wildcards * ? [ ] (with ! or ^ to negate a set); `
  + `it starts with a letter, a digit or a wildcard; at most ${MAX_MASK_CHARS} characters`;

/** Why `mask` is not a package name mask, or null when it is one. */
export function packageMaskProblem(mask: string): string | null {
  if (mask.length === 0) return 'an empty package name mask.';
  if (mask.length > MAX_MASK_CHARS) return `a package name mask of ${mask.length} characters; at most ${MAX_MASK_CHARS}.`;
  if (!MASK.test(mask)) return `'${mask.slice(0, 40)}' is not a package name mask (${MASK_RULE}).`;
  const set = badSet(mask);
  if (set !== null) return `'${mask.slice(0, 40)}' has the set ${set}, whose range runs backwards; write it low to high, such as [a-z].`;
  return null;
}

/**
 * A `[…]` set no regular expression can hold (a range such as `z-a`), read as the agent reads sets (a `]`
 * right after `[` is itself, a `[` without its `]` is itself); null when there is none. The agent
 * and the simulator turn sets into regular expressions: such a set would throw there.
 */
function badSet(mask: string): string | null {
  for (let i = mask.indexOf('['); i >= 0; i = mask.indexOf('[', i + 1)) {
    const end = mask.indexOf(']', i + 2);
    if (end < 0) return null;
    const body = mask.slice(i + 1, end).replace(/^[!^]/, '');
    try {
      new RegExp(`[${body.replace(/[\\\]]/g, '\\$&')}]`, 'i');
    } catch {
      return mask.slice(i, end + 1);
    }
    i = end;
  }
  return null;
}

export const isPackageMask = (mask: string): boolean => packageMaskProblem(mask) === null;

/** Why a list of masks is refused, naming the first bad entry by index, or null when all is well. */
export function maskListProblem(masks: readonly string[]): { index: number | null; message: string } | null {
  if (masks.length > MAX_MASKS_PER_LIST) return { index: null, message: `at most ${MAX_MASKS_PER_LIST} package name masks per list.` };
  for (let i = 0; i < masks.length; i++) {
    const p = packageMaskProblem(masks[i]!);
    if (p) return { index: i, message: p };
  }
  return null;
}

/**
 * The name a mask's name part is matched against (the agent's selection and the simulator's alike). apt
 * names a package of a foreign architecture `name:arch` (`libc6:i386`), and `apt list --upgradable` names
 * every package so: a name part with a colon (`libc6:amd64`, `*:i386`) matches `name:arch` (the package's
 * architecture added when its name has none); one without matches the name before any colon, whatever
 * the architecture.
 */
export function maskedName(nameMask: string, name: string, arch?: string): string {
  const colon = name.indexOf(':');
  if (!nameMask.includes(':')) return colon < 0 ? name : name.slice(0, colon);
  return colon >= 0 || !arch ? name : `${name}:${arch}`;
}
