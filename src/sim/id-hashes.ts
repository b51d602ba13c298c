/**
 * `hashUnit` of many ids for one salt at a time, as a scenario's `share` selectors need it: each event
 * hashes every machine id with its own salt. The salt seeds the hash's state before the first character, so
 * no hash can be kept across salts; but ids in fleet order share long prefixes (`vm-region07-…`), and the
 * state after a prefix is the same for every id with that prefix. This keeps the ids' characters and each
 * id's common prefix with the one before, and hashes only the characters after the prefix it shares with
 * the id hashed last. The results are exactly `hashUnit`'s.
 */
export class IdHashes {
  private readonly codes: Uint16Array;
  /** Where each id's characters start in `codes` (one more entry: the end). */
  private readonly offsets: Int32Array;
  /** Each id's common prefix with the one before it (0 for the first). */
  private readonly shared: Int32Array;
  /** The hash's state after each character of the id hashed last (entry 0: the salt's start). */
  private readonly states: Int32Array;
  private salt = Number.NaN;
  private last = -1;

  constructor(readonly ids: readonly string[]) {
    let total = 0;
    let longest = 0;
    for (const id of ids) {
      total += id.length;
      longest = Math.max(longest, id.length);
    }
    this.codes = new Uint16Array(total);
    this.offsets = new Int32Array(ids.length + 1);
    this.shared = new Int32Array(ids.length);
    this.states = new Int32Array(longest + 1);
    let at = 0;
    ids.forEach((id, j) => {
      this.offsets[j] = at;
      for (let k = 0; k < id.length; k++) this.codes[at + k] = id.charCodeAt(k);
      if (j > 0) this.shared[j] = commonPrefix(this.codes, this.offsets[j - 1]!, at, Math.min(ids[j - 1]!.length, id.length));
      at += id.length;
    });
    this.offsets[ids.length] = at;
  }

  /** `hashUnit(ids[j], salt)`; cheapest when called with one salt for growing `j`. */
  unit(j: number, salt: number): number {
    const states = this.states;
    const codes = this.codes;
    let p = 0;
    if (salt !== this.salt || j <= this.last) {
      this.salt = salt;
      states[0] = salt ^ 0x811c9dc5;
    } else {
      // The prefix ids[j] shares with the id hashed last is the shortest of the prefixes shared in between.
      p = this.shared[j]!;
      for (let i = this.last + 1; i < j && p > 0; i++) p = Math.min(p, this.shared[i]!);
    }
    this.last = j;
    const start = this.offsets[j]!;
    const len = this.offsets[j + 1]! - start;
    let h = states[p]!;
    for (let k = p; k < len; k++) {
      h ^= codes[start + k]!;
      h = Math.imul(h, 0x01000193);
      states[k + 1] = h;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    return (h >>> 0) / 4294967296;
  }
}

function commonPrefix(codes: Uint16Array, a: number, b: number, max: number): number {
  let n = 0;
  while (n < max && codes[a + n] === codes[b + n]) n++;
  return n;
}
