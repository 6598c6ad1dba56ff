// Added and special tokens ("added_tokens" of tokenizer.json). They are matched in the text before the model
// sees it, as the tokenizers library does: first the tokens with normalized=false on the raw text, then (after
// the normalizer ran on the remaining pieces) the tokens with normalized=true on the normalized text. Matching
// is leftmost-longest; single_word, lstrip and rstrip are honoured as in the library.

import { Reader, TokenizerFormatError, type Json } from './errors.js';
import { NormalizedString } from './normalized.js';
import { normalizeString, type Normalizer } from './normalizers.js';
import { escapeLiteral } from './regex.js';

export interface AddedToken {
  id: number;
  content: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export function readAddedTokens(json: Json | undefined, path = 'added_tokens'): AddedToken[] {
  if (json === undefined || json === null) return [];
  if (!Array.isArray(json)) throw new TokenizerFormatError(path, 'expected an array');
  return json.map((t, k) => {
    const r = Reader.of(t, `${path}[${k}]`);
    const special = r.bool('special', false);
    return {
      id: r.int('id'),
      content: r.string('content'),
      singleWord: r.bool('single_word', false),
      lstrip: r.bool('lstrip', false),
      rstrip: r.bool('rstrip', false),
      normalized: r.bool('normalized', !special),
      special,
    };
  });
}

/** A piece of the text: either an added token (with its id) or text left for the model. */
interface Split {
  ns: NormalizedString;
  tokenId: number | null;
}

const WORD_END = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;
const WORD_START = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const SPACES_AT_END = /\p{White_Space}*$/u;
const SPACES_AT_START = /^\p{White_Space}*/u;

class Matcher {
  private readonly re: RegExp | null;
  private readonly byPattern: Map<string, AddedToken>;
  constructor(entries: Array<[string, AddedToken]>) {
    this.byPattern = new Map();
    for (const [p, t] of entries) if (p.length && !this.byPattern.has(p)) this.byPattern.set(p, t);
    const pats = [...this.byPattern.keys()].sort((a, b) => b.length - a.length);
    // JS alternation is leftmost-first; with longer patterns first it is leftmost-longest.
    this.re = pats.length ? new RegExp(pats.map(escapeLiteral).join('|'), 'gu') : null;
  }

  /** The splits of `s` as [start, end, token|null] (the find_matches of the tokenizers library). */
  find(s: string): Array<[number, number, AddedToken | null]> {
    if (s.length === 0) return [[0, 0, null]];
    if (!this.re) return [[0, s.length, null]];
    const out: Array<[number, number, AddedToken | null]> = [];
    let startOffset = 0;
    this.re.lastIndex = 0;
    for (let m = this.re.exec(s); m; m = this.re.exec(s)) {
      let start = m.index;
      let stop = start + m[0].length;
      const tok = this.byPattern.get(m[0])!;
      if (tok.singleWord) {
        const startSpace = start === 0 || !WORD_END.test(s.slice(0, start));
        const stopSpace = stop === s.length || !WORD_START.test(s.slice(stop));
        if (!startSpace || !stopSpace) continue;
      }
      if (tok.lstrip) {
        const lead = SPACES_AT_END.exec(s.slice(0, start))!;
        start = Math.max(lead.index, startOffset);
      }
      if (tok.rstrip) {
        stop += SPACES_AT_START.exec(s.slice(stop))![0].length;
        this.re.lastIndex = stop;
      }
      if (startOffset < start) out.push([startOffset, start, null]);
      out.push([start, stop, tok]);
      startOffset = stop;
    }
    if (startOffset !== s.length) out.push([startOffset, s.length, null]);
    return out;
  }
}

export class AddedVocabulary {
  readonly tokens: AddedToken[];
  private readonly byContent = new Map<string, AddedToken>();
  private readonly byId = new Map<number, AddedToken>();
  private readonly decodeForms = new Map<number, string>();
  private rawMatcher: Matcher;
  private normMatcher: Matcher;

  constructor(tokens: AddedToken[], normalizer: Normalizer | null) {
    this.tokens = tokens;
    for (const t of tokens) {
      this.byContent.set(t.content, t);
      this.byId.set(t.id, t);
    }
    this.rawMatcher = new Matcher(tokens.filter((t) => !t.normalized).map((t) => [t.content, t]));
    const norm = tokens.filter((t) => t.normalized).map((t): [string, AddedToken] => [normalizeString(normalizer, t.content), t]);
    for (const [p, t] of norm) if (p !== t.content) this.decodeForms.set(t.id, p);
    this.normMatcher = new Matcher(norm);
  }

  tokenToId(s: string): number | undefined {
    return this.byContent.get(s)?.id;
  }

  idToToken(id: number): string | undefined {
    return this.byId.get(id)?.content;
  }

  /** The string decoders see for an added token: its normalized form when it is a normalized token. */
  decodeForm(id: number): string | undefined {
    return this.decodeForms.get(id) ?? this.byId.get(id)?.content;
  }

  get(id: number): AddedToken | undefined {
    return this.byId.get(id);
  }

  isSpecialId(id: number): boolean {
    return this.byId.get(id)?.special ?? false;
  }

  isSpecialContent(s: string): boolean {
    return this.byContent.get(s)?.special ?? false;
  }

  private splitWith(piece: NormalizedString, m: Matcher): Split[] {
    const out: Split[] = [];
    for (const [a, b, tok] of m.find(piece.text)) {
      if (b <= a) continue;
      out.push({ ns: piece.slice(a, b), tokenId: tok ? tok.id : null });
    }
    return out;
  }

  /** Splits the input on added tokens and normalizes the rest (extract_and_normalize). */
  extractAndNormalize(text: string, normalizer: Normalizer | null, trackOffsets = true): Split[] {
    const first = this.splitWith(NormalizedString.fromOriginal(text, 0, trackOffsets), this.rawMatcher);
    const out: Split[] = [];
    for (const s of first) {
      if (s.tokenId !== null) {
        out.push(s);
        continue;
      }
      if (normalizer) normalizer.normalize(s.ns);
      if (s.ns.isEmpty()) continue;
      out.push(...this.splitWith(s.ns, this.normMatcher));
    }
    return out;
  }
}
