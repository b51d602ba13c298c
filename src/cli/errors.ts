import type { Command } from 'commander';

/** A wrong command-line argument: reported in one line, exit code 2. */
export class UsageError extends Error {}

/**
 * The line a usage error prints: every command's errors start `phasewise COMMAND:` (`phasewise plan: --seed: …`),
 * whether or not the code that threw named the command (a bare `phasewise: ` is given the command's name); a message that
 * names its command already is kept.
 */
export function usageLine(message: string, commandPath: readonly string[]): string {
  // `phasewise: --top: …` thrown inside a command is that command's: named as every other usage error is.
  if (message.startsWith('phasewise: ') && commandPath.length > 0) return `${['phasewise', ...commandPath].join(' ')}: ${message.slice('phasewise: '.length)}`;
  if (/^phasewise\b/.test(message)) return message;
  return `${['phasewise', ...commandPath].join(' ')}: ${message}`;
}

/**
 * Commander's own usage errors (an unknown option or command, a missing argument) start `error:`; each command
 * prints them as its other usage errors, `phasewise rollout list: unknown option '--foo'`. Set on every command
 * once the tree is complete (a command's output settings are its own from then on).
 */
export function prefixCommanderErrors(command: Command, commandPath: readonly string[] = []): void {
  command.configureOutput({
    // One line, as every failure: a suggestion (`(Did you mean list?)`) joins the line it follows.
    outputError: (text, write) => write(`${usageLine(text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' '), commandPath)}\n`),
  });
  for (const sub of command.commands) prefixCommanderErrors(sub, [...commandPath, sub.name()]);
}
