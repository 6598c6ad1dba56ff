// Added and special tokens: matched before the model, lstrip / rstrip / single_word / normalized flags, id
// assignment, decoding with and without special tokens. Expectations follow the tokenizers library (checked
// against tokenizers 0.23.2 on the same tokenizer.json).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '../../src/tokenizer/index.js';
import { byteLevelFixtureDir } from './helpers.js';

const base = JSON.parse(readFileSync(join(byteLevelFixtureDir(), 'tokenizer.json'), 'utf8')) as { added_tokens: unknown[] } & Record<string, unknown>;
const added = (id: number, content: string, o: Record<string, boolean>) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: false, ...o });

// The fixture's byte-level tokenizer with a Lowercase normalizer and six more added tokens.
const json = {
  ...structuredClone(base),
  normalizer: { type: 'Lowercase' },
  added_tokens: [
    ...base.added_tokens,
    added(2000, '<mask>', { lstrip: true, special: true }),
    added(2001, '<rs>', { rstrip: true, special: true }),
    added(2002, 'word', { single_word: true, normalized: true }), // also a model token (1191)
    added(2003, 'Hello', { normalized: true }),
    added(2004, 'WORLD', { normalized: false }),
    added(2005, ' x', { normalized: true }),
  ],
};
const tok = Tokenizer.fromJSON(json);

test('ids of added tokens are assigned like the tokenizers library (the file ids are not trusted)', () => {
  // "word" is in the model vocabulary (1191) and keeps that id; the next new tokens take 2002, 2003, ...
  assert.equal(tok.tokenToId('<mask>'), 2000);
  assert.equal(tok.tokenToId('<rs>'), 2001);
  assert.equal(tok.tokenToId('word'), 1191);
  assert.equal(tok.tokenToId('Hello'), 2002);
  assert.equal(tok.tokenToId('WORLD'), 2003);
  assert.equal(tok.tokenToId(' x'), 2004);
  assert.equal(tok.vocabSize, 2005);
  assert.equal(tok.warnings.length, 4);
  assert.match(tok.warnings[0], /added_tokens\[6\].*"word".*2002.*1191/);
});

test('normalized tokens match the normalized text; single_word needs word boundaries', () => {
  // Lowercase turns HELLO/hello/Hello into "hello", which is the normalized form of the added token "Hello".
  // "word" is single_word: not inside "wordy" (a word char follows) nor "sword"; standalone it matches
  // (and "sword" still ends in the model token "word", also id 1191).
  const enc = tok.encodeWithOffsets('HELLO hello Hello world wordy word sword');
  assert.deepEqual(enc.tokens, ['hello', 'Ġ', 'hello', 'Ġ', 'hello', 'Ġw', 'or', 'l', 'd', 'Ġw', 'ord', 'y', 'Ġ', 'word', 'Ġs', 'word']);
  assert.deepEqual(enc.ids, [2002, 224, 2002, 224, 2002, 299, 275, 79, 71, 299, 588, 92, 224, 1191, 298, 1191]);
  assert.deepEqual(enc.offsets.slice(0, 5), [
    [0, 5],
    [5, 6],
    [6, 11],
    [11, 12],
    [12, 17],
  ]);
  // "WORLD" is not normalized, so it would only match the raw text "WORLD"
  assert.deepEqual(tok.encode('WORLD'), [2003]);
  assert.deepEqual(tok.encode('world'), [90, 275, 79, 71]); // w or l d
  // decoding uses the normalized form of normalized tokens
  assert.equal(tok.decode([2002, 299, 275, 79, 71]), 'hello world');
});

test('lstrip and rstrip absorb the whitespace around the token', () => {
  const s = '<mask> x  <mask>y <rs>   z<rs>\n';
  const enc = tok.encodeWithOffsets(s);
  assert.deepEqual(enc.tokens, ['<mask>', ' x', '  <mask>', 'y', 'Ġ', '<rs>   ', 'z', '<rs>\n']);
  assert.deepEqual(enc.ids, [2000, 2004, 2000, 92, 224, 2001, 93, 2001]);
  assert.deepEqual(enc.offsets, [
    [0, 6],
    [6, 8],
    [8, 16],
    [16, 17],
    [17, 18],
    [18, 25],
    [25, 26],
    [26, 31],
  ]);
  assert.equal(tok.decode(enc.ids), '<mask> x<mask>y <rs>z<rs>');
  assert.equal(tok.decode(enc.ids, { skipSpecialTokens: true }), ' xy z');
});

test('special tokens are matched anywhere in the text, before the pre-tokenizer', () => {
  const plain = Tokenizer.fromJSON(base);
  assert.deepEqual(plain.encode('a<|end|>b'), [68, 3, 69]);
  assert.deepEqual(plain.encode('<|user|><|end|>'), [1, 3]);
  assert.deepEqual(plain.encode('<|end|'), [31, 95, 1362, 95]); // incomplete: plain text (< | end |)
  // leftmost-longest matching between overlapping added tokens
  const j = structuredClone(base);
  j.added_tokens = [...base.added_tokens, added(2000, '<|e', { special: true }), added(2001, '<|end|><|', { special: true })];
  const t = Tokenizer.fromJSON(j);
  assert.deepEqual(t.encode('<|end|><|user|>'), [2001, 88, 480, 95, 33]); // <|end|><| u ser | >
  assert.deepEqual(t.encode('<|en'), [2000, 81]);
  const enc = t.encodeWithOffsets('x<|end|>');
  assert.deepEqual(enc.specialTokensMask, [0, 0]); // added tokens found in the text are not "inserted" specials
});
