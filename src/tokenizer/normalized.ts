// A piece of text as it moves through the tokenizer pipeline: the current (normalized) string plus, for every
// UTF-16 unit of it, the [start, end) span of the input text it came from, so that token offsets can be mapped
// back to the caller's string. Also the splitting primitive shared by the pre-tokenizers (the five
// SplitDelimiterBehavior modes of the `tokenizers` library).

import { findAll, forEachMatch } from './regex.js';

export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** A list of [start, end, isMatch] covering the whole string, in order. */
type MatchList = Array<[number, number, boolean]>;

/** Growable pair of Int32 alignment arrays. */
class AlignBuilder {
  starts: Int32Array;
  ends: Int32Array;
  n = 0;
  constructor(capacity: number) {
    this.starts = new Int32Array(Math.max(8, capacity));
    this.ends = new Int32Array(Math.max(8, capacity));
  }
  push(st: number, en: number, count: number): void {
    if (this.n + count > this.starts.length) {
      const cap = Math.max(this.starts.length * 2, this.n + count);
      const s2 = new Int32Array(cap);
      const e2 = new Int32Array(cap);
      s2.set(this.starts.subarray(0, this.n));
      e2.set(this.ends.subarray(0, this.n));
      this.starts = s2;
      this.ends = e2;
    }
    this.starts.fill(st, this.n, this.n + count);
    this.ends.fill(en, this.n, this.n + count);
    this.n += count;
  }
  copy(starts: Int32Array, ends: Int32Array, a: number, b: number): void {
    const count = b - a;
    if (count <= 0) return;
    this.push(0, 0, count);
    this.starts.set(starts.subarray(a, b), this.n - count);
    this.ends.set(ends.subarray(a, b), this.n - count);
  }
}

export class NormalizedString {
  /** Current text. */
  text: string;
  /**
   * starts[k], ends[k]: span in the original input of text unit k. Null when alignment is not tracked (encoding
   * without offsets), which makes every operation a plain string operation.
   */
  starts: Int32Array | null;
  ends: Int32Array | null;
  /** Offset in the original input where this piece starts (the `original_shift` of the tokenizers library). */
  readonly originalStart: number;
  /** Untracked pieces: true while the text is still an unmodified slice of the input. */
  private exact: boolean;

  constructor(text: string, starts: Int32Array | null, ends: Int32Array | null, originalStart: number, exact = false) {
    this.text = text;
    this.starts = starts;
    this.ends = ends;
    this.originalStart = originalStart;
    this.exact = exact;
  }

  /** A piece covering `text` exactly, starting at `offset` in the original input. */
  static fromOriginal(text: string, offset = 0, track = true): NormalizedString {
    if (!track) return new NormalizedString(text, null, null, offset, true);
    const n = text.length;
    const starts = new Int32Array(n);
    const ends = new Int32Array(n);
    for (let k = 0; k < n; ) {
      const c = text.charCodeAt(k);
      const w = c >= 0xd800 && c <= 0xdbff && k + 1 < n && (text.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      for (let j = 0; j < w; j++) {
        starts[k + j] = offset + k;
        ends[k + j] = offset + k + w;
      }
      k += w;
    }
    return new NormalizedString(text, starts, ends, offset);
  }

  get length(): number {
    return this.text.length;
  }

  isEmpty(): boolean {
    return this.text.length === 0;
  }

  /** Original span of the normalized units [a, b) ([0, 0] when alignment is not tracked). */
  originalSpan(a: number, b: number): [number, number] {
    const st = this.starts;
    const en = this.ends;
    if (!st || !en) return [0, 0];
    if (b <= a || this.text.length === 0) {
      const at = a < st.length ? st[a] : this.text.length ? en[this.text.length - 1] : this.originalStart;
      return [at, at];
    }
    return [st[a], en[b - 1]];
  }

  /** Sub-piece of normalized units [a, b) (shares the alignment buffers). */
  slice(a: number, b: number): NormalizedString {
    const text = this.text.slice(a, b);
    if (!this.starts || !this.ends) {
      // untracked: exact while unmodified; otherwise only "starts at the input start or not" is kept
      const os = this.exact || a === 0 ? this.originalStart + a : this.originalStart + Math.max(1, a);
      return new NormalizedString(text, null, null, os, this.exact);
    }
    const st = this.starts.subarray(a, b);
    const en = this.ends.subarray(a, b);
    const os = b > a ? st[0] : a < this.starts.length ? this.starts[a] : this.text.length ? this.ends[this.text.length - 1] : this.originalStart;
    return new NormalizedString(text, st, en, os);
  }

  /**
   * Rewrites the text code point by code point: `fn` returns the replacement of each code point (possibly empty
   * or several chars); every produced unit keeps the span of the code point it came from.
   */
  mapChars(fn: (ch: string) => string): this {
    const parts: string[] = [];
    const s = this.text;
    const st = this.starts;
    const en = this.ends;
    const out = st ? new AlignBuilder(s.length * 2) : null;
    for (let k = 0; k < s.length; ) {
      const c = s.charCodeAt(k);
      const w = c >= 0xd800 && c <= 0xdbff && k + 1 < s.length && (s.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      const rep = fn(w === 2 ? s.slice(k, k + 2) : s[k]);
      if (rep.length) {
        parts.push(rep);
        if (out) out.push(st![k], en![k + w - 1], rep.length);
      }
      k += w;
    }
    this.setText(parts.join(''), out);
    return this;
  }

  private setText(text: string, out: AlignBuilder | null): void {
    if (text !== this.text) this.exact = false;
    this.text = text;
    if (out) {
      this.starts = out.starts.subarray(0, out.n);
      this.ends = out.ends.subarray(0, out.n);
    }
  }

  /** Replaces non-overlapping ranges (sorted) by strings; new units take the span of what they replace. */
  private replaceRanges(ranges: Array<[number, number, string]>): void {
    const s = this.text;
    const parts: string[] = [];
    const st = this.starts;
    const en = this.ends;
    const out = st && en ? new AlignBuilder(s.length + 16) : null;
    let prev = 0;
    for (const [a, b, rep] of ranges) {
      parts.push(s.slice(prev, a), rep);
      if (out) {
        out.copy(st!, en!, prev, a);
        const span = b > a ? [st![a], en![b - 1]] : this.originalSpan(a, a);
        out.push(span[0], span[1], rep.length);
      }
      prev = b;
    }
    parts.push(s.slice(prev));
    if (out) out.copy(st!, en!, prev, s.length);
    this.setText(parts.join(''), out);
  }

  /** Inserts `s` at the front; it is aligned with the first character (nothing happens on an empty string). */
  prepend(s: string): this {
    if (this.text.length === 0 || s.length === 0) return this;
    this.replaceRanges([[0, 0, s]]);
    if (this.starts && this.ends) {
      this.starts.fill(this.starts[s.length], 0, s.length);
      this.ends.fill(this.ends[s.length], 0, s.length);
    }
    return this;
  }

  /** Appends `s`; it is aligned with the last character (nothing happens on an empty string). */
  append(s: string): this {
    const n = this.text.length;
    if (n === 0 || s.length === 0) return this;
    const st = this.starts ? this.starts[n - 1] : 0;
    const en = this.ends ? this.ends[n - 1] : 0;
    this.replaceRanges([[n, n, s]]);
    if (this.starts && this.ends) {
      this.starts.fill(st, n);
      this.ends.fill(en, n);
    }
    return this;
  }

  /** Replaces every match of `re` (global, u) by `content`. */
  replaceRegex(re: RegExp, content: string): this {
    const matches = findAll(re, this.text);
    if (matches.length) this.replaceRanges(matches.map(([a, b]) => [a, b, content]));
    return this;
  }

  /** Removes leading and/or trailing whitespace (Unicode White_Space). */
  strip(left: boolean, right: boolean): this {
    let a = 0;
    let b = this.text.length;
    const ws = /\p{White_Space}/u;
    if (left) while (a < b && ws.test(this.text[a])) a++;
    if (right) while (b > a && ws.test(this.text[b - 1])) b--;
    if (a === 0 && b === this.text.length) return this;
    this.exact = false;
    this.text = this.text.slice(a, b);
    if (this.starts && this.ends) {
      this.starts = this.starts.subarray(a, b);
      this.ends = this.ends.subarray(a, b);
    }
    return this;
  }

  /**
   * Unicode normalization. The text is normalized as a whole (so the result is exactly String#normalize).
   * Alignments follow the tokenizers library: the string is cut into runs (a character and the combining marks
   * after it) that are normalized separately; unchanged characters keep their own span, the others share the
   * span of the output character before them (the first one: the run's base character), so a composed character
   * points at its base character and decomposed characters all point at their source. If the runs do not
   * normalize independently (rare), every character of the piece gets the span of the whole piece.
   */
  unicodeNormalize(form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD'): this {
    const whole = this.text.normalize(form);
    if (whole === this.text) return this;
    this.exact = false;
    if (!this.starts || !this.ends) {
      this.text = whole;
      return this;
    }
    const s = this.text;
    const mark = /^\p{M}$/u;
    const cps: number[] = [];
    for (let k = 0; k < s.length; ) {
      cps.push(k);
      k += s.charCodeAt(k) >= 0xd800 && s.charCodeAt(k) <= 0xdbff && k + 1 < s.length && (s.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
    }
    cps.push(s.length);
    let text = '';
    const out = new AlignBuilder(whole.length);
    let r0 = 0;
    for (let c = 1; c <= cps.length - 1; c++) {
      const atEnd = c === cps.length - 1;
      if (!atEnd && mark.test(s.slice(cps[c], cps[c + 1]))) continue;
      const inChars = c - r0;
      const outChars = [...s.slice(cps[r0], cps[c]).normalize(form)];
      const map = new Array<number>(outChars.length).fill(-1);
      let q = inChars - 1;
      for (let k = outChars.length - 1; k >= 0 && q >= 0; k--) {
        for (let j = q; j >= 0; j--) {
          if (s.slice(cps[r0 + j], cps[r0 + j + 1]) === outChars[k]) {
            map[k] = j;
            q = j - 1;
            break;
          }
        }
      }
      for (let k = 0; k < outChars.length; k++) if (map[k] < 0 || (k > 0 && map[k] < map[k - 1])) map[k] = k === 0 ? 0 : map[k - 1];
      outChars.forEach((ch, k) => {
        const src = r0 + map[k];
        out.push(this.starts![cps[src]], this.ends![cps[src + 1] - 1], ch.length);
        text += ch;
      });
      r0 = c;
    }
    if (text !== whole) {
      const st = this.starts[0];
      const en = this.ends[s.length - 1];
      this.starts = new Int32Array(whole.length).fill(st);
      this.ends = new Int32Array(whole.length).fill(en);
    } else {
      this.starts = out.starts.subarray(0, out.n);
      this.ends = out.ends.subarray(0, out.n);
    }
    this.text = whole;
    return this;
  }

  /** Splits on the matches of `re`, keeping matches and gaps as pieces (Isolated behavior), without lists. */
  splitIsolated(re: RegExp, out: NormalizedString[]): void {
    const s = this.text;
    let prev = 0;
    forEachMatch(re, s, (a, b) => {
      if (a > prev) out.push(this.slice(prev, a));
      if (b > a) out.push(this.slice(a, b));
      prev = b;
    });
    if (s.length > prev) out.push(this.slice(prev, s.length));
  }

  /** Splits with a list of matches and a delimiter behavior; empty pieces are dropped. */
  splitByMatches(matches: MatchList, behavior: SplitBehavior): NormalizedString[] {
    const keep = splitSpans(matches, behavior);
    const out: NormalizedString[] = [];
    for (const [a, b] of keep) if (b > a) out.push(this.slice(a, b));
    return out;
  }
}

/** Matches of a regex over `s`, covering the whole string (the `find_matches` of the tokenizers library). */
export function regexMatchList(re: RegExp, s: string, invert = false): MatchList {
  if (s.length === 0) return [[0, 0, invert]];
  const out: MatchList = [];
  let prev = 0;
  for (const [a, b] of findAll(re, s)) {
    if (prev !== a) out.push([prev, a, invert]);
    out.push([a, b, !invert]);
    prev = b;
  }
  if (prev !== s.length) out.push([prev, s.length, invert]);
  return out;
}

/** Matches of single code points satisfying `pred`, covering the whole string. */
export function charMatchList(pred: (ch: string) => boolean, s: string, invert = false): MatchList {
  if (s.length === 0) return [[0, 0, invert]];
  const out: MatchList = [];
  let last = 0;
  for (let k = 0; k < s.length; ) {
    const w = s.charCodeAt(k) >= 0xd800 && s.charCodeAt(k) <= 0xdbff && k + 1 < s.length ? 2 : 1;
    if (pred(s.slice(k, k + w))) {
      if (last < k) out.push([last, k, invert]);
      out.push([k, k + w, !invert]);
      last = k + w;
    }
    k += w;
  }
  if (s.length > last) out.push([last, s.length, invert]);
  return out;
}

/** Applies a delimiter behavior to a match list: the spans to keep. */
function splitSpans(matches: MatchList, behavior: SplitBehavior): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  switch (behavior) {
    case 'Isolated':
      for (const [a, b] of matches) out.push([a, b]);
      return out;
    case 'Removed':
      for (const [a, b, m] of matches) if (!m) out.push([a, b]);
      return out;
    case 'Contiguous': {
      let prevMatch = false;
      for (const [a, b, m] of matches) {
        if (m === prevMatch && out.length) out[out.length - 1][1] = b;
        else out.push([a, b]);
        prevMatch = m;
      }
      return out;
    }
    case 'MergedWithPrevious': {
      let prevMatch = false;
      for (const [a, b, m] of matches) {
        if (m && !prevMatch && out.length) out[out.length - 1][1] = b;
        else out.push([a, b]);
        prevMatch = m;
      }
      return out;
    }
    case 'MergedWithNext': {
      let prevMatch = false;
      for (let k = matches.length - 1; k >= 0; k--) {
        const [a, b, m] = matches[k];
        if (m && !prevMatch && out.length) out[out.length - 1][0] = a;
        else out.push([a, b]);
        prevMatch = m;
      }
      out.reverse();
      return out;
    }
  }
}
