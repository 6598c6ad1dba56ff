// Byte-level BPE training: vocabulary layout, most-frequent-pair merges, minFrequency, save/reload as
// tokenizer.json, exact round-trips, and encoding that applies the learned merges greedily by rank.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer, TokenizerError, byteLevelAlphabet, fromPretrained, trainByteLevelBPE } from '../../src/tokenizer/index.js';
import { compileOniguruma, findAll } from '../../src/tokenizer/regex.js';
import { byteLevelOf, GPT2_PATTERN } from '../../src/tokenizer/pre-tokenizers.js';
import { randomUnicodeString, rng } from './helpers.js';

const CORPUS = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs.',
  'A helpful assistant answers questions. A harmless assistant refuses harmful requests.',
  'Reinforcement learning from human feedback trains a reward model, then the policy.',
  'Direct preference optimisation skips the reward model and learns from preference pairs.',
  'naïve café — déjà vu ✓ 日本語のテキスト 🤖🔒 <|endoftext|> the end',
  'numbers 12345 and 3.14159, 1,000,000; the the the then there these those',
];
const texts: string[] = [];
for (let k = 0; k < 20; k++) for (const line of CORPUS) texts.push(line);

const SPECIALS = ['<|endoftext|>', '<pad>'];
const trained = trainByteLevelBPE(texts, { vocabSize: 400, minFrequency: 2, specialTokens: SPECIALS, config: { eos_token: '<|endoftext|>', pad_token: '<pad>' } });
const modelJson = trained.toJSON().model as { vocab: Record<string, number>; merges: Array<[string, string]> };

/** Byte-level words of the GPT-2 pre-tokenization. */
function words(s: string): string[] {
  return findAll(compileOniguruma(GPT2_PATTERN), s).map(([a, b]) => [...s.slice(a, b)].map(byteLevelOf).join(''));
}

/** Reference BPE: repeatedly merge the leftmost adjacent pair of lowest rank. */
function referenceBpe(word: string, ranks: Map<string, number>): string[] {
  const sym = [...word];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const r = ranks.get(sym[i] + ' ' + sym[i + 1]);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return sym;
    sym.splice(best, 2, sym[best] + sym[best + 1]);
  }
}

test('vocabulary: special tokens first, then the 256 byte characters, then one token per merge', () => {
  assert.equal(trained.vocabSize, 400);
  assert.equal(trained.tokenToId('<|endoftext|>'), 0);
  assert.equal(trained.tokenToId('<pad>'), 1);
  byteLevelAlphabet().forEach((ch, k) => assert.equal(modelJson.vocab[ch], 2 + k));
  assert.equal(modelJson.merges.length, 400 - 258);
  for (const [a, b] of modelJson.merges) assert.ok(modelJson.vocab[a + b] !== undefined);
  assert.equal(trained.eosTokenId, 0);
  assert.equal(trained.padTokenId, 1);
});

test('the first merge is the most frequent adjacent pair of the corpus (ties: smallest ids)', () => {
  const counts = new Map<string, number>();
  for (const t of texts) {
    for (const part of t.split('<|endoftext|>')) {
      for (const w of words(part)) {
        const c = [...w];
        for (let i = 0; i + 1 < c.length; i++) counts.set(c[i] + ' ' + c[i + 1], (counts.get(c[i] + ' ' + c[i + 1]) ?? 0) + 1);
      }
    }
  }
  const id = (ch: string) => modelJson.vocab[ch];
  const best = [...counts].sort((x, y) => {
    if (y[1] !== x[1]) return y[1] - x[1];
    const [xa, xb] = x[0].split(' ');
    const [ya, yb] = y[0].split(' ');
    return id(xa) - id(ya) || id(xb) - id(yb);
  })[0];
  assert.equal(modelJson.merges[0].join(' '), best[0]);
  assert.equal(best[0], 'h e'); // the, then, there, these, helpful... make "he" the most common pair here
});

test('encoding applies the learned merges greedily by rank', () => {
  const ranks = new Map(modelJson.merges.map(([a, b], r) => [a + ' ' + b, r]));
  const rand = rng(3);
  const samples = [...CORPUS, 'the theme of these thoughts', 'preferences preferred', ...Array.from({ length: 30 }, () => randomUnicodeString(rand, 12))];
  for (const s of samples) {
    const expected = words(s.replaceAll('<|endoftext|>', ' '))
      .flatMap((w) => referenceBpe(w, ranks))
      .map((t) => modelJson.vocab[t]);
    assert.deepEqual(trained.encode(s.replaceAll('<|endoftext|>', ' ')), expected, JSON.stringify(s));
  }
  assert.deepEqual(trained.encode('the<|endoftext|><pad>'), [...trained.encode('the'), 0, 1]);
});

test('save -> valid tokenizer.json that loads back, with exact round-trips', () => {
  const out = mkdtempSync(join(tmpdir(), 'alignkit-bpe-'));
  try {
    trained.save(out);
    const json = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8'));
    assert.equal(json.model.type, 'BPE');
    assert.equal(json.pre_tokenizer.type, 'ByteLevel');
    assert.equal(json.decoder.type, 'ByteLevel');
    assert.deepEqual(
      json.added_tokens.map((t: { content: string; id: number; special: boolean }) => [t.content, t.id, t.special]),
      [
        ['<|endoftext|>', 0, true],
        ['<pad>', 1, true],
      ],
    );
    const config = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
    assert.equal(config.eos_token, '<|endoftext|>');
    const back = fromPretrained(out);
    const direct = Tokenizer.fromFile(join(out, 'tokenizer.json'));
    assert.equal(back.eosTokenId, 0);
    const rand = rng(5);
    const samples = [...CORPUS, ...Array.from({ length: 100 }, () => randomUnicodeString(rand, 30))];
    for (const s of samples) {
      const ids = trained.encode(s);
      assert.deepEqual(back.encode(s), ids);
      assert.deepEqual(direct.encode(s), ids);
      assert.equal(back.decode(ids), s, JSON.stringify(s));
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('minFrequency stops training; bad options are clear errors; training is deterministic', () => {
  const none = trainByteLevelBPE(texts, { vocabSize: 1000, minFrequency: 10000 });
  assert.equal(none.vocabSize, 256);
  assert.equal(none.decode(none.encode('héllo 🤖')), 'héllo 🤖');
  const small = trainByteLevelBPE(['ab ab ab'], { vocabSize: 1000, minFrequency: 1 });
  // words "ab" (x1) and " ab" (x2): pairs (a,b) x3 then (Ġ,ab) x2; nothing else to merge
  assert.deepEqual((small.toJSON().model as { merges: unknown }).merges, [
    ['a', 'b'],
    ['Ġ', 'ab'],
  ]);
  assert.throws(
    () => trainByteLevelBPE(texts, { vocabSize: 100 }),
    (e: unknown) => e instanceof TokenizerError && /vocabSize must be an integer >= 256/.test(e.message),
  );
  assert.throws(() => trainByteLevelBPE(texts, { vocabSize: 300, specialTokens: ['x', 'x'] }), /distinct/);
  const again = trainByteLevelBPE(texts, { vocabSize: 400, minFrequency: 2, specialTokens: SPECIALS });
  assert.deepEqual(again.toJSON().model, trained.toJSON().model);
});
