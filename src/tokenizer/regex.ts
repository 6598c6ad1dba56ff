// Translation of the Oniguruma (Ruby syntax) regular expressions found in tokenizer.json (Split pre-tokenizers,
// Replace normalizers/decoders) into JavaScript `u`-flag regular expressions with the same matches, plus the
// match iterator of the Rust `onig` crate (which skips an empty match right after the previous match).
//
// What is translated, and how:
// - `\s` `\S` -> \p{White_Space} (Oniguruma's Unicode \s is exactly White_Space; JS \s differs on U+0085/U+FEFF);
//   `\d` -> \p{Nd}; `\w` -> [\p{L}\p{M}\p{Nd}\p{Pc}]; `\h` -> hex digit; `\b` `\B` -> look-arounds on that \w;
// - `.` -> [^\n]; `^`/`$` -> line anchors on \n only; `\A` `\z` `\Z` -> string anchors; `\R` -> line break;
// - `\p{..}`, `\p{^..}`, `\P{..}`, bare script names (\p{Han}) and Oniguruma's POSIX-like property names;
// - `(?i:...)` / `(?i)` (JS in Node 20 has no inline modifiers) -> every literal letter becomes a class of its
//   simple case-fold equivalents, letter ranges in classes gain their other-case counterparts;
// - possessive quantifiers `*+ ++ ?+` and atomic groups `(?>...)` -> `(?=(?<n>...))\k<n>` (exact emulation);
// - `{,n}` -> `{0,n}`; stacked quantifiers (`X{2}+` is (X{2})+ in Ruby syntax); capture groups become
//   non-capturing (only whole matches are used); literal `{`/`}` are escaped.
// Anything else that cannot be translated faithfully (backreferences, \G, \K, nested classes and `&&`
// intersections, other inline options, case-insensitive Lu/Ll properties...) raises a TokenizerError that quotes
// the pattern and the position.

import { TokenizerError } from './errors.js';

export class RegexTranslationError extends TokenizerError {
  constructor(pattern: string, pos: number, what: string) {
    super(`cannot translate the Oniguruma regex ${JSON.stringify(pattern)} to JavaScript: ${what} at position ${pos}`);
    this.name = 'RegexTranslationError';
  }
}

const WORD_SET = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';
const SPACE_SET = '\\p{White_Space}';
const HEX_SET = '0-9a-fA-F';

/** Code point as a JS `u`-mode literal, valid both inside and outside character classes. */
function lit(cp: number): string {
  if ((cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f) return String.fromCodePoint(cp);
  return `\\u{${cp.toString(16)}}`;
}

// Characters whose simple case folding is not reached through toUpperCase/toLowerCase of a single char.
const EXTRA_FOLDS: Record<number, number[]> = {
  0x73: [0x17f],
  0x53: [0x17f],
  0x17f: [0x73, 0x53],
  0x6b: [0x212a],
  0x4b: [0x212a],
  0x212a: [0x6b, 0x4b],
  0xe5: [0x212b],
  0xc5: [0x212b],
  0x212b: [0xe5, 0xc5],
  0xdf: [0x1e9e],
  0x1e9e: [0xdf],
  0x3c3: [0x3c2],
  0x3a3: [0x3c2],
  0x3c2: [0x3c3, 0x3a3],
  0x3b2: [0x3d0],
  0x3d0: [0x3b2, 0x392],
  0x3b8: [0x3d1, 0x3f4],
  0x3d1: [0x3b8, 0x398],
  0x3c6: [0x3d5],
  0x3d5: [0x3c6, 0x3a6],
  0x3c0: [0x3d6],
  0x3d6: [0x3c0, 0x3a0],
  0x3ba: [0x3f0],
  0x3f0: [0x3ba, 0x39a],
  0x3c1: [0x3f1],
  0x3f1: [0x3c1, 0x3a1],
  0x3b5: [0x3f5],
  0x3f5: [0x3b5, 0x395],
  0x3b9: [0x345, 0x1fbe],
  0x345: [0x3b9, 0x399],
  0x1fbe: [0x3b9, 0x399],
  0x3bc: [0xb5],
  0xb5: [0x3bc, 0x39c],
  0x1e61: [0x1e9b],
  0x1e9b: [0x1e61, 0x1e60],
};

const foldCache = new Map<number, number[]>();
/** All code points equal to `cp` under simple case folding (what a JS `iu` regex treats as equal), cp first. */
function caseVariants(cp: number): number[] {
  const hit = foldCache.get(cp);
  if (hit) return hit;
  const s = String.fromCodePoint(cp);
  const cands = new Set<number>([cp]);
  const add = (t: string) => {
    const a = [...t];
    if (a.length === 1) cands.add(a[0].codePointAt(0)!);
  };
  add(s.toLowerCase());
  add(s.toUpperCase());
  add(s.toUpperCase().toLowerCase());
  add(s.toLowerCase().toUpperCase());
  for (const c of [...cands]) for (const e of EXTRA_FOLDS[c] ?? []) cands.add(e);
  const re = new RegExp(`^${lit(cp)}$`, 'iu');
  const out = [cp, ...[...cands].filter((c) => c !== cp && re.test(String.fromCodePoint(c)))];
  foldCache.set(cp, out);
  return out;
}

/** Oniguruma property name -> JS class contents (without brackets); null if unknown. */
function propertyContents(name: string, negated: boolean): { body: string; multi: boolean } | null {
  const key = name.replace(/[\s_-]/g, '').toLowerCase();
  const special: Record<string, string> = {
    alpha: '\\p{Alphabetic}',
    alphabetic: '\\p{Alphabetic}',
    digit: '\\p{Nd}',
    space: SPACE_SET,
    whitespace: SPACE_SET,
    upper: '\\p{Uppercase}',
    uppercase: '\\p{Uppercase}',
    lower: '\\p{Lowercase}',
    lowercase: '\\p{Lowercase}',
    punct: '\\p{P}',
    cntrl: '\\p{Cc}',
    word: WORD_SET,
    alnum: '\\p{Alphabetic}\\p{Nd}',
    xdigit: HEX_SET,
    any: '\\u{0}-\\u{10ffff}',
    assigned: '\\P{Cn}',
    ascii: '\\u{0}-\\u{7f}',
    blank: '\\p{Zs}\\t',
  };
  let body: string | undefined = special[key];
  if (body === undefined) {
    for (const cand of [name, `sc=${name}`, `Script=${name}`]) {
      try {
        new RegExp(`\\p{${cand}}`, 'u');
        body = `\\p{${cand}}`;
        break;
      } catch {
        /* try the next spelling */
      }
    }
  }
  if (body === undefined) return null;
  const multi = !/^\\p\{[^}]+\}$/.test(body);
  if (negated) {
    if (multi) return { body: `^${body}`, multi: true };
    return { body: body.replace('\\p{', '\\P{'), multi: false };
  }
  return { body, multi };
}

const CASE_PROPS = /^(lu|ll|lt|upper|lower|uppercase|lowercase|uppercaseletter|lowercaseletter|titlecaseletter|lc|casedletter)$/;

interface Group {
  ci: boolean;
  atomic: string | null;
  start: number;
}

/** Translates an Oniguruma pattern to JavaScript regex source for the `u` flag. */
export function translateOniguruma(pattern: string): string {
  const p = pattern;
  let out = '';
  let i = 0;
  let ci = false;
  const stack: Group[] = [];
  let lastAtom = -1; // index in `out` where the last quantifiable atom starts
  let lastWasQuant = false;
  let nAtomic = 0;
  function err(what: string, at: number = i): never {
    throw new RegexTranslationError(pattern, at, what);
  }

  const emitAtom = (s: string) => {
    lastAtom = out.length;
    out += s;
    lastWasQuant = false;
  };
  const emitNonAtom = (s: string) => {
    out += s;
    lastAtom = -1;
    lastWasQuant = false;
  };
  const literal = (cp: number) => {
    if (ci) {
      const v = caseVariants(cp);
      if (v.length > 1) return emitAtom(`[${v.map(lit).join('')}]`);
    }
    emitAtom(lit(cp));
  };

  while (i < p.length) {
    const c = p[i];
    if (c === '\\') {
      const e = readEscape(p, i, false, ci, err);
      i = e.next;
      if (e.kind === 'char') literal(e.cp);
      else if (e.kind === 'set') emitAtom(e.negated ? `[^${e.body}]` : e.multi ? `[${e.body}]` : e.body);
      else emitNonAtom(e.body);
      continue;
    }
    if (c === '[') {
      const r = readClass(p, i, ci, err);
      i = r.next;
      emitAtom(r.source);
      continue;
    }
    if (c === '(') {
      if (p.startsWith('(?#', i)) {
        const end = p.indexOf(')', i);
        if (end < 0) err('unterminated comment');
        i = end + 1;
        continue;
      }
      const look = /^\(\?(?:=|!|<=|<!)/.exec(p.slice(i, i + 4));
      if (p.startsWith('(?:', i) || look) {
        const open = look ? look[0] : '(?:';
        stack.push({ ci, atomic: null, start: out.length });
        out += open;
        i += open.length;
        lastAtom = -1;
        lastWasQuant = false;
        continue;
      }
      if (p.startsWith('(?>', i)) {
        const name = `oa${nAtomic++}`;
        stack.push({ ci, atomic: name, start: out.length });
        out += `(?:(?=(?<${name}>`;
        i += 3;
        lastAtom = -1;
        lastWasQuant = false;
        continue;
      }
      const named = /^\(\?(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')/.exec(p.slice(i, i + 64));
      if (named) {
        stack.push({ ci, atomic: null, start: out.length });
        out += '(?:';
        i += named[0].length;
        lastAtom = -1;
        lastWasQuant = false;
        continue;
      }
      const flags = /^\(\?([imx]*)(?:-([imx]*))?([:)])/.exec(p.slice(i, i + 16));
      if (flags) {
        const on = flags[1];
        const off = flags[2] ?? '';
        if (/[mx]/.test(on + off)) err(`inline option "${flags[0]}" (only i is supported)`);
        const newCi: boolean = on.includes('i') ? true : off.includes('i') ? false : ci;
        if (flags[3] === ':') {
          stack.push({ ci, atomic: null, start: out.length });
          out += '(?:';
          ci = newCi;
        } else {
          ci = newCi; // (?i) applies to the rest of the enclosing group
        }
        i += flags[0].length;
        lastAtom = -1;
        lastWasQuant = false;
        continue;
      }
      if (p.startsWith('(?', i)) err(`unsupported group syntax "${p.slice(i, i + 4)}"`);
      stack.push({ ci, atomic: null, start: out.length });
      out += '(?:';
      i++;
      lastAtom = -1;
      lastWasQuant = false;
      continue;
    }
    if (c === ')') {
      const g = stack.pop();
      if (!g) err('unbalanced ")"');
      out += g.atomic ? `))\\k<${g.atomic}>)` : ')';
      ci = g.ci;
      lastAtom = g.start;
      lastWasQuant = false;
      i++;
      continue;
    }
    if (c === '|') {
      emitNonAtom('|');
      i++;
      continue;
    }
    const q = readQuantifier(p, i);
    if (q) {
      if (lastAtom < 0) err(`quantifier "${q.text}" with nothing to repeat`);
      if (lastWasQuant) {
        // stacked quantifier: the previous quantified atom becomes a group
        out = out.slice(0, lastAtom) + '(?:' + out.slice(lastAtom) + ')';
      }
      i = q.next;
      let quant = q.js;
      if (p[i] === '?') {
        quant += '?';
        i++;
      } else if (p[i] === '+' && !q.interval) {
        // possessive: X*+ == (?>X*)
        const name = `oa${nAtomic++}`;
        const atom = out.slice(lastAtom);
        out = out.slice(0, lastAtom) + `(?:(?=(?<${name}>${atom}${quant}))\\k<${name}>)`;
        i++;
        lastWasQuant = true;
        continue;
      }
      out += quant;
      lastWasQuant = true;
      continue;
    }
    if (c === '.') {
      emitAtom('[^\\n]');
      i++;
      continue;
    }
    if (c === '^') {
      emitNonAtom('(?<![^\\n])');
      i++;
      continue;
    }
    if (c === '$') {
      emitNonAtom('(?![^\\n])');
      i++;
      continue;
    }
    const cp = p.codePointAt(i)!;
    literal(cp);
    i += cp > 0xffff ? 2 : 1;
  }
  if (stack.length) err('unbalanced "("', p.length);
  return out;
}

function readQuantifier(p: string, i: number): { js: string; text: string; next: number; interval: boolean } | null {
  const c = p[i];
  if (c === '*' || c === '+' || c === '?') return { js: c, text: c, next: i + 1, interval: false };
  if (c === '{') {
    const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(p.slice(i, i + 32));
    if (!m || (m[1] === '' && (m[2] === undefined || m[3] === ''))) return null;
    const lo = m[1] === '' ? '0' : m[1];
    const js = m[2] === undefined ? `{${lo}}` : `{${lo},${m[3]}}`;
    return { js, text: m[0], next: i + m[0].length, interval: true };
  }
  return null;
}

type Escape = { kind: 'char'; cp: number; next: number } | { kind: 'set'; body: string; negated: boolean; multi: boolean; next: number } | { kind: 'assert'; body: string; next: number };

const WORD_CLASS = `[${WORD_SET}]`;

function readEscape(p: string, i: number, inClass: boolean, ci: boolean, err: (w: string, at?: number) => never): Escape {
  const c = p[i + 1];
  if (c === undefined) err('trailing backslash', i);
  const set = (body: string, negated = false, multi = false): Escape => ({ kind: 'set', body, negated, multi, next: i + 2 });
  const ch = (cp: number, len = 2): Escape => ({ kind: 'char', cp, next: i + len });
  switch (c) {
    case 's':
      return set(SPACE_SET);
    case 'S':
      return set('\\P{White_Space}');
    case 'd':
      return set('\\p{Nd}');
    case 'D':
      return set('\\P{Nd}');
    case 'w':
      return set(WORD_SET, false, true);
    case 'W':
      return set(WORD_SET, true, true);
    case 'h':
      return set(HEX_SET, false, true);
    case 'H':
      return set(HEX_SET, true, true);
    case 'n':
      return ch(10);
    case 't':
      return ch(9);
    case 'r':
      return ch(13);
    case 'f':
      return ch(12);
    case 'v':
      return ch(11);
    case 'a':
      return ch(7);
    case 'e':
      return ch(27);
    case 'p':
    case 'P': {
      const m = /^\\[pP]\{(\^?)([^}]*)\}/.exec(p.slice(i, i + 80));
      if (!m) err('malformed \\p{...}', i);
      const negated = (c === 'P') !== (m[1] === '^');
      if (ci && CASE_PROPS.test(m[2].replace(/[\s_-]/g, '').toLowerCase())) err(`case-sensitive property \\p{${m[2]}} inside a case-insensitive group`, i);
      const pc = propertyContents(m[2], negated);
      if (!pc) err(`unknown Unicode property "${m[2]}"`, i);
      if (pc.body.startsWith('^')) return { kind: 'set', body: pc.body.slice(1), negated: true, multi: true, next: i + m[0].length };
      return { kind: 'set', body: pc.body, negated: false, multi: pc.multi, next: i + m[0].length };
    }
    case 'x': {
      const m = /^\\x(?:\{([0-9a-fA-F]{1,8})\}|([0-9a-fA-F]{1,2}))/.exec(p.slice(i, i + 14));
      if (!m) err('malformed \\x escape', i);
      const cp = parseInt(m[1] ?? m[2], 16);
      if (cp > 0x10ffff) err('code point out of range', i);
      return ch(cp, m[0].length);
    }
    case 'u': {
      const m = /^\\u([0-9a-fA-F]{4})/.exec(p.slice(i, i + 6));
      if (!m) err('malformed \\u escape', i);
      return ch(parseInt(m[1], 16), 6);
    }
    case '0': {
      const m = /^\\0([0-7]{0,2})/.exec(p.slice(i, i + 4))!;
      return ch(parseInt(m[1] || '0', 8), m[0].length);
    }
  }
  if (!inClass) {
    switch (c) {
      case 'b':
        return { kind: 'assert', body: `(?:(?<=${WORD_CLASS})(?!${WORD_CLASS})|(?<!${WORD_CLASS})(?=${WORD_CLASS}))`, next: i + 2 };
      case 'B':
        return { kind: 'assert', body: `(?:(?<=${WORD_CLASS})(?=${WORD_CLASS})|(?<!${WORD_CLASS})(?!${WORD_CLASS}))`, next: i + 2 };
      case 'A':
        return { kind: 'assert', body: '(?<![\\s\\S])', next: i + 2 };
      case 'z':
        return { kind: 'assert', body: '(?![\\s\\S])', next: i + 2 };
      case 'Z':
        return { kind: 'assert', body: '(?=\\n?(?![\\s\\S]))', next: i + 2 };
      case 'R':
        return { kind: 'assert', body: '(?:\\r\\n|[\\n\\v\\f\\r\\u{85}\\u{2028}\\u{2029}])', next: i + 2 };
    }
  }
  if (/[0-9A-Za-z]/.test(c)) err(`unsupported escape "\\${c}"`, i);
  const cp = p.codePointAt(i + 1)!;
  return ch(cp, cp > 0xffff ? 3 : 2);
}

const POSIX: Record<string, string> = {
  alpha: '\\p{Alphabetic}',
  digit: '\\p{Nd}',
  alnum: '\\p{Alphabetic}\\p{Nd}',
  space: SPACE_SET,
  upper: '\\p{Uppercase}',
  lower: '\\p{Lowercase}',
  xdigit: HEX_SET,
  word: WORD_SET,
  cntrl: '\\p{Cc}',
  blank: '\\p{Zs}\\t',
  punct: '\\p{P}',
};

/** Reads a character class starting at p[i] === '['. */
function readClass(p: string, i: number, ci: boolean, err: (w: string, at?: number) => never): { source: string; next: number } {
  const start = i;
  i++;
  let negated = false;
  if (p[i] === '^') {
    negated = true;
    i++;
  }
  const parts: string[] = [];
  let first = true;
  const addChar = (cp: number) => {
    if (ci) for (const v of caseVariants(cp)) parts.push(lit(v));
    else parts.push(lit(cp));
  };
  const addRange = (lo: number, hi: number, at: number) => {
    if (hi < lo) err('character class range out of order', at);
    parts.push(`${lit(lo)}-${lit(hi)}`);
    if (ci) {
      if (hi - lo > 0x3000) err('case-insensitive character range too large to expand', at);
      for (let cp = lo; cp <= hi; cp++) for (const v of caseVariants(cp)) if (v < lo || v > hi) parts.push(lit(v));
    }
  };
  // reads one class "atom": a single code point, or a set (returns null cp)
  const readItem = (): { cp: number | null; at: number } => {
    const at = i;
    const c = p[i];
    if (c === '\\') {
      const e = readEscape(p, i, true, ci, err);
      i = e.next;
      if (e.kind === 'char') return { cp: e.cp, at };
      if (e.kind === 'set') {
        if (e.negated) {
          if (e.multi) err('negated multi-property escape (\\W, \\H, \\P{Word}...) inside a character class', at);
          parts.push(e.body);
        } else parts.push(e.body);
        return { cp: null, at };
      }
      err('assertion inside a character class', at);
    }
    if (c === '[') {
      const m = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(i, i + 16));
      if (!m) err('nested character class', at);
      const body = POSIX[m[2]];
      if (!body) err(`unsupported POSIX class [:${m[2]}:]`, at);
      if (m[1] === '^') {
        if (!/^\\p\{[^}]+\}$/.test(body)) err(`negated POSIX class [:^${m[2]}:] inside a character class`, at);
        parts.push(body.replace('\\p{', '\\P{'));
      } else {
        if (ci && (m[2] === 'upper' || m[2] === 'lower')) err(`POSIX class [:${m[2]}:] inside a case-insensitive group`, at);
        parts.push(body);
      }
      i += m[0].length;
      return { cp: null, at };
    }
    const cp = p.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    return { cp, at };
  };
  for (;;) {
    if (i >= p.length) err('unterminated character class', start);
    if (p[i] === ']' && !first) {
      i++;
      break;
    }
    if (p.startsWith('&&', i)) err('character class intersection "&&"', i);
    first = false;
    const a = readItem();
    if (a.cp === null) continue;
    if (p[i] === '-' && i + 1 < p.length && p[i + 1] !== ']') {
      i++;
      const b = readItem();
      if (b.cp === null) err('character class range ending in a set', b.at);
      addRange(a.cp, b.cp, a.at);
    } else addChar(a.cp);
  }
  return { source: `[${negated ? '^' : ''}${parts.join('')}]`, next: i };
}

const compiled = new Map<string, RegExp>();
/** Compiles (and caches) an Oniguruma pattern as a global JS regex. */
export function compileOniguruma(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const src = translateOniguruma(pattern);
    try {
      re = new RegExp(src, 'gu');
    } catch (e) {
      throw new TokenizerError(`cannot translate the Oniguruma regex ${JSON.stringify(pattern)}: the translation ${JSON.stringify(src)} is rejected by JavaScript (${(e as Error).message})`);
    }
    compiled.set(pattern, re);
  }
  return re;
}

/** Escapes a literal string for use as a JS `u` regex. */
export function escapeLiteral(s: string): string {
  let out = '';
  for (const ch of s) out += lit(ch.codePointAt(0)!);
  return out;
}

/**
 * Calls `cb(start, end)` for every match of `re` (a global regex) in `s`, in UTF-16 units, with the `onig`
 * crate's iteration rule: an empty match right where the previous match ended is skipped (search moves on one
 * char). Matches starting between the halves of a surrogate pair are skipped too.
 */
export function forEachMatch(re: RegExp, s: string, cb: (start: number, end: number) => void): void {
  let lastEnd = 0;
  let lastMatchEnd = -1;
  while (lastEnd <= s.length) {
    re.lastIndex = lastEnd;
    const m = re.exec(s);
    if (!m) break;
    const st = m.index;
    const en = st + m[0].length;
    if (st > 0 && st < s.length && (s.charCodeAt(st) & 0xfc00) === 0xdc00 && (s.charCodeAt(st - 1) & 0xfc00) === 0xd800) {
      // V8 may report a match starting between the two halves of a surrogate pair; Oniguruma works on code points
      lastEnd = st + 1;
      continue;
    }
    if (st === en && lastMatchEnd === en) {
      if (lastEnd >= s.length) break;
      const cc = s.charCodeAt(lastEnd);
      lastEnd += cc >= 0xd800 && cc <= 0xdbff && lastEnd + 1 < s.length ? 2 : 1;
      continue;
    }
    lastEnd = en;
    lastMatchEnd = en;
    cb(st, en);
  }
}

/** All matches of `re` in `s` as [start, end) pairs (see forEachMatch). */
export function findAll(re: RegExp, s: string): Array<[number, number]> {
  const res: Array<[number, number]> = [];
  forEachMatch(re, s, (a, b) => res.push([a, b]));
  return res;
}
