// SentencePiece-style BPE (Llama-2 / Mistral layouts) on a hand-built tokenizer.json (see helpers.ts).
//
// The expected ids are derived by hand from the semantics of the tokenizers library, stated in the comments:
// - added tokens with normalized=false (<unk>, <s>, </s>) are cut out of the raw text first; the normalizer then
//   runs on each remaining piece separately (so Llama-2's Prepend("▁") adds a ▁ to every piece);
// - BPE starts from single characters; a character missing from the vocabulary becomes its UTF-8 bytes as
//   <0xNN> tokens when byte_fallback is on, else <unk> (consecutive <unk> fused into one when fuse_unk is on);
// - merges are applied lowest rank first (leftmost first among equal ranks), each merge creating new
//   candidate pairs with its neighbours;
// - TemplateProcessing "<s> $A" prepends <s> (id 1) when addSpecialTokens is true (the default).
// Vocabulary: <unk>=0 <s>=1 </s>=2, <0xNN>=3+NN, then ▁=259 h=260 e=261 l=262 o=263 w=264 r=265 d=266 t=267
// i=268 ▁h=269 ll=270 ▁he=271 llo=272 ▁hello=273 ▁w=274 or=275 ▁wor=276 ld=277 ▁world=278 ▁t=279 he=280
// ▁the=281 ▁▁=282 hi=283 ▁hi=284 é=285. Merge ranks: 0 ▁+h, 1 l+l, 2 ▁h+e, 3 ll+o, 4 ▁he+llo, 5 ▁+w, 6 o+r,
// 7 ▁w+or, 8 l+d, 9 ▁wor+ld, 10 ▁+t, 11 h+e, 12 ▁t+he, 13 ▁+▁, 14 h+i, 15 ▁h+i.
// Every expectation below was also checked against the Python tokenizers library 0.23.2 on the same files.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer, TokenizerFormatError } from '../../src/tokenizer/index.js';
import { spId, spTokenizerJson } from './helpers.js';

const llama2 = Tokenizer.fromJSON(spTokenizerJson('llama2'));
const mistral = Tokenizer.fromJSON(spTokenizerJson('metaspace-first'));

test('vocabulary ids of the hand-built tokenizer', () => {
  assert.equal(spId('▁hello'), 273);
  assert.equal(spId('<0x48>'), 75);
  assert.equal(llama2.vocabSize, 286);
  assert.equal(llama2.tokenToId('▁world'), 278);
  assert.equal(llama2.idToToken(229), '<0xE2>');
});

test('Llama-2 layout: Prepend + Replace, merges by rank', () => {
  // "hello world" -> Prepend -> "▁hello world" -> Replace -> "▁hello▁world" (one word, no pre-tokenizer).
  // ▁ h e l l o ▁ w o r l d: rank 0 (▁,h) at 0 -> ▁h; rank 1 (l,l) -> ll; rank 2 (▁h,e) -> ▁he; rank 3 (ll,o)
  // -> llo; rank 4 -> ▁hello; rank 5 (▁,w) -> ▁w; rank 6 (o,r); rank 7 -> ▁wor; rank 8 (l,d); rank 9 -> ▁world.
  assert.deepEqual(llama2.encode('hello world'), [1, 273, 278]);
  assert.deepEqual(llama2.encode('hello world', { addSpecialTokens: false }), [273, 278]);
  // "hello  world " -> "▁hello▁▁world▁": after ▁hello, the pair (▁,w) (rank 5) beats (▁,▁) (rank 13), so the
  // first of the two ▁ stays alone; the final ▁ has no partner.
  assert.deepEqual(llama2.encode('hello  world '), [1, 273, 259, 278, 259]);
  // " hello" -> "▁▁hello": (▁,h) at position 1 (rank 0) is merged before (▁,▁) (rank 13) -> ▁ + ▁hello.
  assert.deepEqual(llama2.encode(' hello'), [1, 259, 273]);
  // "tthe" -> "▁tthe": rank 10 (▁,t) -> ▁t, rank 11 (h,e) -> he, then (▁t,t) and (t,he) are not merges.
  assert.deepEqual(llama2.encode('tthe'), [1, 279, 267, 280]);
  // "hi" -> "▁hi": (▁,h) rank 0 -> ▁h, then (▁h,i) rank 15 -> ▁hi (not h+i, which is never a candidate).
  assert.deepEqual(llama2.encode('hi'), [1, 284]);
  // the empty string produces no piece at all (Prepend does not run), only <s>
  assert.deepEqual(llama2.encode(''), [1]);
  assert.deepEqual(llama2.encode('', { addSpecialTokens: false }), []);
});

test('byte fallback: unknown characters become <0xNN> byte tokens', () => {
  // "Hello" -> "▁Hello": H is not in the vocabulary -> <0x48> (id 3+0x48=75); l l o -> ll -> llo; e+llo is no merge.
  assert.deepEqual(llama2.encode('Hello'), [1, 259, 75, 261, 272]);
  // "€" = E2 82 AC in UTF-8 -> <0xE2> <0x82> <0xAC> = 229 133 175 (after the prepended ▁)
  assert.deepEqual(llama2.encode('€'), [1, 259, 229, 133, 175]);
  // é is in the vocabulary (285) so it is not split; ö (C3 B6) and 😀 (F0 9F 98 80) are.
  assert.deepEqual(llama2.encode('héllo 😀 wörld'), [1, 269, 285, 272, 259, 243, 162, 155, 131, 274, 198, 185, 265, 277]);
});

test('decoder Replace(▁ -> space), ByteFallback, Fuse, Strip(1 leading space)', () => {
  assert.equal(llama2.decode([1, 273, 278]), '<s> hello world');
  assert.equal(llama2.decode([1, 273, 278], { skipSpecialTokens: true }), 'hello world');
  // byte tokens are joined into UTF-8 text: <0x48> -> H; Strip removes only the one space from the prepended ▁
  assert.equal(llama2.decode([1, 259, 75, 261, 272], { skipSpecialTokens: true }), 'Hello');
  assert.equal(llama2.decode([259, 259, 273]), '  hello'); // three spaces, minus the one stripped
  // an incomplete UTF-8 sequence gives one U+FFFD per byte (E2 82 then x, then E2 alone)
  assert.equal(llama2.decode([229, 133, spId('w'), 229]), '\ufffd\ufffdw\ufffd');
  // round trips
  for (const s of ['hello world', 'Hello', 'héllo 😀 wörld', '  two  spaces ', 'tab\tand\nnewline', '日本語', '']) {
    assert.equal(llama2.decode(llama2.encode(s), { skipSpecialTokens: true }), s, JSON.stringify(s));
  }
});

test('added tokens are split before the normalizer, which then runs on each piece', () => {
  // pieces: "hi" <s> "there" </s> " " <s> " hello"; Prepend gives "▁hi", "▁there", "▁▁", "▁▁hello".
  // "▁there": (▁,t) rank 10 -> ▁t, (h,e) rank 11 -> he, (▁t,he) rank 12 -> ▁the; r and e stay.
  // "▁▁" -> ▁▁ (rank 13); "▁▁hello" -> ▁ + ▁hello as above.
  assert.deepEqual(llama2.encode('hi<s>there</s> <s> hello'), [1, 284, 1, 281, 265, 261, 2, 282, 1, 259, 273]);
  assert.equal(llama2.decode([1, 284, 1, 281, 265, 261, 2, 282, 1, 259, 273], { skipSpecialTokens: true }), 'hi there    hello');
  assert.deepEqual(llama2.encode('<s>hello'), [1, 1, 273]);
});

test('Mistral layout: Metaspace pre-tokenizer with prepend_scheme "first", merges given as pairs', () => {
  // same ids as Llama-2 where the text starts at offset 0 ...
  assert.deepEqual(mistral.encode('hello world'), [1, 273, 278]);
  assert.deepEqual(mistral.encode('Hello'), [1, 259, 75, 261, 272]);
  // ... but a leading space is not doubled: " hello" -> "▁hello" already starts with ▁, nothing is prepended
  assert.deepEqual(mistral.encode(' hello'), [1, 273]);
  // ... and a piece after an added token does not start at offset 0, so it gets no ▁: "hello" -> h e l l o
  // -> ll (rank 1) -> llo (rank 3) -> he (rank 11); he+llo is no merge.
  assert.deepEqual(mistral.encode('<s>hello'), [1, 1, 280, 272]);
  assert.deepEqual(mistral.encode('hello</s>hello'), [1, 273, 2, 280, 272]);
  // "there" after <s>: t h e r e -> he (rank 11); " " after </s> -> "▁"
  assert.deepEqual(mistral.encode('hi<s>there</s> <s> hello'), [1, 284, 1, 267, 280, 265, 261, 2, 259, 1, 273]);
});

test('unk_token with and without fuse_unk (no byte fallback)', () => {
  const fused = Tokenizer.fromJSON(spTokenizerJson('no-fallback-fused'));
  const unfused = Tokenizer.fromJSON(spTokenizerJson('no-fallback-unfused'));
  // "▁h€€e€": ▁h, then € € unknown -> one <unk> when fused, two otherwise; e; € -> <unk>
  assert.deepEqual(fused.encode('h€€e€'), [1, 269, 0, 261, 0]);
  assert.deepEqual(unfused.encode('h€€e€'), [1, 269, 0, 0, 261, 0]);
  assert.deepEqual(fused.encode('Hello'), [1, 259, 0, 261, 272]);
  assert.equal(fused.decode([1, 259, 0, 261, 272]), '<s> <unk>ello');
  assert.equal(fused.decode([1, 259, 0, 261, 272], { skipSpecialTokens: true }), 'ello');
});

test('ignore_merges takes a whole word from the vocabulary before merging', () => {
  const json = spTokenizerJson('llama2') as { model: { vocab: Record<string, number>; ignore_merges: boolean } };
  json.model.vocab['▁tthe'] = 286; // not reachable through the merges
  assert.deepEqual(Tokenizer.fromJSON(json).encode('tthe'), [1, 279, 267, 280]);
  json.model.ignore_merges = true;
  assert.deepEqual(Tokenizer.fromJSON(json).encode('tthe'), [1, 286]);
  assert.deepEqual(Tokenizer.fromJSON(json).encode('hello world'), [1, 273, 278]); // "▁hello▁world" is not in the vocabulary
});

test('merges: "#version" header line, both serialisations give the same model', () => {
  const json = spTokenizerJson('llama2') as { model: { merges: unknown[] } };
  json.model.merges = ['#version: 0.2', ...json.model.merges];
  const t = Tokenizer.fromJSON(json);
  for (const s of ['hello world', 'hi<s>there', 'tthe  the']) assert.deepEqual(t.encode(s), llama2.encode(s));
});

test('Metaspace decoder drops the replacement char in the first token (prepend_scheme first/always)', () => {
  const json = spTokenizerJson('metaspace-first') as { decoder: unknown; model: { byte_fallback: boolean } };
  json.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false };
  const t = Tokenizer.fromJSON(json);
  assert.equal(t.decode([273, 278]), 'hello world');
  assert.equal(t.decode([282, 273]), ' hello'); // every ▁ of the first token is removed, as in the library
  json.decoder = { type: 'Metaspace', replacement: '▁', prepend_scheme: 'never', split: false };
  assert.equal(Tokenizer.fromJSON(json).decode([273, 278]), ' hello world');
});

test('BPE dropout is rejected with a clear error; null or 0 is accepted', () => {
  const json = spTokenizerJson('llama2') as { model: { dropout: number | null } };
  json.model.dropout = 0;
  assert.deepEqual(Tokenizer.fromJSON(json).encode('hello world'), [1, 273, 278]);
  json.model.dropout = 0.1;
  assert.throws(
    () => Tokenizer.fromJSON(json),
    (e: unknown) => e instanceof TokenizerFormatError && e.field === 'model.dropout' && /not supported/.test(e.message),
  );
});

test('truncation (room left for the template tokens) and padding from tokenizer.json', () => {
  const json = spTokenizerJson('llama2') as Record<string, unknown>;
  // "hello world the" -> ▁hello ▁world ▁the; max_length 3 keeps 3 - 1 (for <s>) = 2 text tokens
  json.truncation = { max_length: 3, strategy: 'LongestFirst', stride: 0, direction: 'Right' };
  assert.deepEqual(Tokenizer.fromJSON(json).encode('hello world the'), [1, 273, 278]);
  assert.deepEqual(Tokenizer.fromJSON(json).encode('hello world the', { addSpecialTokens: false }), [273, 278, 281]);
  json.truncation = { max_length: 3, strategy: 'LongestFirst', stride: 0, direction: 'Left' };
  assert.deepEqual(Tokenizer.fromJSON(json).encode('hello world the'), [1, 278, 281]);
  json.truncation = null;
  json.padding = { strategy: { Fixed: 6 }, direction: 'Right', pad_to_multiple_of: null, pad_id: 2, pad_type_id: 0, pad_token: '</s>' };
  const enc = Tokenizer.fromJSON(json).encodeWithOffsets('hello world the');
  assert.deepEqual(enc.ids, [1, 273, 278, 281, 2, 2]);
  assert.deepEqual(enc.attentionMask, [1, 1, 1, 1, 0, 0]);
  assert.deepEqual(enc.specialTokensMask, [1, 0, 0, 0, 1, 1]);
  assert.deepEqual(enc.offsets, [
    [0, 0],
    [0, 5],
    [5, 11],
    [11, 15],
    [0, 0],
    [0, 0],
  ]);
});

test('long inputs: one 60k-character word (no pre-tokenizer) encodes and decodes', () => {
  const s = 'hello world '.repeat(5000);
  const ids = llama2.encode(s);
  assert.equal(ids.length, 10002); // <s>, then ▁hello ▁world per repetition, and the final ▁
  assert.deepEqual(ids.slice(0, 5), [1, 273, 278, 273, 278]);
  assert.equal(ids[ids.length - 1], 259);
  assert.equal(llama2.decode(ids, { skipSpecialTokens: true }), s);
  assert.equal(llama2.encodeWithOffsets(s).offsets.length, 10002);
});
