// The backward pass's bookkeeping: a gradient passed through unchanged to two inputs (add) stays each input's
// own when one of them gains more terms (it was shared, so b.grad came out as a.grad); gradients are released as
// soon as no pending node needs them (a deep chain holds a few at a time, not one per node); a forward without
// gradients holds one layer's activations; selectiveLogSoftmax's reuseLogits writes the gradient into the logits'
// memory (same gradients; the logits disposed after), and not when another view holds that memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { add, mul, scale, sum, tanh } from '../../src/engine/ops/elementwise.js';
import { selectiveLogSoftmax } from '../../src/engine/ops/norm.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import { Random } from '../../src/engine/random.js';
import { Tensor, memoryStats, noGrad, resetPeakMemory, tidy } from '../../src/engine/tensor.js';
import { gpt2Config } from '../../src/models/config.js';
import { Transformer } from '../../src/models/transformer.js';

test('a gradient passed through to two inputs is not shared between them', () => {
  const a = Tensor.param(Tensor.from(new Float32Array([1, 2, 3]), [3]));
  const b = Tensor.param(Tensor.from(new Float32Array([4, 5, 6]), [3]));
  tidy(() => {
    const z = add(a, b);
    add(sum(mul(z, z)), sum(scale(a, 3))).backward();
  });
  assert.deepEqual([...a.grad!.toArray()], [13, 17, 21]); // 2z + 3
  assert.deepEqual([...b.grad!.toArray()], [10, 14, 18]); // 2z only
});

test('backward releases each gradient once no pending node needs it', () => {
  const rng = new Random(1);
  const n = 1 << 18; // 1 MiB per tensor
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * 0.1;
  const x = Tensor.param(Tensor.from(d, [512, 512]));
  const w = Tensor.param(
    Tensor.from(
      d.map((v) => v * 0.05),
      [512, 512],
    ),
  );
  const depth = 40;
  tidy(() => {
    let h = x;
    for (let i = 0; i < depth; i++) h = tanh(add(matmul(h, w), h)); // residual: add passes its gradient to two inputs
    const loss = sum(h);
    const before = memoryStats().liveBytes;
    resetPeakMemory();
    loss.backward();
    const grown = memoryStats().peakLiveBytes - before;
    // each step makes a few 1 MiB gradients; holding them all would be > 3 x depth MiB
    assert.ok(grown < 12 * 4 * n, `backward grew live memory by ${(grown / 2 ** 20).toFixed(1)} MiB over ${depth} layers`);
  });
  assert.ok(x.grad && w.grad);
  // the same gradients as without the releases: check one entry against a finite difference
  const f = (dx: number) =>
    noGrad(() =>
      tidy(() => {
        const x2 = Tensor.from(d.slice(), [512, 512]);
        x2.data[7] += dx;
        let h = x2;
        for (let i = 0; i < depth; i++) h = tanh(add(matmul(h, w), h));
        return sum(h).item();
      }),
    );
  const fd = (f(1e-2) - f(-1e-2)) / 2e-2;
  assert.ok(Math.abs(fd - x.grad!.toArray()[7]!) < 2e-2 * Math.max(1, Math.abs(fd)), `dx[7] ${x.grad!.toArray()[7]} vs finite difference ${fd}`);
});

test('a forward without gradients holds one layer of activations at a time', () => {
  const cfg = gpt2Config({ vocabSize: 64, hiddenSize: 128, numLayers: 12, numHeads: 4, maxPositions: 256 });
  const model = Transformer.random(cfg, 3);
  const B = 4,
    T = 256;
  const ids = Int32Array.from({ length: B * T }, (_, i) => i % 64);
  const peakOf = (grad: boolean) =>
    tidy(() => {
      const before = memoryStats().liveBytes;
      resetPeakMemory();
      const run = () => model.hidden(ids, B, T).dispose();
      if (grad) run();
      else noGrad(run);
      return memoryStats().peakLiveBytes - before;
    });
  const withGrad = peakOf(true),
    without = peakOf(false);
  assert.ok(without * 4 < withGrad, `no-grad forward peak ${without} bytes vs ${withGrad} with the graph`);
  model.dispose();
});

test('selectiveLogSoftmax reuseLogits: the same gradients in the logits memory, or a fresh buffer when it is shared', () => {
  const rng = new Random(8);
  const [R, V, C] = [6, 300, 16];
  const h = Tensor.param(
    Tensor.from(
      Float32Array.from({ length: R * C }, () => rng.normal()),
      [R, C],
    ),
  );
  const w = Tensor.from(
    Float32Array.from({ length: C * V }, () => rng.normal() * 0.3),
    [C, V],
  );
  const targets = Int32Array.from({ length: R }, (_, i) => (i * 37) % V);
  const gradOf = (mode: 'plain' | 'reuse' | 'reuse-with-view') =>
    tidy(() => {
      h.grad = null;
      const logits = matmul(h, w);
      const view = mode === 'reuse-with-view' ? logits.slice(0, 0, 2) : null;
      const lp = selectiveLogSoftmax(logits, targets, { reuseLogits: mode !== 'plain' });
      sum(
        mul(
          lp,
          Tensor.from(
            Float32Array.from({ length: R }, (_, i) => i + 1),
            [R],
          ),
        ),
      ).backward();
      if (mode === 'reuse') assert.throws(() => logits.toArray(), /disposed/, 'the logits are gone after backward');
      else assert.equal(logits.toArray().length, R * V, 'the logits are intact');
      if (view) assert.equal(view.toArray()[0], logits.toArray()[0]);
      return h.grad!.toArray();
    });
  const plain = gradOf('plain');
  assert.deepEqual(gradOf('reuse'), plain);
  assert.deepEqual(gradOf('reuse-with-view'), plain);
});
