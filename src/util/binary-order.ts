/**
 * SQLite's BINARY collation (UTF-8 bytes compared) for JavaScript strings, whose `<` compares UTF-16 code
 * units instead: the two differ only between a character at U+E000–U+FFFF and one above U+FFFF (a
 * surrogate pair), which UTF-8 puts after it. Code that must iterate as SQLite orders a key uses this.
 */
export function compareBinary(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–U+DFFF) stand for code points above U+FFFF: move them above U+E000–U+FFFF.
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}
