/**
 * YAML as Phasewise reads it: one document, plain data. The parser only warns on a tag it does not know
 * (`!!js/function`, `!foo`) and keeps the text, printing a multi-line warning; here that is an error like
 * any other, so a file is either read as written or refused with one line saying where.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';

export class YamlSyntaxError extends Error {}

/** The data of `text`; YamlSyntaxError (first line of the parser's message, with line and column) otherwise. */
export function parseStrictYaml(text: string): unknown {
  // The parser's own duplicate-key check (uniqueKeys) compares each key with every earlier key of its map:
  // a map of 40,000 keys took 13 s. duplicateKeys finds the same key, for the same message, in linear time.
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { uniqueKeys: false, logLevel: 'silent', lineCounter });
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
    if (error === undefined || keys.first <= error.pos[0]) throw new YamlSyntaxError(`Map keys must be unique at ${where(lineCounter, keys.first)}`);
  }
  return dataOf(doc);
}

/** The largest map the parser's own (quadratic) key check may be run on: 1,000 keys, 500,000 comparisons. */
const SMALL_MAP = 1000;

function parseWithParserKeyCheck(text: string): unknown {
  return dataOf(parseAllDocuments(text, { uniqueKeys: true, logLevel: 'silent' })[0]!);
}

function dataOf(doc: Document.Parsed): unknown {
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new YamlSyntaxError(firstLine(problem.message));
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new YamlSyntaxError(firstLine((err as Error).message));
  }
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
