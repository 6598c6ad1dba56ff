// Memory stays flat over a long run: 1,000 training steps of a small transformer, tensors released by scopes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, liveTensors, tidy } from '../../src/engine/tensor.js';
import { mean, neg } from '../../src/engine/ops/elementwise.js';
import { AdamW } from '../../src/engine/optim.js';
import { Random } from '../../src/engine/random.js';
import { gpt2Config } from '../../src/models/config.js';
import { nextTokenLogprobs } from '../../src/models/heads.js';
import { Transformer } from '../../src/models/transformer.js';

test('1,000 training steps: live tensors constant, RSS flat', () => {
  const cfg = gpt2Config({ vocabSize: 97, hiddenSize: 32, numLayers: 2, numHeads: 4, maxPositions: 32 });
  const model = Transformer.random(cfg, 0);
  const opt = new AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0 });
  const rng = new Random(1);
  const B = 4,
    T = 24;
  // a learnable corpus: each row counts upward modulo the vocabulary from a random start
  const batch = (): Int32Array => {
    const ids = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      const s = rng.int(cfg.vocabSize);
      for (let t = 0; t < T; t++) ids[b * T + t] = (s + t) % cfg.vocabSize;
    }
    return ids;
  };
  const step = (): number =>
    tidy(() => {
      opt.zeroGrad();
      const ids = batch();
      const lp = nextTokenLogprobs(model.forward(ids, B, T), ids, B, T).slice(1, 0, T - 1);
      const loss = neg(mean(lp));
      loss.backward();
      opt.stepOnce();
      return loss.item();
    });
  let first = 0,
    last = 0,
    live = 0,
    rssAt200 = 0;
  for (let i = 0; i < 1000; i++) {
    const l = step();
    if (i === 0) first = l;
    if (i === 199) {
      live = liveTensors();
      globalThis.gc?.();
      rssAt200 = process.memoryUsage().rss;
    }
    last = l;
  }
  globalThis.gc?.();
  const rssEnd = process.memoryUsage().rss;
  assert.equal(liveTensors(), live, 'tensors leaked between step 200 and step 1000');
  const growthMB = (rssEnd - rssAt200) / 2 ** 20;
  assert.ok(growthMB < 16, `RSS grew ${growthMB.toFixed(1)} MB from step 200 to step 1000`);
  assert.ok(last < first * 0.5, `the model should learn the counting task: loss ${first} → ${last}`);
  opt.dispose();
  model.dispose();
  void Tensor;
});
