// Normalizers of tokenizer.json ("normalizer" field): NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents,
// Replace, Prepend, ByteLevel, Nmt, BertNormalizer, Sequence (and Precompiled when its charsmap is empty).
// Each one rewrites a NormalizedString in place, keeping its alignment with the input text.

import { Reader, TokenizerFormatError, type Json } from './errors.js';
import { NormalizedString } from './normalized.js';
import { compileOniguruma, escapeLiteral } from './regex.js';
import { BYTE_TO_CHAR, isChineseChar, isWhitespace, pushUtf8 } from './unicode.js';

export interface Normalizer {
  normalize(ns: NormalizedString): void;
}

/** A Replace/Split pattern: {"String": "..."} (literal) or {"Regex": "..."} (Oniguruma). */
export function readPattern(r: Reader, name: string): RegExp {
  const pr = r.object(name);
  if (pr.has('String')) return new RegExp(escapeLiteral(pr.string('String')), 'gu');
  if (pr.has('Regex')) {
    try {
      return compileOniguruma(pr.string('Regex'));
    } catch (e) {
      throw new TokenizerFormatError(pr.field('Regex'), (e as Error).message);
    }
  }
  return pr.fail('String', 'expected {"String": ...} or {"Regex": ...}');
}

const lower = (ch: string) => ch.toLowerCase();
const COMBINING = /^\p{M}$/u;
const NONSPACING = /^\p{Mn}$/u;
const OTHER = /^\p{C}$/u;

function byteLevelChars(ch: string): string {
  const bytes: number[] = [];
  pushUtf8(ch.codePointAt(0)!, bytes);
  let s = '';
  for (const b of bytes) s += BYTE_TO_CHAR[b];
  return s;
}

function nmtMap(ch: string): string {
  const c = ch.codePointAt(0)!;
  if ((c >= 1 && c <= 8) || c === 0x0b || (c >= 0x0e && c <= 0x1f) || c === 0x7f || c === 0x8f || c === 0x9f) return '';
  if (c === 9 || c === 10 || c === 12 || c === 13 || c === 0x1680 || (c >= 0x200b && c <= 0x200f) || c === 0x2028 || c === 0x2029 || c === 0x2581 || c === 0xfeff || c === 0xfffd) return ' ';
  return ch;
}

/** Builds a normalizer from its JSON description (null for none). */
export function buildNormalizer(json: Json | undefined, path = 'normalizer'): Normalizer | null {
  if (json === null || json === undefined) return null;
  const r = Reader.of(json, path);
  const type = r.type();
  switch (type) {
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return { normalize: (ns) => void ns.unicodeNormalize(type) };
    case 'Lowercase':
      return { normalize: (ns) => void ns.mapChars(lower) };
    case 'Strip': {
      const left = r.bool('strip_left', true);
      const right = r.bool('strip_right', true);
      return { normalize: (ns) => void ns.strip(left, right) };
    }
    case 'StripAccents':
      return { normalize: (ns) => void ns.mapChars((ch) => (COMBINING.test(ch) ? '' : ch)) };
    case 'Replace': {
      const re = readPattern(r, 'pattern');
      const content = r.string('content');
      return { normalize: (ns) => void ns.replaceRegex(re, content) };
    }
    case 'Prepend': {
      const s = r.string('prepend');
      return { normalize: (ns) => void ns.prepend(s) };
    }
    case 'ByteLevel':
      return { normalize: (ns) => void ns.mapChars(byteLevelChars) };
    case 'Nmt':
      return { normalize: (ns) => void ns.mapChars(nmtMap) };
    case 'BertNormalizer': {
      const cleanText = r.bool('clean_text', true);
      const chinese = r.bool('handle_chinese_chars', true);
      const lowercase = r.bool('lowercase', true);
      const stripAccents = r.has('strip_accents') ? r.bool('strip_accents') : lowercase;
      return {
        normalize(ns) {
          if (cleanText) {
            ns.mapChars((ch) => {
              const c = ch.codePointAt(0)!;
              if (c === 0 || c === 0xfffd) return '';
              if (ch === '\t' || ch === '\n' || ch === '\r') return ' ';
              if (OTHER.test(ch)) return '';
              return isWhitespace(ch) ? ' ' : ch;
            });
          }
          if (chinese) ns.mapChars((ch) => (isChineseChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch));
          if (stripAccents) {
            ns.unicodeNormalize('NFD');
            ns.mapChars((ch) => (NONSPACING.test(ch) ? '' : ch));
          }
          if (lowercase) ns.mapChars(lower);
        },
      };
    }
    case 'Sequence': {
      const list = r
        .array('normalizers')
        .map((n, k) => buildNormalizer(n, `${path}.normalizers[${k}]`))
        .filter((n): n is Normalizer => n !== null);
      return { normalize: (ns) => list.forEach((n) => n.normalize(ns)) };
    }
    case 'Precompiled': {
      const map = r.raw('precompiled_charsmap');
      if (map === null || map === undefined || map === '') return null;
      return r.fail('type', 'the "Precompiled" normalizer (SentencePiece charsmap) is not supported');
    }
    default:
      return r.fail('type', `unsupported normalizer type ${JSON.stringify(type)}`);
  }
}

/** Normalizes a plain string (used for the content of normalized added tokens). */
export function normalizeString(n: Normalizer | null, s: string): string {
  if (!n) return s;
  const ns = NormalizedString.fromOriginal(s, 0, false);
  n.normalize(ns);
  return ns.text;
}
