// Malformed tokenizer.json files give errors that name the offending field.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer, TokenizerError, TokenizerFormatError } from '../../src/tokenizer/index.js';
import { spTokenizerJson } from './helpers.js';

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function expectField(mutate: (j: J) => void, field: string, pattern?: RegExp): void {
  const j = spTokenizerJson('llama2') as J;
  mutate(j);
  assert.throws(
    () => Tokenizer.fromJSON(j),
    (e: unknown) => {
      assert.ok(e instanceof TokenizerFormatError, `expected TokenizerFormatError, got ${String(e)}`);
      assert.equal(e.field, field);
      assert.ok(e.message.startsWith(`tokenizer.json: ${field}: `), e.message);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
    field,
  );
}

test('model errors name the field', () => {
  expectField((j) => delete j.model, 'model', /missing/);
  expectField((j) => (j.model.type = 'WordPiece'), 'model.type', /only "BPE"/);
  expectField((j) => (j.model.vocab = [1, 2]), 'model.vocab', /expected an object/);
  expectField((j) => (j.model.vocab.x = -1), 'model.vocab."x"', /non-negative integer/);
  expectField((j) => (j.model.merges = 'a b'), 'model.merges', /expected an array/);
  expectField((j) => (j.model.merges[3] = 'l l o'), 'model.merges[3]', /two tokens/);
  expectField((j) => (j.model.merges[2] = ['▁h']), 'model.merges[2]', /pair/);
  expectField((j) => (j.model.merges[4] = 'q z'), 'model.merges[4]', /"q".*not in model.vocab/);
  expectField((j) => (j.model.byte_fallback = 'yes'), 'model.byte_fallback', /true or false/);
  expectField((j) => (j.model.dropout = 2), 'model.dropout', /between 0 and 1/);
});

test('component and added-token errors name the field', () => {
  expectField((j) => (j.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Frobnicate' }] }), 'normalizer.normalizers[1].type', /unsupported normalizer type "Frobnicate"/);
  expectField((j) => (j.normalizer.normalizers[1].pattern = { Glob: '*' }), 'normalizer.normalizers[1].pattern.String', /"String".*"Regex"/);
  expectField((j) => (j.pre_tokenizer = { type: 'Split', pattern: { String: ' ' }, behavior: 'Sideways', invert: false }), 'pre_tokenizer.behavior', /Removed, Isolated/);
  expectField((j) => (j.pre_tokenizer = { type: 'Metaspace', replacement: '__' }), 'pre_tokenizer.replacement', /single character/);
  expectField((j) => (j.decoder.decoders[3].start = 'one'), 'decoder.decoders[3].start', /number/);
  expectField((j) => (j.decoder = { type: 'CTC' }), 'decoder.type', /unsupported decoder type "CTC"/);
  expectField((j) => delete j.added_tokens[1].content, 'added_tokens[1].content', /missing/);
  expectField((j) => (j.added_tokens = { id: 0 }), 'added_tokens', /expected an array/);
  expectField((j) => (j.post_processor.single[0].SpecialToken.id = '<bos>'), 'post_processor.special_tokens', /"<bos>"/);
  expectField((j) => (j.post_processor = { type: 'RobertaProcessing', sep: '</s>', cls: ['<s>', 1] }), 'post_processor.sep', /\["token", id\] pair/);
  expectField((j) => (j.truncation = { max_length: -3 }), 'truncation.max_length', /non-negative integer/);
});

test('an unk_token missing from the vocabulary fails when it is needed, naming model.unk_token', () => {
  const j = spTokenizerJson('no-fallback-fused') as J;
  j.model.unk_token = '<oov>';
  const t = Tokenizer.fromJSON(j);
  assert.deepEqual(t.encode('hello'), [1, 273]);
  assert.throws(
    () => t.encode('€'),
    (e: unknown) => e instanceof TokenizerFormatError && e.field === 'model.unk_token',
  );
});

test('files: unreadable, invalid JSON, missing tokenizer.json, bad config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-tokerr-'));
  try {
    assert.throws(
      () => Tokenizer.fromFile(join(dir, 'nope.json')),
      (e: unknown) => e instanceof TokenizerError && /cannot read tokenizer.json/.test(e.message),
    );
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    assert.throws(() => Tokenizer.fromFile(join(dir, 'tokenizer.json')), /tokenizer.json .* is not valid JSON/);
    assert.throws(() => Tokenizer.fromPretrained(join(dir, 'missing')), /no tokenizer.json in/);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(spTokenizerJson('llama2')));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: 42 }));
    assert.throws(
      () => Tokenizer.fromPretrained(dir),
      (e: unknown) => e instanceof TokenizerFormatError && e.field === 'chat_template' && e.message.startsWith('tokenizer_config.json: '),
    );
    assert.throws(() => Tokenizer.fromJSON([1, 2]), /expected a JSON object/);
    const t = Tokenizer.fromJSON(spTokenizerJson('llama2'));
    assert.throws(() => t.encode(42 as unknown as string), /expected a string/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
