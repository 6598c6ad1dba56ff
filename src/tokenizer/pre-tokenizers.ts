// Pre-tokenizers of tokenizer.json ("pre_tokenizer" field): ByteLevel (GPT-2 regex + byte-to-char mapping),
// Split (Oniguruma regex or literal, five delimiter behaviors, invert), Metaspace (▁, prepend_scheme, split),
// Whitespace, WhitespaceSplit, Punctuation, Digits, BertPreTokenizer, CharDelimiterSplit and Sequence.
// A pre-tokenizer maps the list of pieces of the text to a finer list of pieces (empty pieces are dropped).

import { Reader, type Json } from './errors.js';
import { NormalizedString, charMatchList, regexMatchList, type SplitBehavior } from './normalized.js';
import { readPattern } from './normalizers.js';
import { compileOniguruma } from './regex.js';
import { BYTE_TO_CHAR, isNumeric, isPunctuation, isWhitespace, pushUtf8 } from './unicode.js';

export interface PreTokenizer {
  preTokenize(pieces: NormalizedString[]): NormalizedString[];
}

/** The regex the ByteLevel pre-tokenizer splits with (GPT-2's). */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const BEHAVIORS: readonly SplitBehavior[] = ['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'];

function readBehavior(r: Reader, name: string, dflt?: SplitBehavior): SplitBehavior {
  const b = r.string(name, dflt as string) as SplitBehavior;
  if (!BEHAVIORS.includes(b)) r.fail(name, `expected one of ${BEHAVIORS.join(', ')}, got ${JSON.stringify(b)}`);
  return b;
}

function eachPiece(fn: (p: NormalizedString) => NormalizedString[]): PreTokenizer {
  return {
    preTokenize(pieces) {
      const out: NormalizedString[] = [];
      for (const p of pieces) for (const q of fn(p)) if (!q.isEmpty()) out.push(q);
      return out;
    },
  };
}

const byteCharCache = new Map<string, string>();
/** The byte-level spelling of one code point (its UTF-8 bytes as printable chars). */
export function byteLevelOf(ch: string): string {
  let s = byteCharCache.get(ch);
  if (s === undefined) {
    const bytes: number[] = [];
    pushUtf8(ch.codePointAt(0)!, bytes);
    s = '';
    for (const b of bytes) s += BYTE_TO_CHAR[b];
    if (byteCharCache.size < 100000) byteCharCache.set(ch, s);
  }
  return s;
}

/** ByteLevel pre-tokenizer with the given options. */
function byteLevelPreTokenizer(addPrefixSpace: boolean, useRegex: boolean): PreTokenizer {
  const re = compileOniguruma(GPT2_PATTERN);
  return {
    preTokenize(pieces) {
      const out: NormalizedString[] = [];
      for (const p of pieces) {
        if (addPrefixSpace && !p.text.startsWith(' ')) p.prepend(' ');
        const from = out.length;
        if (useRegex) p.splitIsolated(re, out);
        else if (!p.isEmpty()) out.push(p);
        for (let k = from; k < out.length; k++) out[k].mapChars(byteLevelOf);
      }
      return out;
    },
  };
}

const WS_WORDS = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|[^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\p{White_Space}]+/gu;

/** Builds a pre-tokenizer from its JSON description (null for none). */
export function buildPreTokenizer(json: Json | undefined, path = 'pre_tokenizer'): PreTokenizer | null {
  if (json === null || json === undefined) return null;
  const r = Reader.of(json, path);
  const type = r.type();
  switch (type) {
    case 'ByteLevel':
      return byteLevelPreTokenizer(r.bool('add_prefix_space', true), r.bool('use_regex', true));
    case 'Split': {
      const re = readPattern(r, 'pattern');
      const behavior = readBehavior(r, 'behavior');
      const invert = r.bool('invert', false);
      if (behavior === 'Isolated') {
        return {
          preTokenize(pieces) {
            const out: NormalizedString[] = [];
            for (const p of pieces) p.splitIsolated(re, out);
            return out;
          },
        };
      }
      return eachPiece((p) => p.splitByMatches(regexMatchList(re, p.text, invert), behavior));
    }
    case 'Metaspace': {
      const replacement = r.char('replacement', '▁');
      let scheme = r.string('prepend_scheme', 'always');
      if (!['always', 'first', 'never'].includes(scheme)) r.fail('prepend_scheme', `expected "always", "first" or "never", got ${JSON.stringify(scheme)}`);
      if (r.has('add_prefix_space') && r.bool('add_prefix_space') === false) {
        if (r.has('prepend_scheme') && scheme !== 'never') r.fail('add_prefix_space', 'add_prefix_space does not match declared prepend_scheme');
        scheme = 'never';
      }
      const split = r.bool('split', true);
      return metaspacePreTokenizer(replacement, scheme as 'always' | 'first' | 'never', split);
    }
    case 'Whitespace':
      return eachPiece((p) => p.splitByMatches(regexMatchList(WS_WORDS, p.text, true), 'Removed'));
    case 'WhitespaceSplit':
      return eachPiece((p) => p.splitByMatches(charMatchList(isWhitespace, p.text), 'Removed'));
    case 'Punctuation': {
      const behavior = readBehavior(r, 'behavior', 'Isolated');
      return eachPiece((p) => p.splitByMatches(charMatchList(isPunctuation, p.text), behavior));
    }
    case 'Digits': {
      const individual = r.bool('individual_digits', false);
      return eachPiece((p) => p.splitByMatches(charMatchList(isNumeric, p.text), individual ? 'Isolated' : 'Contiguous'));
    }
    case 'BertPreTokenizer':
      return eachPiece((p) => p.splitByMatches(charMatchList(isWhitespace, p.text), 'Removed').flatMap((q) => q.splitByMatches(charMatchList(isPunctuation, q.text), 'Isolated')));
    case 'CharDelimiterSplit': {
      const d = r.char('delimiter');
      return eachPiece((p) =>
        p.splitByMatches(
          charMatchList((ch) => ch === d, p.text),
          'Removed',
        ),
      );
    }
    case 'Sequence': {
      const list = r
        .array('pretokenizers')
        .map((n, k) => buildPreTokenizer(n, `${path}.pretokenizers[${k}]`))
        .filter((n): n is PreTokenizer => n !== null);
      return { preTokenize: (pieces) => list.reduce((acc, pt) => pt.preTokenize(acc), pieces) };
    }
    default:
      return r.fail('type', `unsupported pre-tokenizer type ${JSON.stringify(type)}`);
  }
}

/** Metaspace: spaces become the replacement char, which is prepended per scheme; optionally split before it. */
function metaspacePreTokenizer(replacement: string, scheme: 'always' | 'first' | 'never', split: boolean): PreTokenizer {
  const replaceSpace = (ch: string) => (ch === ' ' ? replacement : ch);
  return eachPiece((p) => {
    p.mapChars(replaceSpace);
    if (scheme === 'always' || (scheme === 'first' && p.originalStart === 0)) {
      if (!p.text.startsWith(replacement)) p.prepend(replacement);
    }
    if (!split) return [p];
    return p.splitByMatches(
      charMatchList((ch) => ch === replacement, p.text),
      'MergedWithNext',
    );
  });
}
