/**
 * The one rule for an extension handler's name on the wire, `Publisher.Type`, shared by the server's catalog
 * (a type it registers) and the agent (whose goal-state check refuses the whole goal state over one bad name,
 * and which makes folders `<Publisher.Type>-<version>` of it). Dot-separated parts of letters, digits, `_` and
 * `-`, the first starting with a letter or a digit; no empty part (`Contoso..Agent`, a trailing dot); at most
 * 128 characters, so that the folder name stays under the 255 bytes a Linux file name may have.
 */

export const HANDLER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$/;
export const MAX_HANDLER_NAME_CHARS = 128;

/** Why `name` (`Publisher.Type`) is not a handler name an agent takes, or null when it is one. */
export function handlerNameProblem(name: string): string | null {
  if (name.length > MAX_HANDLER_NAME_CHARS) return `'${name.slice(0, 40)}…' has ${name.length} characters; the handler name Publisher.Type has at most ${MAX_HANDLER_NAME_CHARS}.`;
  if (!HANDLER_NAME_PATTERN.test(name)) return `'${name}' is not a handler name: dot-separated parts of letters, digits, '-' and '_', none empty.`;
  return null;
}
