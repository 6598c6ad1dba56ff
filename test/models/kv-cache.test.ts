// The KV cache: attention through it (float32 and bf16) against the attention op on the same keys and values,
// bf16 storage (round to nearest even, written by copyStrided), copies of a prefilled cache, and generation with
// a bf16 cache against a float32 one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attention } from '../../src/engine/ops/attention.js';
import { core, packageRoot } from '../../src/engine/native.js';
import { Random } from '../../src/engine/random.js';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { llamaConfig } from '../../src/models/config.js';
import { generate } from '../../src/models/generate.js';
import { KVCache } from '../../src/models/kv-cache.js';

const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');

/** float32 → bf16 bits, round to nearest even (the reference the native store is checked against). */
function bf16Bits(x: number): number {
  const u = new Uint32Array(Float32Array.of(x).buffer)[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
const widen = (h: number): number => new Float32Array(Uint32Array.of(h << 16).buffer)[0]!;

test('copyStrided into a Uint16Array stores bf16 rounded to nearest even (ties to even, NaN, infinities, strides)', () => {
  const special = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1 + 2 ** -8 + 2 ** -20, 3.4e38, -Infinity, Infinity, Number.NaN, 0, -0, 1e-40, 65504.7];
  const rng = new Random(3);
  const vals = Float32Array.from([...special, ...Array.from({ length: 500 }, () => rng.normal() * 10 ** rng.int(6))]);
  const dst = new Uint16Array(vals.length);
  core.copyStrided(vals, 0, [vals.length], [1], dst, 0, [1]);
  for (let i = 0; i < vals.length; i++) assert.equal(dst[i], bf16Bits(vals[i]!), `value ${vals[i]}: bits ${dst[i]!.toString(16)} vs ${bf16Bits(vals[i]!).toString(16)}`);
  assert.equal(dst[0], 0x3f80, '1 + 2^-8 is a tie: rounds to the even 1.0');
  assert.equal(dst[1], 0x3f82, '1 + 3·2^-8 is a tie: rounds up to the even neighbour');
  assert.equal(dst[3], 0x3f81, 'just above the tie rounds up');
  // a strided source into a strided destination: the transpose of a 3 × 5 block into a wider row stride
  const src = Float32Array.from({ length: 15 }, (_, i) => i + 0.3);
  const out = new Uint16Array(42).fill(0xffff);
  core.copyStrided(src, 0, [5, 3], [1, 5], out, 2, [8, 1]);
  for (let r = 0; r < 5; r++) for (let c = 0; c < 8; c++) assert.equal(out[2 + r * 8 + c], c < 3 ? bf16Bits(src[c * 5 + r]!) : 0xffff, `row ${r} column ${c}`);
  assert.deepEqual([out[0], out[1]], [0xffff, 0xffff], 'nothing written before the offset');
});

/** [B, H, T, D] float32 tensor of normal values */
function randn(shape: number[], rng: Random): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.from(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

/** The first n positions of a cache layer as a [B, H, n, D] float32 tensor (bf16 widened exactly). */
function cached(c: KVCache, a: Float32Array | Uint16Array, n: number): Tensor {
  const { numKvHeads: H, headDim: D } = c.config;
  const out = new Float32Array(c.batch * H * n * D);
  for (let b = 0; b < c.batch; b++)
    for (let h = 0; h < H; h++)
      for (let t = 0; t < n; t++)
        for (let d = 0; d < D; d++) {
          const x = a[((b * H + h) * c.capacity + t) * D + d]!;
          out[((b * H + h) * n + t) * D + d] = a instanceof Uint16Array ? widen(x) : x;
        }
  return Tensor.from(out, [c.batch, H, n, D]);
}

for (const dtype of ['fp32', 'bf16'] as const) {
  test(`KVCache (${dtype}): a prefill and decoding steps through the cache equal attention over the stored keys and values, bit for bit`, () => {
    // grouped-query heads (4 query heads on 2 kv heads), D = 24, a left-padded row, prefill of 20 (the packed
    // tile path) then three single-token steps (the in-place path), capacity larger than used
    const config = llamaConfig({ vocabSize: 10, hiddenSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 8 });
    const rng = new Random(11);
    const B = 2,
      Hq = 4,
      Hkv = 2,
      D = 24;
    const cache = new KVCache(config, B, 40, dtype);
    noGrad(() =>
      tidy(() => {
        const mask = new Int32Array(B * 20).fill(1);
        for (let t = 0; t < 5; t++) mask[20 + t] = 0; // row 1: five padding positions on the left
        for (const T of [20, 1, 1, 1]) {
          cache.appendMask(T, T === 20 ? mask : undefined);
          const keyMask = cache.maskPrefix(cache.length + T);
          for (let layer = 0; layer < 2; layer++) {
            const q = randn([B, Hq, T, D], rng),
              k = randn([B, Hkv, T, D], rng),
              v = randn([B, Hkv, T, D], rng);
            const got = cache.attend(layer, q, k, v, keyMask).toArray();
            // the new keys were stored as the cache's dtype stores them
            const kAll = cached(cache, cache.k[layer]!, cache.length + T),
              vAll = cached(cache, cache.v[layer]!, cache.length + T);
            const newK = kAll.slice(2, cache.length, cache.length + T).toArray(),
              want = k.toArray();
            for (let i = 0; i < want.length; i++) assert.equal(newK[i], dtype === 'bf16' ? widen(bf16Bits(want[i]!)) : want[i], `stored key ${i}`);
            const ref = attention(q, kAll, vAll, { causal: true, keyMask, queryOffset: cache.length }).toArray();
            assert.deepEqual(got, ref, `T=${T} layer ${layer}`);
          }
          cache.length += T;
        }
      }),
    );
    // copies of the filled rows: a repeated cache holds the same values per sample
    const rep = cache.repeatRows(3);
    assert.equal(rep.dtype, dtype);
    assert.equal(rep.length, cache.length);
    const per = Hkv * 40 * D;
    for (let b = 0; b < B; b++)
      for (let s = 0; s < 3; s++) {
        const want = cache.k[1]!.subarray(b * per, b * per + per),
          got = rep.k[1]!.subarray((b * 3 + s) * per, (b * 3 + s) * per + per);
        for (let h = 0; h < Hkv; h++) assert.deepEqual(got.subarray(h * 40 * D, h * 40 * D + cache.length * D), want.subarray(h * 40 * D, h * 40 * D + cache.length * D));
      }
    assert.deepEqual(rep.keyMask.subarray(40 * 3, 40 * 4), cache.keyMask.subarray(40, 80));
    rep.dispose();
    cache.dispose();
  });
}

test('the portable (non-AVX2) kernels pass the same bit-for-bit cache tests (child process, ALIGNKIT_PORTABLE=1)', { skip: process.env.ALIGNKIT_PORTABLE === '1' }, () => {
  const r = spawnSync(process.execPath, ['--test', '--test-name-pattern=bit for bit', fileURLToPath(import.meta.url)], {
    env: { ...process.env, ALIGNKIT_PORTABLE: '1', NODE_TEST_CONTEXT: undefined }, // a plain run, not a subtest stream
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# pass 2\b/, r.stdout);
});

test('KVCache refuses a bad dtype, a full cache and gradients', () => {
  const config = llamaConfig({ vocabSize: 10, hiddenSize: 16, numLayers: 1, numHeads: 2, intermediateSize: 8 });
  assert.throws(() => new KVCache(config, 1, 4, 'fp16' as never), /dtype must be 'fp32' or 'bf16', got 'fp16'/);
  const cache = new KVCache(config, 1, 4, 'bf16');
  assert.throws(() => cache.appendMask(5), /KV cache full: 0 \+ 5 > capacity 4/);
  const q = Tensor.param(Tensor.zeros([1, 2, 1, 8])),
    k = Tensor.zeros([1, 2, 1, 8]);
  assert.throws(() => cache.attend(0, q, k, k, Uint8Array.of(1)), /runs without gradients/);
  const q0 = Tensor.zeros([1, 2, 1, 8]);
  assert.throws(() => cache.attend(0, q0, k, k, new Uint8Array(3)), /keyMask has 3 entries, expected batch·\(length \+ T\) = 1/);
  assert.throws(() => cache.attend(0, q0, k, Tensor.zeros([1, 2, 2, 8]), Uint8Array.of(1)), /k \[1,2,1,8\] and v \[1,2,2,8\] do not fit a cache of 1 rows, 2 kv heads of 8/);
  assert.equal(cache.length, 0);
  cache.dispose();
});

for (const name of ['tiny-gpt2', 'tiny-llama']) {
  test(`${name}: generation with a bf16 KV cache tracks the float32 cache, and shares prefills the same way`, () => {
    const { model } = loadPretrained(join(FIX, name));
    const prompts = [[5, 17, 300, 42, 7, 99], [11], [250, 3, 8]];
    const fp32 = generate(model, prompts, { maxNewTokens: 12, doSample: false, padTokenId: 0, kvCacheDtype: 'fp32' });
    const bf16 = generate(model, prompts, { maxNewTokens: 12, doSample: false, padTokenId: 0, kvCacheDtype: 'bf16' });
    // Keys and values rounded to bf16 (relative error <= 2^-9) move the fixtures' log-probs by well under 1e-2
    // (observed below 1e-3); the greedy tokens are the same.
    assert.deepEqual(bf16.tokens, fp32.tokens);
    let worst = 0;
    bf16.logprobs.forEach((row, b) => row.forEach((lp, i) => (worst = Math.max(worst, Math.abs(lp - fp32.logprobs[b]![i]!)))));
    assert.ok(worst < 1e-2, `worst log-prob difference ${worst}`);
    assert.ok(worst > 0, 'a bf16 cache should round something');
    // a prefilled bf16 cache copied into its samples equals generating from the repeated prompts with bf16 caches
    const o = { maxNewTokens: 8, temperature: 0.9, seed: 5, padTokenId: 0, kvCacheDtype: 'bf16' as const };
    const shared = generate(model, prompts, { ...o, numReturnSequences: 2 });
    const plain = generate(
      model,
      prompts.flatMap((p) => [p, p]),
      o,
    );
    assert.deepEqual(shared.tokens, plain.tokens);
    shared.logprobs.forEach((row, b) => row.forEach((lp, i) => assert.ok(Math.abs(lp - plain.logprobs[b]![i]!) < 1e-5, `row ${b} logprob ${i}`)));
    model.dispose();
  });
}
