/**
 * A value as an error message quotes it: JSON, cut to its first characters. An argument of 100,000
 * characters was echoed whole, and the sentence saying what was wrong with it came after it (a terminal
 * or a 64 KiB pipe buffer showed only the value).
 */
export function shown(value: string, max = 80): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}
