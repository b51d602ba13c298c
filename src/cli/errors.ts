/** A wrong command-line argument: reported in one line, exit code 2. */
export class UsageError extends Error {}

/**
 * The line a usage error prints: every command's errors start `phasewise COMMAND:` (`phasewise plan: --seed: …`),
 * whether or not the code that threw named the command; a message that starts `phasewise` already is kept.
 */
export function usageLine(message: string, commandPath: readonly string[]): string {
  if (/^phasewise\b/.test(message)) return message;
  return `${['phasewise', ...commandPath].join(' ')}: ${message}`;
}
