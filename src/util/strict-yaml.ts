/**
 * YAML as Phasewise reads it: one document, plain data. The parser only warns on a tag it does not know
 * (`!!js/function`, `!foo`) and keeps the text, printing a multi-line warning; here that is an error like
 * any other, so a file is either read as written or refused with one line saying where.
 */
import { Composer, isMap, isPair, isScalar, isSeq, LineCounter, Parser } from 'yaml';
import type { Document, YAMLError } from 'yaml';

export class YamlSyntaxError extends Error {}

/**
 * The deepest nesting of mappings and sequences read. The parser's composer recurses per level and
 * overflowed the stack near 800 levels ("Maximum call stack size exceeded"); no Phasewise file needs 20.
 */
export const MAX_YAML_DEPTH = 100;

/** The data of `text`; YamlSyntaxError (first line of the parser's message, with line and column) otherwise. */
export function parseStrictYaml(text: string): unknown {
  // The parser's own duplicate-key check (uniqueKeys) compares each key with every earlier key of its map:
  // a map of 40,000 keys took 13 s. duplicateKeys finds the same key, for the same message, in linear time.
  const { docs, lines } = compose(text, false);
  if (docs.length === 0) return null; // an empty file or only comments, as parse() reads it
  if (docs.length > 1) {
    const line = text.slice(0, docs[1]!.range[0]).split('\n').length;
    throw new YamlSyntaxError(`Source contains multiple documents; expected one (the second starts at line ${line})`);
  }
  const doc = docs[0]!;
  const keys = duplicateKeys(doc.contents);
  const error = doc.errors[0];
  if (keys.first !== undefined) {
    // A file refused for a repeated key: with no large map the parser's own check is cheap, and says exactly
    // what it always said (which of two errors it meets first, and where a key starts, are its own subtle rules).
    if (keys.largestMap <= SMALL_MAP) return parseWithParserKeyCheck(text);
    // A larger map (a hostile file): the repeated key, unless another error comes earlier in the text.
    if (error === undefined || keys.first <= error.pos[0]) throw new YamlSyntaxError(`Map keys must be unique at ${where(lines, keys.first)}`);
  }
  return dataOf(doc, lines);
}

/**
 * parseAllDocuments, in its steps: the parser's tokens are measured for depth before the composer, which
 * recurses, sees them. Past MAX_YAML_DEPTH the file is refused for its depth, unless the composer found an
 * error earlier in the text: that is the cause (the parser nests every line after an unclosed `[` one level
 * deeper, and "nested more than 100 levels at line 100" would point away from the missing `]`).
 */
function compose(text: string, uniqueKeys: boolean): { docs: Document.Parsed[]; lines: LineCounter } {
  const lines = new LineCounter();
  const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  const deep = tooDeep(tokens as Iterable<CstNode>);
  let docs: Document.Parsed[];
  try {
    docs = Array.from(new Composer({ uniqueKeys, logLevel: 'silent' }).compose(tokens)) as Document.Parsed[];
  } catch (err) {
    if (deep !== null && err instanceof RangeError) throw depthError(deep, lines); // the composer's recursion overflowed
    throw err;
  }
  if (deep !== null) {
    const first = docs.find((d) => d.errors.length > 0)?.errors[0];
    if (!first || first.pos[0] === -1 || first.pos[0] > deep) throw depthError(deep, lines);
  }
  return { docs, lines };
}

function depthError(offset: number, lines: LineCounter): YamlSyntaxError {
  const { line, col } = lines.linePos(offset);
  return new YamlSyntaxError(`nested more than ${MAX_YAML_DEPTH} levels deep at line ${line}, column ${col}; Phasewise reads at most ${MAX_YAML_DEPTH} levels of mappings and lists`);
}

/** The largest map the parser's own (quadratic) key check may be run on: 1,000 keys, 500,000 comparisons. */
const SMALL_MAP = 1000;

function parseWithParserKeyCheck(text: string): unknown {
  const { docs, lines } = compose(text, true);
  return dataOf(docs[0]!, lines);
}

function dataOf(doc: Document.Parsed, lines: LineCounter): unknown {
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

function where(lineCounter: LineCounter, offset: number): string {
  const { line, col } = lineCounter.linePos(offset);
  return `line ${line}, column ${col}`;
}

/** What duplicateKeys finds: the earliest repeated key, the most keys of one map, the keys examined. */
export interface KeyCheck {
  first: number | undefined;
  largestMap: number;
  keys: number;
}

/**
 * The offset of the earliest key that repeats an earlier key of its map, as the parser's uniqueKeys check
 * judges it (two scalars with the same value, `===`). One set per map: linear in the number of nodes.
 * Iterative, so a deeply nested document cannot overflow the stack here.
 */
export function duplicateKeys(root: unknown): KeyCheck {
  const found: KeyCheck = { first: undefined, largestMap: 0, keys: 0 };
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      found.largestMap = Math.max(found.largestMap, node.items.length);
      const values = new Set<unknown>();
      for (const pair of node.items) {
        found.keys++;
        const key = pair.key;
        // NaN is never === itself, so `.nan` twice is no repeat for the parser either.
        if (isScalar(key) && !Number.isNaN(key.value)) {
          if (values.has(key.value) && key.range) found.first = Math.min(found.first ?? Infinity, key.range[0]);
          values.add(key.value);
        }
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    } else if (isPair(node)) {
      stack.push(node.key, node.value);
    }
  }
  return found;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/:$/, '');
}

interface CstNode { type?: string; offset?: number; value?: CstNode; items?: Array<{ key?: CstNode | null; value?: CstNode | null }> }

/** The offset of the first node nested past MAX_YAML_DEPTH in the parser's tree (built without recursion), found by a loop; null if none. */
function tooDeep(tokens: Iterable<CstNode>): number | null {
  for (const doc of tokens) {
    const todo: Array<[CstNode, number]> = doc.value ? [[doc.value, 0]] : [];
    while (todo.length > 0) {
      const [node, depth] = todo.pop()!;
      if (!node.items) continue;
      if (depth >= MAX_YAML_DEPTH) return node.offset ?? 0;
      for (const item of node.items) {
        if (item.key) todo.push([item.key, depth + 1]);
        if (item.value) todo.push([item.value, depth + 1]);
      }
    }
  }
  return null;
}
