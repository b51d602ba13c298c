/**
 * YAML as Phasewise reads it: one document, plain data. The parser only warns on a tag it does not know
 * (`!!js/function`, `!foo`) and keeps the text, printing a multi-line warning; here that is an error like
 * any other, so a file is either read as written or refused with one line saying where.
 */
import { Composer, LineCounter, Parser } from 'yaml';
import type { YAMLError } from 'yaml';

export class YamlSyntaxError extends Error {}

/**
 * The deepest nesting of mappings and sequences read. The parser's composer recurses per level and
 * overflowed the stack near 800 levels ("Maximum call stack size exceeded"); no Phasewise file needs 20.
 */
export const MAX_YAML_DEPTH = 100;

/** The data of `text`; YamlSyntaxError (first line of the parser's message, with line and column) otherwise. */
export function parseStrictYaml(text: string): unknown {
  // parseAllDocuments, in its steps: the parser's tokens are checked for depth before the composer, which recurses, sees them.
  const lines = new LineCounter();
  const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  checkDepth(tokens as Iterable<CstNode>, lines);
  const docs = Array.from(new Composer({ uniqueKeys: true, logLevel: 'silent' }).compose(tokens));
  if (docs.length === 0) return null; // an empty file or only comments, as parse() reads it
  if (docs.length > 1) {
    const line = text.slice(0, docs[1]!.range[0]).split('\n').length;
    throw new YamlSyntaxError(`Source contains multiple documents; expected one (the second starts at line ${line})`);
  }
  const doc = docs[0]!;
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new YamlSyntaxError(firstLine(problem.message) + at(problem, lines));
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new YamlSyntaxError(firstLine((err as Error).message));
  }
}

/** Where a problem is, as the library's prettifyError writes it (" at line L, column C"). */
function at(problem: YAMLError, lines: LineCounter): string {
  if (problem.pos[0] === -1) return '';
  const { line, col } = lines.linePos(problem.pos[0]);
  return ` at line ${line}, column ${col}`;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/:$/, '');
}

interface CstNode { type?: string; offset?: number; value?: CstNode; items?: Array<{ key?: CstNode | null; value?: CstNode | null }> }

/** Refuses nesting past MAX_YAML_DEPTH, measured on the parser's tree (built without recursion) by a loop, before anything recurses. */
function checkDepth(tokens: Iterable<CstNode>, lines: LineCounter): void {
  for (const doc of tokens) {
    const todo: Array<[CstNode, number]> = doc.value ? [[doc.value, 0]] : [];
    while (todo.length > 0) {
      const [node, depth] = todo.pop()!;
      if (!node.items) continue;
      if (depth >= MAX_YAML_DEPTH) {
        const { line, col } = lines.linePos(node.offset ?? 0);
        throw new YamlSyntaxError(`nested more than ${MAX_YAML_DEPTH} levels deep at line ${line}, column ${col}; Phasewise reads at most ${MAX_YAML_DEPTH} levels of mappings and lists`);
      }
      for (const item of node.items) {
        if (item.key) todo.push([item.key, depth + 1]);
        if (item.value) todo.push([item.value, depth + 1]);
      }
    }
  }
}
