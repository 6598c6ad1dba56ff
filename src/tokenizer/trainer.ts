// Training of a byte-level BPE vocabulary (GPT-2 style) on a text corpus: texts are split with the GPT-2 regex and
// mapped to byte-level characters, the vocabulary starts with the special tokens and the 256 byte characters, and
// the most frequent adjacent pair (ties: smallest ids) is merged until the vocabulary size is reached or the best
// pair is rarer than minFrequency. The result is a Tokenizer whose tokenizer.json loads back anywhere.

import type { AddedToken } from './added-tokens.js';
import { TokenizerError, type JsonObject } from './errors.js';
import { compileOniguruma, escapeLiteral, findAll } from './regex.js';
import { byteLevelOf, GPT2_PATTERN } from './pre-tokenizers.js';
import { Tokenizer } from './tokenizer.js';
import { byteLevelAlphabet } from './unicode.js';

interface TrainByteLevelBPEOptions {
  /** Final vocabulary size, special tokens and the 256 byte characters included. */
  vocabSize: number;
  /** Pairs seen fewer times than this are not merged (default 2). */
  minFrequency?: number;
  /** Special tokens, given ids 0..n-1 and never split. */
  specialTokens?: string[];
  /** Extra tokenizer_config.json entries (bos_token, eos_token, pad_token, chat_template...). */
  config?: JsonObject;
}

const SHIFT = 2 ** 26;

/** Max-heap of (count, pair key): larger count first, then smaller key. */
class PairHeap {
  private c: number[] = [];
  private k: number[] = [];
  get size(): number {
    return this.c.length;
  }
  private above(a: number, b: number): boolean {
    return this.c[a] > this.c[b] || (this.c[a] === this.c[b] && this.k[a] < this.k[b]);
  }
  private swap(a: number, b: number): void {
    [this.c[a], this.c[b]] = [this.c[b], this.c[a]];
    [this.k[a], this.k[b]] = [this.k[b], this.k[a]];
  }
  push(count: number, key: number): void {
    this.c.push(count);
    this.k.push(key);
    for (let i = this.c.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.above(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): [number, number] {
    const top: [number, number] = [this.c[0], this.k[0]];
    const last = this.c.length - 1;
    this.swap(0, last);
    this.c.pop();
    this.k.pop();
    const n = this.c.length;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.above(l, m)) m = l;
      if (r < n && this.above(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}

/** Trains a byte-level BPE tokenizer on `texts`. */
export function trainByteLevelBPE(texts: Iterable<string>, opts: TrainByteLevelBPEOptions): Tokenizer {
  const specials = opts.specialTokens ?? [];
  const minFrequency = opts.minFrequency ?? 2;
  const vocabSize = opts.vocabSize;
  if (!Number.isInteger(vocabSize) || vocabSize < specials.length + 256) {
    throw new TokenizerError(`trainByteLevelBPE: vocabSize must be an integer >= ${specials.length + 256} (special tokens + 256 bytes), got ${vocabSize}`);
  }
  if (new Set(specials).size !== specials.length || specials.some((s) => s.length === 0)) throw new TokenizerError('trainByteLevelBPE: special tokens must be distinct non-empty strings');

  // 1. word counts over the byte-level pre-tokenization (special tokens cut out of the text)
  const re = compileOniguruma(GPT2_PATTERN);
  const specialRe = specials.length
    ? new RegExp(
        [...specials]
          .sort((a, b) => b.length - a.length)
          .map(escapeLiteral)
          .join('|'),
        'gu',
      )
    : null;
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    if (typeof text !== 'string') throw new TokenizerError('trainByteLevelBPE: texts must be strings');
    const parts = specialRe ? text.split(specialRe) : [text];
    for (const part of parts) {
      for (const [a, b] of findAll(re, part)) {
        let w = '';
        for (const ch of part.slice(a, b)) w += byteLevelOf(ch);
        wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
      }
    }
  }

  // 2. initial vocabulary
  const idToTok: string[] = [];
  const tokToId = new Map<string, number>();
  const add = (t: string) => {
    if (!tokToId.has(t)) {
      tokToId.set(t, idToTok.length);
      idToTok.push(t);
    }
    return tokToId.get(t)!;
  };
  specials.forEach(add);
  byteLevelAlphabet().forEach(add);

  // 3. words as symbol ids, pair statistics
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCounts) {
    words.push([...w].map((ch) => tokToId.get(ch)!));
    counts.push(c);
  }
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const heap = new PairHeap();
  const addPairs = (wi: number, sign: number, changed: Set<number> | null) => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const key = w[i] * SHIFT + w[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        let s = where.get(key);
        if (!s) where.set(key, (s = new Set()));
        s.add(wi);
        changed?.add(key);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1, null);
  for (const [key, c] of pairCount) heap.push(c, key);

  // 4. merges
  const merges: Array<[string, string]> = [];
  while (idToTok.length < vocabSize && heap.size > 0) {
    const [c, key] = heap.pop();
    const actual = pairCount.get(key) ?? 0;
    if (actual !== c) {
      if (actual > 0) heap.push(actual, key);
      continue;
    }
    if (c < minFrequency || c <= 0) break;
    const a = Math.floor(key / SHIFT);
    const b = key - a * SHIFT;
    merges.push([idToTok[a], idToTok[b]]);
    const nid = add(idToTok[a] + idToTok[b]);
    const changed = new Set<number>();
    for (const wi of where.get(key) ?? []) {
      const w = words[wi];
      let has = false;
      for (let i = 0; i + 1 < w.length; i++) if (w[i] === a && w[i + 1] === b) has = true;
      if (!has) continue;
      addPairs(wi, -1, null);
      const nw: number[] = [];
      for (let i = 0; i < w.length; ) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          nw.push(nid);
          i += 2;
        } else nw.push(w[i++]);
      }
      words[wi] = nw;
      addPairs(wi, 1, changed);
    }
    where.delete(key);
    pairCount.delete(key);
    for (const k of changed) {
      const v = pairCount.get(k) ?? 0;
      if (v > 0) heap.push(v, k);
    }
  }

  // 5. the tokenizer
  const vocab: JsonObject = {};
  idToTok.forEach((t, id) => (vocab[t] = id));
  const addedTokens: AddedToken[] = specials.map((s, id) => ({ id, content: s, singleWord: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  return Tokenizer.fromParts({
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([x, y]) => [x, y]),
    },
    addedTokens,
    preTokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    postProcessor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    config: opts.config ?? {},
    chatTemplate: typeof opts.config?.chat_template === 'string' ? opts.config.chat_template : null,
  });
}
