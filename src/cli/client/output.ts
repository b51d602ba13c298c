/**
 * `--output json|jsonc|table|tsv|yaml|none` and `--query` (JMESPath), as the Azure CLI has them: the
 * query runs on the JSON first, then the result is printed in the chosen format. Table and tsv show
 * scalar fields only (as az does); a list of objects becomes rows, one object a single row.
 */
import jmespath from 'jmespath';
import { stringify as toYaml } from 'yaml';
import { UsageError } from '../errors.js';

export const OUTPUTS = ['json', 'jsonc', 'table', 'tsv', 'yaml', 'none'] as const;
export type OutputFormat = (typeof OUTPUTS)[number];
const MAX_QUERY = 2_000;

export function outputFormat(text: string | undefined): OutputFormat {
  const f = (text ?? 'json').toLowerCase();
  if (!(OUTPUTS as readonly string[]).includes(f)) throw new UsageError(`phasewise: --output: '${f.slice(0, 40)}' is not one of ${OUTPUTS.join(', ')}`);
  return f as OutputFormat;
}

/** Checks a JMESPath query's syntax without data, so a bad one is refused before any request is sent. */
export function compileQuery(query: string | undefined): void {
  if (query === undefined) return;
  if (query.length > MAX_QUERY) throw new UsageError(`phasewise: --query: longer than ${MAX_QUERY} characters`);
  try {
    (jmespath as unknown as { compile(q: string): unknown }).compile(query); // in the library, not in its types
  } catch (err) {
    throw invalidQuery(query, err);
  }
}

const invalidQuery = (query: string, err: unknown) => new UsageError(`phasewise: --query: invalid JMESPath '${query.slice(0, 100)}': ${(err as Error).message.split('\n')[0]}`);

/** Applies a JMESPath query; a bad one is a usage error (exit 2) with the parser's reason. */
export function applyQuery(data: unknown, query: string | undefined): unknown {
  if (query === undefined) return data;
  compileQuery(query);
  try {
    return jmespath.search(data as Record<string, unknown>, query) as unknown;
  } catch (err) {
    throw invalidQuery(query, err);
  }
}

export function render(data: unknown, format: OutputFormat, color = false): string {
  switch (format) {
    case 'none': return '';
    case 'json': return JSON.stringify(data, null, 2) + '\n';
    case 'jsonc': return colorJson(data, color) + '\n';
    case 'yaml': return toYaml(data ?? null);
    case 'tsv': return tsv(data);
    case 'table': return table(data);
  }
}

const isScalar = (v: unknown) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
/**
 * Table and tsv print text as it is, on a terminal: a value carrying escapes (a package manager's line in a
 * patch report, written by a repository) could clear the screen, retitle the window or write the
 * clipboard (OSC 52). Line breaks and tabs become spaces (one row, one cell); other C0 and C1 controls and
 * bidirectional overrides become U+FFFD. JSON and YAML escape them already.
 */
const UNSAFE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v)).replace(/[\t\n\r\u2028\u2029]/g, ' ').replace(UNSAFE, '\ufffd');

function rowsOf(data: unknown): Array<Record<string, unknown>> | unknown[][] | null {
  const list = Array.isArray(data) ? data : [data];
  if (list.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x))) return list as Array<Record<string, unknown>>;
  if (list.every(isScalar)) return list.map((x) => [x]);
  if (list.every(Array.isArray)) return list as unknown[][];
  return null;
}

/**
 * The scalar fields of the rows, in order of appearance. A field that holds an object or a list in any
 * row is nested and left out, even where another row has it null (`boundAtRisk` of a finished rollout),
 * so no cell reads `[object Object]`.
 */
function columnsOf(rows: Array<Record<string, unknown>>): string[] {
  const cols: string[] = [];
  const nested = new Set<string>();
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) {
      if (!isScalar(v) && v !== undefined) nested.add(k);
      else if (!cols.includes(k)) cols.push(k);
    }
  }
  return cols.filter((k) => !nested.has(k));
}

/**
 * Whether table and tsv have nothing to show for data that is not empty: objects with no scalar field
 * (`fleet pause`: lists and an object). They print nothing then (they printed a blank line per row), and
 * the CLI says why on stderr (`emptyTableNote`).
 */
function noColumns(rows: Array<Record<string, unknown>> | unknown[][]): boolean {
  return rows.length > 0 && !Array.isArray(rows[0]) && columnsOf(rows as Array<Record<string, unknown>>).length === 0;
}

/** The note for stderr when `-o table` or `-o tsv` print nothing of a non-empty answer; null otherwise. */
export function emptyTableNote(data: unknown, format: OutputFormat): string | null {
  if (format !== 'table' && format !== 'tsv') return null;
  const rows = rowsOf(data);
  if (!rows || !noColumns(rows)) return null;
  return `phasewise: -o ${format} shows scalar fields, and this answer has none (only lists and objects); use -o json or -o yaml, or pick fields with --query`;
}

function tsv(data: unknown): string {
  const rows = rowsOf(data);
  if (!rows || noColumns(rows)) return '';
  if (rows.length > 0 && !Array.isArray(rows[0])) {
    const objs = rows as Array<Record<string, unknown>>;
    const cols = columnsOf(objs);
    return objs.map((r) => cols.map((c) => cell(r[c])).join('\t')).join('\n') + (objs.length ? '\n' : '');
  }
  return (rows as unknown[][]).map((r) => r.filter(isScalar).map(cell).join('\t')).join('\n') + (rows.length ? '\n' : '');
}

/** Column names as az prints them: `toVersion` → `ToVersion`. */
const heading = (k: string) => k.charAt(0).toUpperCase() + k.slice(1);

function table(data: unknown): string {
  const rows = rowsOf(data);
  if (!rows || rows.length === 0 || noColumns(rows)) return '';
  let header: string[];
  let body: string[][];
  if (!Array.isArray(rows[0])) {
    const objs = rows as Array<Record<string, unknown>>;
    const cols = columnsOf(objs);
    header = cols.map(heading);
    body = objs.map((r) => cols.map((c) => cell(r[c])));
  } else {
    const arr = rows as unknown[][];
    const width = Math.max(...arr.map((r) => r.length));
    header = Array.from({ length: width }, (_, i) => `Column${i + 1}`);
    body = arr.map((r) => Array.from({ length: width }, (_, i) => (isScalar(r[i]) ? cell(r[i]) : '')));
  }
  const widths = header.map((h, i) => Math.min(60, Math.max(h.length, ...body.map((r) => r[i]!.length))));
  const fit = (s: string, w: number) => (s.length > w ? s.slice(0, w - 1) + '…' : s.padEnd(w));
  const line = (cells: string[]) => cells.map((c, i) => fit(c, widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n';
}

const C = { key: '\x1b[94m', string: '\x1b[32m', number: '\x1b[36m', literal: '\x1b[35m', reset: '\x1b[0m' };

/** JSON with colours (az's jsonc); without colour (not a terminal, NO_COLOR) it is plain indented JSON. */
function colorJson(data: unknown, color: boolean): string {
  const text = JSON.stringify(data, null, 2) ?? 'null';
  if (!color) return text;
  const token = /("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  type Part = string | undefined;
  return text.replace(token, (m, str: Part, colon: Part, lit: Part, n: Part) => {
    if (str !== undefined) return colon ? `${C.key}${str}${C.reset}${colon}` : `${C.string}${str}${C.reset}`;
    if (lit !== undefined) return `${C.literal}${lit}${C.reset}`;
    if (n !== undefined) return `${C.number}${n}${C.reset}`;
    return m;
  });
}
