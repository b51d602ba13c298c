/**
 * A text as a PostgreSQL literal, as `pg.escapeLiteral` writes it (quotes doubled; with a backslash, an E'' literal
 * with backslashes doubled: right whatever standard_conforming_strings says), but with native string searches
 * instead of a loop per character. pg's loop appends one character at a time: a 3 KB status report took 4× the
 * time, and a rollout's plan (tens of millions of characters at a million machines) became a chain of one-character
 * pieces of about 32 bytes each, gigabytes at 10,000,000 machines (docs/benchmarks.md, bench:pg).
 */
export function quote(s: string): string {
  const q = s.includes("'") ? s.replaceAll("'", "''") : s;
  return s.includes('\\') ? ` E'${q.replaceAll('\\', '\\\\')}'` : `'${q}'`;
}
