// A piece of text as it moves through the tokenizer pipeline: the current (normalized) string plus, for every
// UTF-16 unit of it, the [start, end) span of the input text it came from, so that token offsets can be mapped
// back to the caller's string. Also the splitting primitive shared by the pre-tokenizers (the five
// SplitDelimiterBehavior modes of the `tokenizers` library).

import { findAll } from './regex.js';

export type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** A list of [start, end, isMatch] covering the whole string, in order. */
export type MatchList = Array<[number, number, boolean]>;

export class NormalizedString {
  /** Current text. */
  text: string;
  /** starts[k], ends[k]: span in the original input of text unit k. */
  starts: number[];
  ends: number[];
  /** Offset in the original input where this piece starts (the `original_shift` of the tokenizers library). */
  readonly originalStart: number;
  readonly originalEnd: number;

  constructor(text: string, starts: number[], ends: number[], originalStart: number, originalEnd: number) {
    this.text = text;
    this.starts = starts;
    this.ends = ends;
    this.originalStart = originalStart;
    this.originalEnd = originalEnd;
  }

  /** A piece covering `text` exactly, starting at `offset` in the original input. */
  static fromOriginal(text: string, offset = 0): NormalizedString {
    const n = text.length;
    const starts = new Array<number>(n);
    const ends = new Array<number>(n);
    for (let k = 0; k < n; ) {
      const c = text.charCodeAt(k);
      const w = c >= 0xd800 && c <= 0xdbff && k + 1 < n && (text.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      for (let j = 0; j < w; j++) {
        starts[k + j] = offset + k;
        ends[k + j] = offset + k + w;
      }
      k += w;
    }
    return new NormalizedString(text, starts, ends, offset, offset + n);
  }

  get length(): number {
    return this.text.length;
  }

  isEmpty(): boolean {
    return this.text.length === 0;
  }

  /** Original span of the normalized units [a, b). */
  originalSpan(a: number, b: number): [number, number] {
    if (b <= a || this.text.length === 0) {
      const at = a < this.starts.length ? this.starts[a] : this.text.length ? this.ends[this.text.length - 1] : this.originalStart;
      return [at, at];
    }
    return [this.starts[a], this.ends[b - 1]];
  }

  /** Sub-piece of normalized units [a, b). */
  slice(a: number, b: number): NormalizedString {
    const st = this.starts.slice(a, b);
    const en = this.ends.slice(a, b);
    const os = b > a ? st[0] : a < this.starts.length ? this.starts[a] : this.originalEnd;
    const oe = b > a ? en[en.length - 1] : os;
    return new NormalizedString(this.text.slice(a, b), st, en, os, oe);
  }

  /**
   * Rewrites the text code point by code point: `fn` returns the replacement of each code point (possibly empty
   * or several chars); every produced unit keeps the span of the code point it came from.
   */
  mapChars(fn: (ch: string) => string): this {
    let text = '';
    const starts: number[] = [];
    const ends: number[] = [];
    const s = this.text;
    for (let k = 0; k < s.length; ) {
      const c = s.charCodeAt(k);
      const w = c >= 0xd800 && c <= 0xdbff && k + 1 < s.length && (s.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
      const ch = w === 2 ? s.slice(k, k + 2) : s[k];
      const rep = fn(ch);
      const st = this.starts[k];
      const en = this.ends[k + w - 1];
      text += rep;
      for (let j = 0; j < rep.length; j++) {
        starts.push(st);
        ends.push(en);
      }
      k += w;
    }
    this.text = text;
    this.starts = starts;
    this.ends = ends;
    return this;
  }

  /** Replaces the normalized units [a, b) by `rep`; new units take the span of what they replace. */
  private splice(a: number, b: number, rep: string, spanFrom: [number, number]): void {
    this.text = this.text.slice(0, a) + rep + this.text.slice(b);
    const st = new Array<number>(rep.length).fill(spanFrom[0]);
    const en = new Array<number>(rep.length).fill(spanFrom[1]);
    this.starts.splice(a, b - a, ...st);
    this.ends.splice(a, b - a, ...en);
  }

  /** Inserts `s` at the front; it is aligned with the first character (nothing happens on an empty string). */
  prepend(s: string): this {
    if (this.text.length === 0 || s.length === 0) return this;
    this.splice(0, 0, s, [this.starts[0], this.ends[0]]);
    return this;
  }

  /** Appends `s`; it is aligned with the last character (nothing happens on an empty string). */
  append(s: string): this {
    const n = this.text.length;
    if (n === 0 || s.length === 0) return this;
    this.splice(n, n, s, [this.starts[n - 1], this.ends[n - 1]]);
    return this;
  }

  /** Replaces every match of `re` (global, u) by `content`. */
  replaceRegex(re: RegExp, content: string): this {
    const matches = findAll(re, this.text);
    for (let m = matches.length - 1; m >= 0; m--) {
      const [a, b] = matches[m];
      const span: [number, number] = b > a ? [this.starts[a], this.ends[b - 1]] : this.originalSpan(a, a);
      this.splice(a, b, content, span);
    }
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
    this.text = this.text.slice(a, b);
    this.starts = this.starts.slice(a, b);
    this.ends = this.ends.slice(a, b);
    return this;
  }

  /**
   * Unicode normalization. The text is normalized as a whole (so the result is exactly String#normalize).
   * Alignments follow the tokenizers library: the string is cut into runs (a character and the combining marks
   * after it) that are normalized separately; inside a run, the k-th output character takes the span of the k-th
   * input character (the last one when the run grew), so a composed character points at its base character and
   * decomposed characters all point at their source. If the runs do not normalize independently (rare), every
   * character of the piece gets the span of the whole piece.
   */
  unicodeNormalize(form: 'NFC' | 'NFD' | 'NFKC' | 'NFKD'): this {
    const whole = this.text.normalize(form);
    if (whole === this.text) return this;
    const s = this.text;
    const mark = /^\p{M}$/u;
    // code point starts of the input
    const cps: number[] = [];
    for (let k = 0; k < s.length; ) {
      cps.push(k);
      k += s.charCodeAt(k) >= 0xd800 && s.charCodeAt(k) <= 0xdbff && k + 1 < s.length && (s.charCodeAt(k + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
    }
    cps.push(s.length);
    let text = '';
    const starts: number[] = [];
    const ends: number[] = [];
    let r0 = 0; // index into cps of the run start
    for (let c = 1; c <= cps.length - 1; c++) {
      const atEnd = c === cps.length - 1;
      if (!atEnd && mark.test(s.slice(cps[c], cps[c + 1]))) continue;
      const inChars = c - r0;
      const outChars = [...s.slice(cps[r0], cps[c]).normalize(form)];
      // output char -> input char of the run: unchanged chars are matched from the end; the others share the
      // input char of the output char before them (the first one: the run's base character)
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
      let k = 0;
      for (const ch of outChars) {
        const src = cps[r0 + map[k]];
        const srcEnd = this.ends[src + (s.charCodeAt(src) >= 0xd800 && s.charCodeAt(src) <= 0xdbff && src + 1 < s.length ? 1 : 0)];
        for (let j = 0; j < ch.length; j++) {
          starts.push(this.starts[src]);
          ends.push(srcEnd);
        }
        text += ch;
        k++;
      }
      r0 = c;
    }
    if (text !== whole) {
      const st = this.starts[0];
      const en = this.ends[s.length - 1];
      this.starts = new Array<number>(whole.length).fill(st);
      this.ends = new Array<number>(whole.length).fill(en);
    } else {
      this.starts = starts;
      this.ends = ends;
    }
    this.text = whole;
    return this;
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
