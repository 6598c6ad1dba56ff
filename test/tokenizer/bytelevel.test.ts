// Byte-level BPE against the fixture made with the Python tokenizers library (ids, decoding, chat rendering),
// random Unicode round-trips, offsets, and save/reload.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer, fromPretrained } from '../../src/tokenizer/index.js';
import { byteLevelFixtureDir, randomUnicodeString, rng } from './helpers.js';

interface Expected {
  samples: Array<{ text: string; ids: number[]; decoded: string }>;
  chat: { messages: Array<{ role: string; content: string }>; rendered: string; ids: number[] };
}

const dir = byteLevelFixtureDir();
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected;
const tok = fromPretrained(dir);

test('fixture: every sample encodes to the exact ids of the tokenizers library', () => {
  assert.equal(expected.samples.length, 11);
  for (const s of expected.samples) assert.deepEqual(tok.encode(s.text), s.ids, JSON.stringify(s.text));
});

test('fixture: every sample decodes exactly (the library default skips special tokens)', () => {
  for (const s of expected.samples) assert.equal(tok.decode(s.ids, { skipSpecialTokens: true }), s.decoded, JSON.stringify(s.text));
  // without skipping, special tokens come back and the text round-trips
  for (const s of expected.samples) assert.equal(tok.decode(s.ids), s.text, JSON.stringify(s.text));
});

test('fixture: ByteLevel post-processor adds nothing; addSpecialTokens does not change ids', () => {
  for (const s of expected.samples) assert.deepEqual(tok.encode(s.text, { addSpecialTokens: false }), s.ids);
});

test('fixture: chat template renders exactly and tokenizes to the exact ids', () => {
  const text = tok.applyChatTemplate(expected.chat.messages, { addGenerationPrompt: true });
  assert.equal(text, expected.chat.rendered);
  assert.deepEqual(tok.applyChatTemplate(expected.chat.messages, { addGenerationPrompt: true, tokenize: true }), expected.chat.ids);
  assert.deepEqual(tok.encode(expected.chat.rendered, { addSpecialTokens: false }), expected.chat.ids);
});

test('fixture: vocabulary and special token ids from tokenizer_config.json', () => {
  assert.equal(tok.vocabSize, 2000);
  assert.equal(tok.bosTokenId, 0);
  assert.equal(tok.eosTokenId, 0);
  assert.equal(tok.padTokenId, undefined); // the config defines no pad token
  assert.equal(tok.tokenToId('<|assistant|>'), 2);
  assert.equal(tok.idToToken(3), '<|end|>');
  assert.equal(tok.tokenToId('Ġ'), 224);
  assert.equal(tok.idToToken(224), 'Ġ');
  assert.equal(tok.tokenToId('no such token'), undefined);
  assert.deepEqual(tok.specialTokenIds.sort(), [0, 1, 2, 3]);
  assert.deepEqual(tok.warnings, []);
});

test('fromFile and fromJSON give the same tokenizer as fromPretrained', () => {
  const a = Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  const b = Tokenizer.fromJSON(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')));
  for (const s of expected.samples) {
    assert.deepEqual(a.encode(s.text), s.ids);
    assert.deepEqual(b.encode(s.text), s.ids);
  }
  assert.equal(a.bosTokenId, undefined); // no tokenizer_config.json read
});

test('byte-level round-trip of random Unicode strings (emoji, CJK, combining marks, spaces, newlines)', () => {
  const rand = rng(7);
  for (let k = 0; k < 300; k++) {
    const s = randomUnicodeString(rand, 40);
    const ids = tok.encode(s);
    assert.equal(tok.decode(ids), s, JSON.stringify(s));
  }
  for (const s of ['', ' ', '\n\n', '  \t ', 'e\u0301\u0301', '👨‍👩‍👧‍👦🏳️‍🌈', '\u{10FFFF}\u{E000}', '\ufeffBOM', 'a\u0000b', '日本語\r\n中文']) {
    assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
  }
});

test('offsets point at the text each token came from', () => {
  const rand = rng(11);
  for (let k = 0; k < 50; k++) {
    const s = randomUnicodeString(rand, 20);
    const enc = tok.encodeWithOffsets(s);
    assert.equal(enc.ids.length, enc.offsets.length);
    let prevEnd = 0;
    for (const [a, b] of enc.offsets) {
      assert.ok(a >= 0 && a <= b && b <= s.length);
      assert.ok(a >= prevEnd - 2, 'offsets move forward'); // tokens of one character may share its span
      prevEnd = Math.max(prevEnd, b);
    }
    assert.equal(prevEnd, s.length);
  }
  const enc = tok.encodeWithOffsets('Hello world<|end|> x');
  assert.deepEqual(enc.tokens, ['H', 'el', 'lo', 'Ġw', 'or', 'l', 'd', '<|end|>', 'Ġx']);
  assert.deepEqual(enc.offsets, [
    [0, 1],
    [1, 3],
    [3, 5],
    [5, 7],
    [7, 9],
    [9, 10],
    [10, 11],
    [11, 18],
    [18, 20],
  ]);
  // the ByteLevel pre-tokenizer splits one emoji into 4 byte tokens, each with the emoji's span
  const e2 = tok.encodeWithOffsets('a🤖');
  assert.deepEqual(e2.tokens, ['a', 'ð', 'Ł', '¤', 'ĸ']);
  assert.deepEqual(e2.offsets, [
    [0, 1],
    [1, 3],
    [1, 3],
    [1, 3],
    [1, 3],
  ]);
});

test('save writes tokenizer.json, tokenizer_config.json and chat_template.jinja that load back identically', () => {
  const out = mkdtempSync(join(tmpdir(), 'alignkit-tok-'));
  try {
    tok.save(out);
    const back = fromPretrained(out);
    for (const s of expected.samples) assert.deepEqual(back.encode(s.text), s.ids);
    assert.equal(back.applyChatTemplate(expected.chat.messages, { addGenerationPrompt: true }), expected.chat.rendered);
    assert.equal(back.bosTokenId, 0);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')));
    assert.equal(readFileSync(join(out, 'chat_template.jinja'), 'utf8'), readFileSync(join(dir, 'chat_template.jinja'), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
