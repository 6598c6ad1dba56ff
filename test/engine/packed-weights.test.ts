// Weights packed once (withPackedWeights): products through the packed panels equal the per-call products bit for
// bit (fp32 and bf16, plain and transposed weights, sizes that cross the driver's N and K block edges, a few
// rows and many), generate gives the same tokens and log-probs with and without packing, the scope only packs
// the weights it was given, and a handle refuses a product of another shape or precision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autocast, bf16Supported } from '../../src/engine/autocast.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import { packedGemm, packedOperand, withPackedWeights } from '../../src/engine/ops/packed-weights.js';
import { Random } from '../../src/engine/random.js';
import { Tensor, noGrad } from '../../src/engine/tensor.js';
import { gpt2Config } from '../../src/models/config.js';
import { generate } from '../../src/models/generate.js';
import { Transformer } from '../../src/models/transformer.js';

function rand(shape: number[], rng: Random): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal();
  return Tensor.from(d, shape);
}

const bitsEqual = (a: Float32Array, b: Float32Array) =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

test('packed products equal per-call products bit for bit', () => {
  const rng = new Random(7);
  // K 800 crosses the 384-deep K blocks; N 3100 crosses the 3072-wide N blocks; M 9 and 70 rows take the packed path
  for (const [M, K, N] of [
    [9, 33, 17],
    [70, 800, 129],
    [13, 129, 3100],
    [200, 385, 40],
  ] as const) {
    for (const precision of ['fp32', 'bf16'] as const) {
      for (const layout of ['in_out', 'out_in'] as const) {
        const x = rand([M, K], rng);
        const w = layout === 'in_out' ? rand([K, N], rng) : rand([N, K], rng);
        const b = layout === 'in_out' ? w : w.transpose(0, 1);
        const plain = noGrad(() => matmul(x, b, { precision })).toArray();
        let packed: Float32Array = new Float32Array(0);
        let handles = 0;
        withPackedWeights([w], () => {
          const x3 = x.reshape([1, M, K]); // the folded [batch, rows, K] form decoding uses
          packed = noGrad(() => matmul(x3, b, { precision })).toArray();
          const again = noGrad(() => matmul(x, b, { precision })).toArray(); // the same panels, reused
          assert.ok(bitsEqual(packed, again));
          handles = packedOperand(b, layout === 'out_in', layout === 'out_in' ? K : N, M, precision) ? 1 : 0;
        });
        assert.equal(handles, 1, 'the weight was packed inside the scope');
        assert.ok(bitsEqual(plain, packed), `M${M} K${K} N${N} ${precision} ${layout}: packed product differs`);
      }
    }
  }
});

test('the scope packs only its own weights, only for more than 8 rows, and nothing outside it', () => {
  const rng = new Random(3);
  const w = rand([64, 48], rng),
    other = rand([64, 48], rng);
  assert.equal(packedOperand(w, false, 48, 32, 'fp32'), null, 'no scope');
  withPackedWeights([w], () => {
    assert.ok(packedOperand(w, false, 48, 32, 'fp32'));
    assert.equal(packedOperand(w, false, 48, 8, 'fp32'), null, '8 fp32 rows stream the weight unpacked');
    assert.ok(packedOperand(w, false, 48, 8, 'bf16'), 'under bf16 they read the bf16 panels');
    assert.equal(packedOperand(other, false, 48, 32, 'fp32'), null, 'not a weight of the scope');
    assert.equal(packedOperand(w, false, 48, 32, 'fp32'), packedOperand(w, false, 48, 32, 'fp32'), 'one handle per weight and layout');
    assert.notEqual(packedOperand(w, false, 48, 32, 'fp32'), packedOperand(w, false, 48, 32, 'bf16'), 'one per precision');
    withPackedWeights([other], () => assert.ok(packedOperand(other, false, 48, 32, 'fp32'), 'a nested scope adds weights'));
    assert.equal(packedOperand(other, false, 48, 32, 'fp32'), null, 'and removes them when it ends');
  });
  assert.equal(packedOperand(w, false, 48, 32, 'fp32'), null);
});

test('a packed handle refuses another shape, another precision, and use after free', () => {
  const rng = new Random(5);
  const w = rand([40, 24], rng),
    x = rand([16, 40], rng);
  const c = new Float32Array(16 * 24);
  const h = packedGemm.sgemmPackB(false, 40, 24, w.data, w.offset, 24, false);
  packedGemm.sgemmPacked(false, 16, 24, 40, 1, x.data, x.offset, 40, h, w.data, w.offset, 0, c, 0, 24, false);
  assert.ok(bitsEqual(c, noGrad(() => matmul(x, w, { precision: 'fp32' })).toArray()));
  assert.throws(() => packedGemm.sgemmPacked(false, 16, 20, 40, 1, x.data, 0, 40, h, w.data, 0, 0, c, 0, 20, false), /packed B is 40x24, the product needs 40x20/);
  assert.throws(() => packedGemm.sgemmPacked(false, 16, 24, 40, 1, x.data, 0, 40, h, w.data, 0, 0, c, 0, 24, true), /other precision/);
  packedGemm.sgemmPackedFree(h);
  assert.throws(() => packedGemm.sgemmPacked(false, 16, 24, 40, 1, x.data, 0, 40, h, w.data, 0, 0, c, 0, 24, false), /was freed/);
});

test('generate gives the same tokens and log-probs with the weights packed', () => {
  const model = Transformer.random(gpt2Config({ vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 4, maxPositions: 64 }), 11);
  const rng = new Random(1);
  const prompts = Array.from({ length: 12 }, (_, i) => Array.from({ length: 3 + (i % 5) }, () => rng.int(300)));
  for (const precision of ['fp32', 'bf16'] as const) {
    const run = (packWeights: boolean) => autocast(precision, () => generate(model, prompts, { maxNewTokens: 10, temperature: 0.9, seed: 4, packWeights, numReturnSequences: 2 }));
    const a = run(false),
      b = run(true);
    assert.deepEqual(b.tokens, a.tokens, precision);
    assert.deepEqual(b.logprobs, a.logprobs, precision);
  }
  model.dispose();
});

test('under bf16 a product of up to 8 rows runs on the bf16 panels: within bf16 rounding of fp32, unlike the fp32 stream', { skip: !bf16Supported() && 'no AVX512_BF16 here' }, () => {
  const rng = new Random(9);
  const [M, K, N] = [5, 300, 70];
  const x = rand([M, K], rng),
    w = rand([K, N], rng);
  const exact = noGrad(() => matmul(x, w, { precision: 'fp32' })).toArray();
  const unpacked = noGrad(() => matmul(x, w, { precision: 'bf16' })).toArray();
  assert.ok(bitsEqual(unpacked, exact), 'unpacked, a few rows stay fp32');
  const packed = withPackedWeights([w], () => noGrad(() => matmul(x, w, { precision: 'bf16' })).toArray());
  // |Σ a·b − Σ bf16(a)·bf16(b)| <= 2·2^-8·Σ|a·b| (+ fp32 accumulation), per element
  const xa = x.toArray(),
    wa = w.toArray();
  let differs = false;
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let bound = 0;
      for (let k = 0; k < K; k++) bound += Math.abs(xa[i * K + k]! * wa[k * N + j]!);
      const d = Math.abs(packed[i * N + j]! - exact[i * N + j]!);
      assert.ok(d <= 2 ** -7 * bound + 1e-5, `(${i}, ${j}): ${d} > bf16 bound ${2 ** -7 * bound}`);
      if (d > 0) differs = true;
    }
  assert.ok(differs, 'the packed product did run in bf16');
});
