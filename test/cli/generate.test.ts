// `alignkit generate` on a checkpoint directory: streams the greedy continuation the library computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/engine/native.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { generate } from '../../src/models/generate.js';
import { Tokenizer, trainByteLevelBPE } from '../../src/tokenizer/index.js';

const ROOT = packageRoot();
const FIX = join(ROOT, 'test', 'fixtures', 'hf-fixtures');

test('alignkit generate streams the greedy continuation of a checkpoint directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-gen-'));
  try {
    cpSync(join(FIX, 'tiny-gpt2'), dir, { recursive: true });
    // a tokenizer no larger than the model's 1000-token vocabulary
    const corpus = Array.from({ length: 200 }, (_, i) => `the quick brown fox ${i} jumps over the lazy dog, said the model.`);
    trainByteLevelBPE(corpus, { vocabSize: 400, specialTokens: ['<|endoftext|>'], config: { eos_token: '<|endoftext|>', bos_token: '<|endoftext|>' } }).save(dir);
    const out = execFileSync(
      process.execPath,
      [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'generate', '--model', dir, '--prompt', 'the quick brown', '--max-new-tokens', '8', '--temperature', '0'],
      { encoding: 'utf8' },
    );
    assert.ok(out.startsWith('the quick brown'), out);
    // the same through the library
    const { model } = loadPretrained(dir);
    const tok = Tokenizer.fromPretrained(dir);
    const res = generate(model, [tok.encode('the quick brown', { addSpecialTokens: true })], { maxNewTokens: 8, doSample: false, eosTokenId: tok.eosTokenId ?? null });
    assert.equal(out, 'the quick brown' + tok.decode(res.tokens[0]!, { skipSpecialTokens: true }) + '\n');
    model.dispose();
    // errors are clear
    assert.throws(
      () => execFileSync(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'generate', '--model', join(FIX, 'tiny-gpt2'), '--prompt', 'x'], { stdio: 'pipe' }),
      /has no tokenizer\.json/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
