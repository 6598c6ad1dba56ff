// The tensor layer: views, the autograd tape (accumulation, detach, noGrad), and deterministic release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy, keep, noGrad, liveTensors } from '../../src/engine/tensor.js';
import { core } from '../../src/engine/native.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import { Random } from '../../src/engine/random.js';

test('views: transpose, permute, slice and reshape read the right elements', () => {
  tidy(() => {
    const x = Tensor.from(
      Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    assert.deepEqual(x.transpose(0, 2).toList(), [
      [
        [0, 12],
        [4, 16],
        [8, 20],
      ],
      [
        [1, 13],
        [5, 17],
        [9, 21],
      ],
      [
        [2, 14],
        [6, 18],
        [10, 22],
      ],
      [
        [3, 15],
        [7, 19],
        [11, 23],
      ],
    ]);
    assert.deepEqual(Array.from(x.permute([1, 0, 2]).toArray().slice(0, 8)), [0, 1, 2, 3, 12, 13, 14, 15]);
    assert.deepEqual(x.slice(2, 1, 3).toList(), [
      [
        [1, 2],
        [5, 6],
        [9, 10],
      ],
      [
        [13, 14],
        [17, 18],
        [21, 22],
      ],
    ]);
    assert.equal(x.transpose(0, 1).isContiguous, false);
    assert.deepEqual(Array.from(x.transpose(1, 2).reshape([2, 12]).toArray().slice(0, 6)), [0, 4, 8, 1, 5, 9]);
    assert.deepEqual(x.reshape([-1, 6]).shape, [4, 6]);
    // splitting the last dim of a column slice is a view (no copy), as torch.view allows
    const s = x.slice(2, 2, 4); // [2,3,2], strides [12,4,1]
    const v = s.reshape([2, 3, 2, 1]);
    assert.equal(v.storage, x.storage);
    assert.deepEqual(v.strides, [12, 4, 1, 1]);
    assert.deepEqual(Array.from(v.toArray()), [2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23]);
    // merging dims that are not adjacent in memory copies
    const m = x.transpose(0, 1).reshape([6, 4]);
    assert.notEqual(m.storage, x.storage);
    assert.deepEqual(Array.from(m.toArray().slice(0, 8)), [0, 1, 2, 3, 12, 13, 14, 15]);
    assert.throws(() => x.reshape([5, 5]), /reshape: tensor\[2, 3, 4\] cannot become \[5, 5\]/);
    assert.throws(() => x.slice(1, 2, 5), /slice\(1, 2, 5\)/);
  });
});

test('autograd: gradients accumulate across backward calls and through shared inputs', () => {
  const a = Tensor.param(Tensor.from([1, 2, 3, 4], [2, 2]));
  const b = Tensor.param(Tensor.from([0.5, -1, 2, 0], [2, 2]));
  tidy(() => {
    // y = a@b + a@b via two paths through the same inputs: grads double
    const y1 = matmul(a, b);
    const y2 = matmul(a, b);
    const g = Tensor.ones([2, 2]);
    y1.backward(g);
    y2.backward(g);
  });
  // d(sum(a@b))/da = ones @ bᵀ : rows [sum(b row0), sum(b row1)] = [-0.5, 2]
  assert.deepEqual(Array.from(a.grad!.toArray()), [-1, 4, -1, 4]);
  // d/db = aᵀ @ ones: [[1+3],[2+4]] per column
  assert.deepEqual(Array.from(b.grad!.toArray()), [8, 8, 12, 12]);
  a.zeroGrad();
  assert.equal(a.grad, null);
  // a slice used twice: gradient lands on the right elements and sums
  tidy(() => {
    const s = a.slice(1, 0, 1); // column 0
    const y = matmul(s.transpose(0, 1), s); // [1,1] = a00² + a10²
    y.backward();
  });
  assert.deepEqual(Array.from(a.grad!.toArray()), [2, 0, 6, 0]);
  a.dispose();
  b.dispose();
});

test('split: views whose gradients land in one buffer, pass after pass', () => {
  const x = Tensor.param(Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]));
  for (let pass = 1; pass <= 2; pass++) {
    tidy(() => {
      const [a, b] = x.split(1, [1, 2]);
      assert.deepEqual(a!.toList(), [[1], [4]]);
      assert.deepEqual(b!.toList(), [
        [2, 3],
        [5, 6],
      ]);
      // y = aᵀ·a + Σ b·w  with w = [[1],[10]]: dy/da = 2a, dy/db = [1, 10] per row
      const y = matmul(a!.transpose(0, 1), a!);
      y.backward();
      matmul(b!, Tensor.from([1, 10], [2, 1])).backward(Tensor.ones([2, 1]));
    });
    assert.deepEqual(
      Array.from(x.grad!.toArray()),
      [2, 1, 10, 8, 1, 10].map((v) => v * pass),
      `pass ${pass}`,
    );
  }
  // only the second part used: the first part's region stays zero
  x.zeroGrad();
  tidy(() => matmul(x.split(1, [1, 2])[1]!, Tensor.from([1, 1], [2, 1])).backward(Tensor.ones([2, 1])));
  assert.deepEqual(Array.from(x.grad!.toArray()), [0, 1, 1, 0, 1, 1]);
  assert.throws(() => x.split(1, [1, 1]), /split\(1, \[1, 1\]\)/);
  x.dispose();
});

test('detach and noGrad record nothing', () => {
  const w = Tensor.param(Tensor.from([1, 2], [1, 2]));
  tidy(() => {
    const x = Tensor.from([3, 4], [2, 1]);
    assert.equal(matmul(w.detach(), x).requiresGrad, false);
    assert.equal(noGrad(() => matmul(w, x)).requiresGrad, false);
    const y = matmul(w, x);
    assert.equal(y.requiresGrad, true);
    assert.equal(y.item(), 11);
    assert.throws(() => matmul(w.detach(), x).backward(), /does not require grad/);
  });
  w.dispose();
});

test('tidy disposes what it made, keeps what it returns; release frees storage at once', () => {
  const before = liveTensors();
  const kept = tidy(() => {
    const a = Tensor.ones([64, 64]);
    const b = matmul(a, a);
    const k = keep(Tensor.zeros([3]));
    return { b, k };
  });
  assert.equal(liveTensors(), before + 2);
  assert.equal(kept.b.toArray()[0], 64);
  kept.b.dispose();
  kept.k.dispose();
  assert.equal(liveTensors(), before);
  // a view keeps the storage alive; the last release detaches it
  const base = Tensor.ones([4, 4]);
  const view = base.transpose(0, 1);
  base.dispose();
  assert.equal(view.toArray()[0], 1);
  const data = view.storage.data;
  view.dispose();
  assert.equal(data.length, 0, 'storage should be detached (freed) after the last reference');
  assert.throws(() => view.toArray(), /disposed/);
  // native kernels refuse a detached buffer instead of touching freed memory
  assert.throws(() => core.fill(data, 0, 16, 1), /too short|disposed/);
});

test('copyStrided writes into a strided destination view', () => {
  tidy(() => {
    const dst = Tensor.zeros([3, 4]);
    const src = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3]);
    dst.slice(1, 1, 4).slice(0, 1, 3).copyFrom(src);
    assert.deepEqual(dst.toList(), [
      [0, 0, 0, 0],
      [0, 1, 2, 3],
      [0, 4, 5, 6],
    ]);
  });
});

test('Random is seeded, reproducible and restorable', () => {
  const r = new Random(42);
  const a = [r.uniform(), r.normal(), r.nextU32()];
  const s = r.getState();
  const next = [r.uniform(), r.normal()];
  const r2 = new Random(42);
  assert.deepEqual([r2.uniform(), r2.normal(), r2.nextU32()], a);
  const r3 = new Random(1);
  r3.setState(s);
  assert.deepEqual([r3.uniform(), r3.normal()], next);
  // mean and variance of normals are about right
  let m = 0,
    v = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    m += x;
    v += x * x;
  }
  m /= n;
  v = v / n - m * m;
  assert.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${m}, var ${v}`);
});
