// AdamW against a float64 transcription of torch.optim.AdamW; clipping; schedules against hand-computed values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/engine/tensor.js';
import { AdamW, clipGradNorm, gradNorm, lrMultiplier } from '../../src/engine/optim.js';
import { Random } from '../../src/engine/random.js';
import { assertClose } from '../helpers/check.js';

function refAdamW(p: Float64Array, grads: Float64Array[], lr: number, b1: number, b2: number, eps: number, wd: number): Float64Array {
  const m = new Float64Array(p.length),
    v = new Float64Array(p.length);
  const out = Float64Array.from(p);
  grads.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      out[i] = out[i]! * (1 - lr * wd);
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
      const bc1 = 1 - b1 ** t,
        bc2 = 1 - b2 ** t;
      out[i] = out[i]! - ((lr / bc1) * m[i]!) / (Math.sqrt(v[i]!) / Math.sqrt(bc2) + eps);
    }
  });
  return out;
}

test('AdamW matches torch.optim.AdamW semantics over several steps', () => {
  const rng = new Random(3);
  const n = 1031;
  const p0 = Float64Array.from({ length: n }, () => rng.normal());
  const grads = Array.from({ length: 5 }, () => Float64Array.from({ length: n }, () => rng.normal() * 0.1));
  const p = Tensor.param(Tensor.from(p0, [n]));
  const opt = new AdamW([p], { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  for (const g of grads) {
    p.zeroGrad();
    p.grad = Tensor.from(g, [n]);
    opt.stepOnce();
  }
  const expected = refAdamW(
    Float64Array.from(Float32Array.from(p0)),
    grads.map((g) => Float64Array.from(Float32Array.from(g))),
    0.01,
    0.9,
    0.95,
    1e-8,
    0.1,
  );
  assertClose(p.toArray(), expected, { rtol: 1e-5, atol: 1e-6 }, 'AdamW params');
  // state round-trip: a fresh optimiser restored from the state continues identically
  const state = opt.getState();
  const q = Tensor.param(p.clone());
  const opt2 = new AdamW([q], { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  opt2.setState(state);
  p.grad!.dispose();
  p.grad = Tensor.from(grads[0]!, [n]);
  q.grad = Tensor.from(grads[0]!, [n]);
  opt.stepOnce();
  opt2.stepOnce();
  assert.deepEqual(p.toArray(), q.toArray());
  opt.dispose();
  opt2.dispose();
  p.dispose();
  q.dispose();
});

test('clipGradNorm scales to the max norm like torch.nn.utils.clip_grad_norm_', () => {
  const a = Tensor.param(Tensor.zeros([2]));
  const b = Tensor.param(Tensor.zeros([1]));
  a.grad = Tensor.from([3, 0], [2]);
  b.grad = Tensor.from([4], [1]);
  assert.equal(gradNorm([a, b]), 5);
  const before = clipGradNorm([a, b], 1);
  assert.equal(before, 5);
  const c = 1 / (5 + 1e-6);
  assertClose([...a.grad.toArray(), ...b.grad.toArray()], [3 * c, 0, 4 * c], { rtol: 1e-6 });
  // below the max: untouched
  const clipped = [...a.grad.toArray(), ...b.grad.toArray()];
  assert.ok(Math.abs(clipGradNorm([a, b], 10) - 1) < 1e-6);
  assert.deepEqual([...a.grad.toArray(), ...b.grad.toArray()], clipped);
  b.grad.data[0] = NaN;
  assert.ok(Number.isNaN(gradNorm([a, b])));
  a.dispose();
  b.dispose();
});

test('schedules follow transformers get_*_schedule_with_warmup', () => {
  const lin = { kind: 'linear' as const, warmupSteps: 10, totalSteps: 110 };
  assert.equal(lrMultiplier(0, lin), 0);
  assert.equal(lrMultiplier(5, lin), 0.5);
  assert.equal(lrMultiplier(10, lin), 1);
  assert.equal(lrMultiplier(60, lin), 0.5);
  assert.equal(lrMultiplier(110, lin), 0);
  const cos = { kind: 'cosine' as const, warmupSteps: 0, totalSteps: 100 };
  assert.equal(lrMultiplier(0, cos), 1);
  assert.ok(Math.abs(lrMultiplier(50, cos) - 0.5) < 1e-12);
  assert.ok(Math.abs(lrMultiplier(100, cos)) < 1e-12);
  assert.equal(lrMultiplier(3, { kind: 'constant_with_warmup', warmupSteps: 4 }), 0.75);
  assert.equal(lrMultiplier(1000, { kind: 'constant' }), 1);
  assert.throws(() => lrMultiplier(1, { kind: 'linear' }), /needs totalSteps/);
});
