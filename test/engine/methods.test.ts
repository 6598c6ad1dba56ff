// Tensor methods are the free functions read left to right: the same values and the same gradients.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/engine/ops/methods.js';
import { logsigmoid, mean, mul, neg, scale, sub } from '../../src/engine/ops/elementwise.js';
import { Tensor, tidy } from '../../src/engine/tensor.js';

test('h.sub(r).scale(β).logsigmoid().neg().mean() equals the nested free functions, values and gradients', () => {
  tidy(() => {
    const data = [0.3, -1.2, 2.5, 0.0],
      ref = [0.1, 0.4, -0.7, 1.5],
      w = [1, 0.5, 2, 0.25];
    const a = Tensor.param(Tensor.from(data), 'a'),
      b = Tensor.param(Tensor.from(data), 'b');
    const m = a.sub(Tensor.from(ref)).scale(0.7).logsigmoid().neg().mul(Tensor.from(w)).mean();
    const f = mean(mul(neg(logsigmoid(scale(sub(b, Tensor.from(ref)), 0.7))), Tensor.from(w)));
    assert.equal(m.item(), f.item());
    m.backward();
    f.backward();
    assert.deepEqual(a.grad!.toArray(), b.grad!.toArray());
    assert.deepEqual(a.square().sum().toArray(), Float32Array.from([data.reduce((s, x) => s + Math.fround(x * x), 0)]));
  });
});
