/**
 * The names an error lists ("expected one of: …"): at most a few, then how many more. A scenario with
 * thousands of versions and as many wrong references repeated the whole list in every line (2,000 took 380 MB).
 */
export const LISTED_AT_MOST = 20;

export function listed(items: Iterable<string>, none = '(none)'): string {
  const all = [...items];
  if (all.length === 0) return none;
  const shown = all.slice(0, LISTED_AT_MOST).join(', ');
  return all.length > LISTED_AT_MOST ? `${shown} and ${(all.length - LISTED_AT_MOST).toLocaleString('en')} more` : shown;
}
