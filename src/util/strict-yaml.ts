/**
 * YAML as Phasewise reads it: one document, plain data. The parser only warns on a tag it does not know
 * (`!!js/function`, `!foo`) and keeps the text, printing a multi-line warning; here that is an error like
 * any other, so a file is either read as written or refused with one line saying where.
 */
import { parseAllDocuments } from 'yaml';

export class YamlSyntaxError extends Error {}

/** The data of `text`; YamlSyntaxError (first line of the parser's message, with line and column) otherwise. */
export function parseStrictYaml(text: string): unknown {
  const docs = parseAllDocuments(text, { uniqueKeys: true, logLevel: 'silent' });
  if (docs.length === 0) return null; // an empty file or only comments, as parse() reads it
  if (docs.length > 1) {
    const line = text.slice(0, docs[1]!.range[0]).split('\n').length;
    throw new YamlSyntaxError(`Source contains multiple documents; expected one (the second starts at line ${line})`);
  }
  const doc = docs[0]!;
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
