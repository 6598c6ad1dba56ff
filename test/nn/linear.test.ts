// The fused linear op (bias broadcast into the output, products accumulated onto it, the LoRA update in the same
// output) against the same layer composed from matmul, add and scale: values and every gradient (input, weight,
// bias, A, B, and a separate adapter input as LoRA dropout makes), both weight layouts, fp32 and bf16, and a
// batched [B, T, in] input; and the tensors one layer leaves alive, one output instead of five.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autocast } from '../../src/engine/autocast.js';
import { add, dropout, mul, scale, sum } from '../../src/engine/ops/elementwise.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import { Random } from '../../src/engine/random.js';
import { Tensor, memoryStats, tidy } from '../../src/engine/tensor.js';
import { linear, type WeightLayout } from '../../src/nn/linear.js';

function rand(shape: number[], rng: Random, s = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * s;
  return Tensor.param(Tensor.from(d, shape));
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0,
    scaleMax = 1e-6;
  for (let i = 0; i < a.length; i++) scaleMax = Math.max(scaleMax, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m / scaleMax;
}

function composed(x: Tensor, w: Tensor, b: Tensor | null, layout: WeightLayout, lr: { A: Tensor; B: Tensor; s: number; input: Tensor } | null): Tensor {
  let y = matmul(x, layout === 'in_out' ? w : w.transpose(0, 1));
  if (b) y = add(y, b);
  if (lr) y = add(y, scale(matmul(matmul(lr.input, lr.A.transpose(0, 1)), lr.B.transpose(0, 1)), lr.s));
  return y;
}

for (const precision of ['fp32', 'bf16'] as const) {
  test(`fused linear equals the composed ops, values and gradients (${precision})`, () => {
    // both sides round the same inputs to bf16 and differ only in fp32 summation order (observed <= 2e-7)
    const tol = 1e-6;
    const rng = new Random(precision === 'fp32' ? 1 : 2);
    for (const layout of ['in_out', 'out_in'] as const) {
      for (const withBias of [false, true]) {
        for (const adapter of ['none', 'lora', 'lora-dropout'] as const) {
          const [Bn, T, K, N, r] = [3, 7, 37, 29, 4];
          const x = rand([Bn, T, K], rng);
          const w = layout === 'in_out' ? rand([K, N], rng, 0.2) : rand([N, K], rng, 0.2);
          const b = withBias ? rand([N], rng) : null;
          const A = rand([r, K], rng, 0.3),
            B = rand([N, r], rng, 0.3);
          const upstream = rand([Bn, T, N], rng);
          const run = (fused: boolean) =>
            tidy(() => {
              for (const t of [x, w, b, A, B]) if (t) t.grad = null;
              return autocast(precision, () => {
                const input = adapter === 'lora-dropout' ? dropout(x, 0.3, 9, true) : x;
                const lr = adapter === 'none' ? null : { A, B, s: 1.75, input };
                const y = fused ? linear(x, w, b, layout, lr ? { A, B, scaling: lr.s, input } : null) : composed(x, w, b, layout, lr);
                sum(mul(y, upstream)).backward();
                return { y: y.toArray(), grads: [x, w, b, A, B].map((t) => (t?.grad ? t.grad.toArray() : null)) };
              });
            });
          const f = run(true),
            c = run(false);
          const what = `${layout} bias=${withBias} ${adapter}`;
          assert.ok(maxRel(f.y, c.y) < tol, `${what}: output differs by ${maxRel(f.y, c.y)}`);
          ['x', 'W', 'b', 'A', 'B'].forEach((n, i) => {
            const fg = f.grads[i],
              cg = c.grads[i];
            if (!fg || !cg) {
              assert.equal(fg, cg, `${what}: d${n} missing on one side`);
              return;
            }
            assert.ok(maxRel(fg, cg) < tol, `${what}: d${n} differs by ${maxRel(fg, cg)}`);
          });
        }
      }
    }
  });
}

test('a frozen layer with an adapter computes only the adapter and input gradients', () => {
  const rng = new Random(4);
  const x = rand([5, 16], rng),
    w = rand([12, 16], rng),
    b = rand([12], rng),
    A = rand([2, 16], rng),
    B = rand([12, 2], rng);
  w.requiresGrad = false;
  b.requiresGrad = false;
  tidy(() => {
    sum(linear(x, w, b, 'out_in', { A, B, scaling: 2, input: x })).backward();
    assert.equal(w.grad, null);
    assert.equal(b.grad, null);
    assert.ok(A.grad && B.grad && x.grad);
  });
});

test('one layer with bias and adapter leaves one [rows x out] tensor where the composed ops leave five', () => {
  const rng = new Random(5);
  const [R, K, N] = [512, 64, 1024]; // [R, N] fp32 = 2 MiB, far above the small-buffer threshold
  const x = rand([R, K], rng),
    w = rand([N, K], rng),
    b = rand([N], rng),
    A = rand([8, K], rng),
    B = rand([N, 8], rng);
  const liveAfter = (fused: boolean) =>
    tidy(() => {
      const before = memoryStats().liveBytes;
      const y = fused ? linear(x, w, b, 'out_in', { A, B, scaling: 2, input: x }) : composed(x, w, b, 'out_in', { A, B, s: 2, input: x });
      const grown = memoryStats().liveBytes - before;
      y.dispose();
      return grown;
    });
  const outBytes = R * N * 4;
  const fused = liveAfter(true),
    comp = liveAfter(false);
  assert.ok(fused < 1.1 * outBytes, `fused: ${fused} bytes live for a ${outBytes}-byte output`);
  assert.ok(comp > 4 * outBytes, `composed: ${comp} bytes (expected about 5 outputs)`);
});
