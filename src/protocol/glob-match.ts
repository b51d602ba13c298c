/**
 * fnmatch for package name masks (`*`, `?`, `[abc]`, `[!abc]`, `[^abc]`; a `[` without its `]` is itself),
 * whole string, ASCII letters case-insensitive, shared by the control plane (src/model/patches.ts) and the
 * agent (src/agent/patching/selection.ts).
 *
 * Not a regular expression: `^.*a.*a.*a…b$` backtracks exponentially on a long name (a valid mask of 34
 * characters took seconds on a 30-character name, minutes on 40), on the engine's thread or the agent's.
 * This matcher runs the pattern as an automaton over the name once: time is at most mask length × name length.
 * It matches what the regular expression did (test/package-masks.test.ts compares them): `*` and `?` do
 * not match a line break, and a set is a one-character regular expression with the `i` flag.
 */

type Token = { kind: 'star' } | { kind: 'any' } | { kind: 'char'; c: string } | { kind: 'set'; re: RegExp };

const LINE_BREAK = /[\n\r\u2028\u2029]/;
const fold = (c: string) => (c >= 'A' && c <= 'Z' ? c.toLowerCase() : c);

const compiled = new Map<string, Token[]>();

function tokens(pattern: string): Token[] {
  const hit = compiled.get(pattern);
  if (hit) return hit;
  const out: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const end = c === '[' ? pattern.indexOf(']', i + 2) : -1;
    if (c === '*') {
      if (out.at(-1)?.kind !== 'star') out.push({ kind: 'star' }); // `**` is `*`
    } else if (c === '?') out.push({ kind: 'any' });
    else if (end > 0) {
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      out.push({ kind: 'set', re: new RegExp(`^[${negate ? '^' : ''}${body.replace(/[\\\]]/g, '\\$&')}]$`, 'i') });
      i = end;
    } else out.push({ kind: 'char', c: fold(c) });
  }
  if (compiled.size >= 1000) compiled.clear(); // bounded: masks come from requests
  compiled.set(pattern, out);
  return out;
}

function one(t: Token, ch: string): boolean {
  if (t.kind === 'any') return !LINE_BREAK.test(ch);
  if (t.kind === 'char') return t.c === fold(ch);
  if (t.kind === 'set') return t.re.test(ch);
  return false;
}

/** Whether `text` matches the fnmatch `pattern` as a whole. */
export function globMatch(pattern: string, text: string): boolean {
  const p = tokens(pattern);
  // The pattern as an automaton run over the text once, all its states at a time (no backtracking):
  // on[i] says that the first i tokens can have matched the text read so far.
  let on = closure(p, [true, ...new Array<boolean>(p.length).fill(false)]);
  // UTF-16 code units, as the regular expression without the `u` flag read them.
  for (let ti = 0; ti < text.length; ti++) {
    const ch = text[ti]!;
    const next = new Array<boolean>(p.length + 1).fill(false);
    let any = false;
    for (let i = 0; i < p.length; i++) {
      if (!on[i]) continue;
      const t = p[i]!;
      if (t.kind === 'star') {
        if (!LINE_BREAK.test(ch)) next[i] = any = true;
      } else if (one(t, ch)) next[i + 1] = any = true;
    }
    if (!any) return false;
    on = closure(p, next);
  }
  return on[p.length] === true;
}

/** A `*` may match nothing: the state before it reaches the state after it. */
function closure(p: readonly Token[], on: boolean[]): boolean[] {
  for (let i = 0; i < p.length; i++) if (on[i] && p[i]!.kind === 'star') on[i + 1] = true;
  return on;
}
