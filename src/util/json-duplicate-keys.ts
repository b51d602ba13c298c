/**
 * JSON.parse keeps the last of two equal keys in an object without a word; a scenario read as YAML refuses
 * them ("Map keys must be unique"). This finds the first repeated key of a text JSON.parse accepted, so a
 * JSON file is held to the same rule. One pass, no recursion: nesting depth costs nothing but a stack entry.
 */

export interface DuplicateKey {
  readonly key: string;
  /** 1-based, of the repeated key's opening quote. */
  readonly line: number;
  readonly column: number;
}

/** The first key repeated within one object of `text` (valid JSON), or null. */
export function firstDuplicateJsonKey(text: string): DuplicateKey | null {
  // One entry per open container: the keys seen so far for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (keys.has(key)) return { key, ...position(text, i) };
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
  return null;
}

function position(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, column: index - start + 1 };
}
