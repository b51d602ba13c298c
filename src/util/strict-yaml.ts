/**
 * YAML as Phasewise reads it: one document, plain data. The parser only warns on a tag it does not know
 * (`!!js/function`, `!foo`) and keeps the text, printing a multi-line warning; here that is an error like
 * any other, so a file is either read as written or refused with one line saying where.
 */
import { parseDocument } from 'yaml';

export class YamlSyntaxError extends Error {}

/** The data of `text`; YamlSyntaxError (first line of the parser's message, with line and column) otherwise. */
export function parseStrictYaml(text: string): unknown {
  const doc = parseDocument(text, { uniqueKeys: true, logLevel: 'silent' });
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new YamlSyntaxError(firstLine(problem.message));
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new YamlSyntaxError(firstLine((err as Error).message));
  }
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/:$/, '');
}
