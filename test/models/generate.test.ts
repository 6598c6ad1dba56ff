// Generation with the KV cache against recomputing the whole sequence, sampling statistics, EOS and stop strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { noGrad, tidy } from '../../src/engine/tensor.js';
import { packageRoot } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { generate, sampleToken } from '../../src/models/generate.js';
import type { Transformer } from '../../src/models/transformer.js';

const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');

/** Greedy decoding by running the full, unpadded sequence through the model at every step (no cache). */
function greedyNoCache(model: Transformer, prompt: number[], n: number): { tokens: number[]; logprobs: number[] } {
  const seq = [...prompt],
    tokens: number[] = [],
    logprobs: number[] = [];
  const V = model.config.vocabSize;
  for (let i = 0; i < n; i++) {
    const row = noGrad(() => tidy(() => model.forward(Int32Array.from(seq), 1, seq.length).toArray())).subarray((seq.length - 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(row[v]! - row[best]!);
    tokens.push(best);
    logprobs.push(-Math.log(z));
    seq.push(best);
  }
  return { tokens, logprobs };
}

for (const name of ['tiny-gpt2', 'tiny-llama']) {
  test(`${name}: batched, left-padded greedy generation with the KV cache equals full recomputation`, () => {
    const { model } = loadPretrained(join(FIX, name));
    const prompts = [[5, 17, 300, 42, 7, 99], [11], [250, 3, 8]];
    const out = generate(model, prompts, { maxNewTokens: 12, doSample: false, padTokenId: 0 });
    prompts.forEach((p, b) => {
      const want = greedyNoCache(model, p, 12);
      assert.deepEqual(out.tokens[b], want.tokens, `row ${b} tokens`);
      out.logprobs[b]!.forEach((lp, i) => assert.ok(Math.abs(lp - want.logprobs[i]!) < 1e-4, `row ${b} logprob ${i}: ${lp} vs ${want.logprobs[i]}`));
      assert.equal(out.finishReason[b], 'length');
    });
    model.dispose();
  });
}

test('sampling is seeded; EOS, stop strings and streaming behave', () => {
  const { model } = loadPretrained(join(FIX, 'tiny-gpt2'));
  const prompts = [
    [1, 2, 3],
    [4, 5],
  ];
  const a = generate(model, prompts, { maxNewTokens: 10, temperature: 1.0, seed: 7 });
  const b = generate(model, prompts, { maxNewTokens: 10, temperature: 1.0, seed: 7 });
  const c = generate(model, prompts, { maxNewTokens: 10, temperature: 1.0, seed: 8 });
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
  // top-k = 1 is greedy
  const g = generate(model, prompts, { maxNewTokens: 10, doSample: false });
  assert.deepEqual(generate(model, prompts, { maxNewTokens: 10, temperature: 0.7, topK: 1, seed: 3 }).tokens, g.tokens);
  // EOS: make the third greedy token of row 0 the EOS id
  const eos = g.tokens[0]![2]!;
  const e = generate(model, [prompts[0]!], { maxNewTokens: 10, doSample: false, eosTokenId: eos });
  assert.deepEqual(e.tokens[0], g.tokens[0]!.slice(0, g.tokens[0]!.indexOf(eos) + 1));
  assert.equal(e.finishReason[0], 'eos');
  // stop string over a decode function
  const decode = (ids: number[]): string => ids.map((i) => `<${i}>`).join('');
  const stop = `<${g.tokens[1]![3]}>`;
  const s = generate(model, [prompts[1]!], { maxNewTokens: 10, doSample: false, stopStrings: [stop], decode });
  assert.equal(s.finishReason[0], 'stop');
  assert.ok(decode(s.tokens[0]!).endsWith(stop));
  // streaming sees every token in order
  const seen: number[][] = [[], []];
  const st = generate(model, prompts, { maxNewTokens: 6, seed: 1, onToken: (row, tok) => seen[row]!.push(tok) });
  assert.deepEqual(seen, st.tokens);
  assert.throws(() => generate(model, [[1, 5000]], { maxNewTokens: 1 }), /outside the vocabulary/);
  model.dispose();
});

test('top-k and top-p restrict sampling to the right tokens with the right odds', () => {
  const row = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const rng = new Random(11);
  const counts = [0, 0, 0, 0];
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sampleToken(row, 1, undefined, 0.7, rng)[0]]!++;
  // nucleus of mass >= 0.7 is {0, 1}: odds 5:3
  assert.equal(counts[2]! + counts[3]!, 0);
  assert.ok(Math.abs(counts[0]! / n - 0.625) < 0.02, `p(0) ≈ 0.625, got ${counts[0]! / n}`);
  const k2 = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) k2[sampleToken(row, 1, 3, undefined, rng)[0]]!++;
  assert.equal(k2[3], 0);
  assert.ok(Math.abs(k2[2]! / n - 0.15 / 0.95) < 0.02);
  // the returned log-prob is under the full temperature-scaled distribution
  const [tok, lp] = sampleToken(row, 1, 1, undefined, rng);
  assert.equal(tok, 0);
  assert.ok(Math.abs(lp - Math.log(0.5)) < 1e-6);
  const [, lpT] = sampleToken(row, 2, 1, undefined, rng);
  const z = [0.5, 0.3, 0.15, 0.05].reduce((s, p) => s + Math.sqrt(p), 0);
  assert.ok(Math.abs(lpT - Math.log(Math.sqrt(0.5) / z)) < 1e-6);
});

for (const name of ['tiny-gpt2', 'tiny-llama']) {
  test(`${name}: numReturnSequences (each prompt prefilled once, its KV cache copied) equals generating from repeated prompts`, () => {
    const { model } = loadPretrained(join(FIX, name));
    const prompts = [[5, 17, 300, 42, 7, 99], [11], [250, 3, 8]];
    const n = 3;
    const repeated = prompts.flatMap((p) => Array.from({ length: n }, () => p));
    for (const o of [{ doSample: false }, { temperature: 0.9, seed: 7, topK: 50 }]) {
      const shared = generate(model, prompts, { maxNewTokens: 10, padTokenId: 0, numReturnSequences: n, ...o });
      const plain = generate(model, repeated, { maxNewTokens: 10, padTokenId: 0, ...o });
      assert.deepEqual(shared.tokens, plain.tokens);
      assert.deepEqual(shared.finishReason, plain.finishReason);
      shared.logprobs.forEach((row, b) => row.forEach((lp, i) => assert.ok(Math.abs(lp - plain.logprobs[b]![i]!) < 1e-5, `row ${b} logprob ${i}: ${lp} vs ${plain.logprobs[b]![i]}`)));
    }
    // sampled rows of one prompt differ from each other (they share the prefill, not the draws)
    const s = generate(model, [prompts[0]!], { maxNewTokens: 12, temperature: 1, seed: 3, numReturnSequences: 4, padTokenId: 0 });
    assert.equal(s.tokens.length, 4);
    assert.ok(new Set(s.tokens.map((t) => t.join(','))).size > 1, 'samples of one prompt should not all be equal');
    assert.throws(() => generate(model, prompts, { maxNewTokens: 2, numReturnSequences: 0 }), /numReturnSequences must be a positive integer/);
    model.dispose();
  });
}
