// Shared helpers of the tokenizer tests: the package root and fixture paths, a hand-built SentencePiece-style
// (Llama-2 / Mistral) tokenizer.json, and a seeded generator of random Unicode strings.

import { join } from 'node:path';

import { packageRoot as repoRoot } from '../../src/engine/package-root.js';

/** The byte-level tokenizer fixture made with the Python tokenizers library (see shared/fixtures/make_hf_fixtures.py). */
export function byteLevelFixtureDir(): string {
  return join(repoRoot(), 'test', 'fixtures', 'hf-fixtures', 'tok-bytelevel');
}

/** The pieces of the hand-built SentencePiece vocabulary, after <unk>, <s>, </s> (0..2) and <0x00>..<0xFF> (3..258). */
const SP_PIECES = ['▁', 'h', 'e', 'l', 'o', 'w', 'r', 'd', 't', 'i', '▁h', 'll', '▁he', 'llo', '▁hello', '▁w', 'or', '▁wor', 'ld', '▁world', '▁t', 'he', '▁the', '▁▁', 'hi', '▁hi', 'é'];
/** Merges in rank order (rank = index). */
const SP_MERGES: Array<[string, string]> = [
  ['▁', 'h'],
  ['l', 'l'],
  ['▁h', 'e'],
  ['ll', 'o'],
  ['▁he', 'llo'],
  ['▁', 'w'],
  ['o', 'r'],
  ['▁w', 'or'],
  ['l', 'd'],
  ['▁wor', 'ld'],
  ['▁', 't'],
  ['h', 'e'],
  ['▁t', 'he'],
  ['▁', '▁'],
  ['h', 'i'],
  ['▁h', 'i'],
];

type SpVariant = 'llama2' | 'metaspace-first' | 'no-fallback-fused' | 'no-fallback-unfused';

/**
 * A small SentencePiece-style BPE tokenizer.json:
 * - 'llama2': Llama-2's layout (normalizer Prepend("▁") + Replace(" " -> "▁"), no pre-tokenizer, byte_fallback,
 *   fuse_unk, decoder Replace/ByteFallback/Fuse/Strip, BOS template); merges in the "a b" string form;
 * - 'metaspace-first': Mistral's newer layout (no normalizer, Metaspace pre-tokenizer with prepend_scheme
 *   "first" and split false, same decoder); merges as ["a", "b"] pairs;
 * - 'no-fallback-*': like llama2 without byte tokens use (byte_fallback false), fuse_unk true or false.
 */
export function spTokenizerJson(variant: SpVariant = 'llama2'): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  SP_PIECES.forEach((p, k) => (vocab[p] = 259 + k));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const metaspace = variant === 'metaspace-first';
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: metaspace
      ? null
      : {
          type: 'Sequence',
          normalizers: [
            { type: 'Prepend', prepend: '▁' },
            { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
          ],
        },
    pre_tokenizer: metaspace ? { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false } : null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: variant !== 'no-fallback-unfused',
      byte_fallback: variant === 'llama2' || variant === 'metaspace-first',
      ignore_merges: false,
      vocab,
      merges: metaspace ? SP_MERGES.map(([a, b]) => [a, b]) : SP_MERGES.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** Id of a piece of the hand-built SentencePiece vocabulary. */
export function spId(piece: string): number {
  if (piece === '<unk>') return 0;
  if (piece === '<s>') return 1;
  if (piece === '</s>') return 2;
  const m = /^<0x([0-9A-F]{2})>$/.exec(piece);
  if (m) return 3 + parseInt(m[1], 16);
  const k = SP_PIECES.indexOf(piece);
  if (k < 0) throw new Error(`no piece ${piece}`);
  return 259 + k;
}

/** Deterministic xorshift generator. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const POOLS: string[][] = [
  [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'],
  [...'0123456789'],
  [' ', ' ', ' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '\u2028', '\u0085', '\ufeff'],
  [...'.,;:!?\'"-_()[]{}<>/\\|@#$%^&*+=~`'],
  [...'日本語のテキスト中文한국어'],
  ['😀', '🤖', '🔒', '👍🏽', '👨‍👩‍👧', '🇫🇷', '𝔘', '𐍈'],
  ['e\u0301', 'a\u0308', 'n\u0303', '\u0301', '\u20dd', 'ﬁ', 'ǅ', 'ß', 'İ', 'ſ', 'K', 'Σ'],
  [...'ñéüçøåπλжЖдשלוםمرحباहिन्दी'],
  ["'s", "'T", "'re", "'VE", "'ll", "'d", "'M"],
];

/** A random string mixing letters, digits, spaces, punctuation, CJK, emoji, combining marks and other scripts. */
export function randomUnicodeString(rand: () => number, maxParts = 24): string {
  const n = 1 + Math.floor(rand() * maxParts);
  let s = '';
  for (let k = 0; k < n; k++) {
    const pool = POOLS[Math.floor(rand() * POOLS.length)];
    s += pool[Math.floor(rand() * pool.length)];
  }
  return s;
}
