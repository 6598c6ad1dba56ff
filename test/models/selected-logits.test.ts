// Logits only where a loss reads them (Transformer.logitsAt, nextTokenLogprobsAt, scatterRows): values and the
// gradient of every parameter equal the full computation (LM head over all B·T positions), for a tied GPT-2
// (the embedding gets gradients from both ends) and an untied Llama with grouped-query attention, with
// LoRA adapters, and under autocast('bf16'); scatterRows against a plain placement.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autocast } from '../../src/engine/autocast.js';
import { Tensor, tidy } from '../../src/engine/tensor.js';
import { maskedSum } from '../../src/engine/ops/elementwise.js';
import { scatterRows } from '../../src/engine/ops/norm.js';
import { Random } from '../../src/engine/random.js';
import { gpt2Config, llamaConfig, type CausalLMConfig } from '../../src/models/config.js';
import { lossRows, nextTokenLogprobs, nextTokenLogprobsAt } from '../../src/models/heads.js';
import { Transformer } from '../../src/models/transformer.js';
import { relNormError } from '../helpers/check.js';

const B = 3,
  T = 21;

function batch(V: number, seed: number): { ids: Int32Array; where: Float32Array; weights: Tensor } {
  const rng = new Random(seed);
  const ids = Int32Array.from({ length: B * T }, () => rng.int(V));
  // a completion mask: each row's last part (different lengths), never the last position
  const where = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 3 + 4 * b; t < T - 1 - b; t++) where[b * T + t] = 1;
  const w = Float32Array.from({ length: B * T }, (_, i) => (where[i] ? rng.normal() : 0));
  return { ids, where, weights: Tensor.from(w, [B, T]) };
}

/** Gradients of Σ w·logp over the selected positions, with the LM head over every position or only those. */
function grads(model: Transformer, ids: Int32Array, where: Float32Array, weights: Tensor, selected: boolean): { lp: Float32Array; g: Map<string, Float32Array> } {
  for (const p of model.trainableParameters()) p.zeroGrad();
  const lp = tidy(() => {
    const lp = selected ? nextTokenLogprobsAt(model, model.hidden(ids, B, T), ids, B, T, where).logprobs : nextTokenLogprobs(model.forward(ids, B, T), ids, B, T);
    const loss = maskedSum(lp, weights, 1);
    const total = maskedSum(loss, Tensor.ones([B]), 0);
    total.backward();
    return lp.toArray();
  });
  const g = new Map<string, Float32Array>();
  for (const p of model.trainableParameters()) g.set(p.name ?? '?', p.grad!.toArray());
  return { lp, g };
}

function compare(cfg: CausalLMConfig, what: string, setup?: (m: Transformer) => void, precision: 'fp32' | 'bf16' = 'fp32'): void {
  const model = Transformer.random(cfg, 5);
  setup?.(model);
  const { ids, where, weights } = batch(cfg.vocabSize, 6);
  const full = autocast(precision, () => grads(model, ids, where, weights, false));
  const sel = autocast(precision, () => grads(model, ids, where, weights, true));
  const tol = precision === 'bf16' ? 2e-2 : 2e-5; // bf16: the two runs round different row blocks of the same products
  for (let i = 0; i < B * T; i++) {
    if (where[i]) assert.ok(Math.abs(sel.lp[i]! - full.lp[i]!) <= tol * Math.max(1, Math.abs(full.lp[i]!)), `${what}: logp[${i}] ${sel.lp[i]} vs ${full.lp[i]}`);
    else assert.equal(sel.lp[i], 0, `${what}: logp[${i}] at an unselected position`);
  }
  assert.ok(full.g.size > 0);
  for (const [name, g] of full.g) {
    const err = relNormError(sel.g.get(name)!, g);
    assert.ok(err <= tol, `${what}: gradient of ${name}: relative error ${err}`);
  }
  weights.dispose();
  model.dispose();
}

test('nextTokenLogprobsAt: values and every gradient equal the full LM head (GPT-2, tied embeddings)', () => {
  compare(gpt2Config({ vocabSize: 97, hiddenSize: 32, numLayers: 2, numHeads: 4 }), 'gpt2');
});

test('nextTokenLogprobsAt: values and every gradient equal the full LM head (Llama, untied, GQA)', () => {
  compare(llamaConfig({ vocabSize: 89, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 48 }), 'llama');
});

test('nextTokenLogprobsAt with LoRA adapters and under autocast(bf16)', () => {
  const cfg = llamaConfig({ vocabSize: 89, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 48 });
  const lora = (m: Transformer): void => {
    m.addLora({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'] }, 3);
    const rng = new Random(9);
    for (const a of m.adapters.values()) a.B.data.forEach((_, i, d) => (d[i] = rng.normal() * 0.1)); // B ≠ 0: gradients reach A
  };
  compare(cfg, 'llama+lora', lora);
  compare(gpt2Config({ vocabSize: 97, hiddenSize: 32, numLayers: 2, numHeads: 4 }), 'gpt2 bf16', undefined, 'bf16');
});

test('lossRows and scatterRows: positions, placement, gradient, errors', () => {
  assert.deepEqual(Array.from(lossRows([0, 1, 1, 1, 1, 0, 1, 0], 2, 4)), [1, 2, 4, 6]); // t = T − 1 never selected
  const x = Tensor.param(Tensor.from([1, 2, 3, 4, 5, 6], [3, 2]));
  const rows = Int32Array.from([4, 0, 2]);
  const y = scatterRows(x, rows, 5);
  assert.deepEqual(Array.from(y.toArray()), [3, 4, 0, 0, 5, 6, 0, 0, 1, 2]);
  y.backward(Tensor.from([10, 11, 12, 13, 14, 15, 16, 17, 18, 19], [5, 2]));
  assert.deepEqual(Array.from(x.grad!.toArray()), [18, 19, 10, 11, 14, 15]);
  const v = scatterRows(Tensor.from([7, 8], [2]), Int32Array.from([1, 3]), 4);
  assert.deepEqual(Array.from(v.toArray()), [0, 7, 0, 8]);
  assert.throws(() => scatterRows(x, Int32Array.from([1, 1, 2]), 5), /row 1 appears twice/);
  assert.throws(() => scatterRows(x, Int32Array.from([1, 5, 2]), 5), /row 5 is outside \[0, 5\)/);
  assert.throws(() => scatterRows(x, Int32Array.from([1, 2]), 5), /2 rows for x \[3, 2\]/);
});
