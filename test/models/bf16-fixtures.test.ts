// Mixed precision on the transformers fixtures: the DPO step of test/models/hf-fixtures.test.ts run under
// autocast('bf16') (every product of the forward and backward pass with bf16 inputs and fp32 accumulation; norms,
// softmax, log-softmax, attention and the loss in fp32) against transformers' fp32 logits, log-probs, loss and the
// gradient of every parameter.
//
// The tolerance, from the rounding: each product rounds both inputs to bf16, a relative error of up to u_b = 2^-8
// per value and, for random-sign errors, about u_b/√3 ≈ 0.23% in norm per operand, so ≈ 0.33% per product
// (two operands). An output is made by a chain of such products: a gradient of a first-layer weight passes
// through the 2-layer forward (≈ 4 products in series per layer plus the LM head) and back again, ≈ 20 products;
// independent errors add in quadrature, √20·0.33% ≈ 1.5%. Gradients must be within 4% (relative norm error) of
// transformers' fp32 gradients, logits within 1%, and the loss within 1e-3 — and, so the test cannot pass with
// bf16 silently off, the bf16 errors must exceed the fp32 run's by a wide margin where bf16 runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { autocast, bf16Supported } from '../../src/engine/autocast.js';
import { Tensor, noGrad, tidy } from '../../src/engine/tensor.js';
import { maskedSum } from '../../src/engine/ops/elementwise.js';
import { packageRoot } from '../../src/engine/native.js';
import { readSafetensors, toFloat32, toInt32 } from '../../src/io/safetensors.js';
import { loadPretrained } from '../../src/io/pretrained.js';
import { nextTokenLogprobs } from '../../src/models/heads.js';
import type { Transformer } from '../../src/models/transformer.js';
import { dpoLoss } from '../../src/train/losses.js';
import { relNormError } from '../helpers/check.js';

const FIX = join(packageRoot(), 'test', 'fixtures', 'hf-fixtures');

function expected(name: string): Map<string, Float32Array | Int32Array> & { shapes: Map<string, number[]> } {
  const { tensors } = readSafetensors(join(FIX, name, 'expected.safetensors'));
  const out = new Map<string, Float32Array | Int32Array>() as Map<string, Float32Array | Int32Array> & { shapes: Map<string, number[]> };
  out.shapes = new Map();
  for (const [k, e] of tensors) {
    out.set(k, e.dtype === 'I64' || e.dtype === 'I32' ? toInt32(e, k) : toFloat32(e, k));
    out.shapes.set(k, e.shape);
  }
  return out;
}

interface Errors {
  logits: number;
  loss: number;
  worstGrad: number;
  worstName: string;
}

/** The fixture's DPO step in `precision`; errors against transformers' fp32 numbers. */
function dpoStep(name: string, precision: 'fp32' | 'bf16'): Errors {
  const exp = expected(name);
  const [B, T] = exp.shapes.get('input_ids') as [number, number];
  const ids = exp.get('input_ids') as Int32Array,
    mask = exp.get('attention_mask') as Int32Array;
  const labels = exp.get('labels_mask') as Float32Array;
  const policy = loadPretrained(join(FIX, name)).model;
  const ref = loadPretrained(join(FIX, name + '-ref')).model;
  const V = policy.config.vocabSize;
  const m = new Float32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) m[b * T + t] = labels[b * T + t + 1]!;
  const seq = (model: Transformer): { seq: Tensor; logits: Tensor } => {
    const logits = model.forward(ids, B, T, { attentionMask: mask });
    return { seq: maskedSum(nextTokenLogprobs(logits, ids, B, T), Tensor.from(m, [B, T]), 1), logits };
  };
  const out = tidy(() => {
    const { loss, logits } = autocast(precision, () => {
      const pol = seq(policy);
      const refSeq = noGrad(() => seq(ref).seq);
      const col = (t: Tensor, j: number): Tensor =>
        t
          .reshape([B / 2, 2])
          .slice(1, j, j + 1)
          .reshape([B / 2]);
      return { loss: dpoLoss(col(pol.seq, 0), col(pol.seq, 1), col(refSeq, 0), col(refSeq, 1), { beta: 0.1 }).loss, logits: pol.logits };
    });
    loss.backward(); // outside the autocast block, as in PyTorch: the products keep their recorded precision
    const got = logits.toArray(),
      want = exp.get('logits') as Float32Array;
    const g: number[] = [],
      w: number[] = [];
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        if (mask[b * T + t])
          for (let v = 0; v < V; v++) {
            g.push(got[(b * T + t) * V + v]!);
            w.push(want[(b * T + t) * V + v]!);
          }
    return { logits: relNormError(g, w), loss: Math.abs(loss.item() - (exp.get('dpo_loss') as Float32Array)[0]!) };
  });
  let worstGrad = 0,
    worstName = '';
  for (const [pname, p] of policy.params) {
    const want = exp.get('grad.' + pname) as Float32Array | undefined;
    assert.ok(want && p.grad, `gradient of ${pname}`);
    const err = relNormError(p.grad.toArray(), want);
    if (err > worstGrad) {
      worstGrad = err;
      worstName = pname;
    }
  }
  policy.dispose();
  ref.dispose();
  return { ...out, worstGrad, worstName };
}

for (const name of ['tiny-gpt2', 'tiny-llama']) {
  test(`${name}: the DPO step under autocast('bf16') is within the bf16 tolerance of transformers' fp32`, () => {
    const bf = dpoStep(name, 'bf16');
    const fp = dpoStep(name, 'fp32');
    console.log(
      `${name}: bf16 logits ${bf.logits.toExponential(2)} loss ${bf.loss.toExponential(2)} grad ${bf.worstGrad.toExponential(2)} (${bf.worstName}); fp32 logits ${fp.logits.toExponential(2)} grad ${fp.worstGrad.toExponential(2)}`,
    );
    assert.ok(bf.logits <= 1e-2, `bf16 logits relative error ${bf.logits}`);
    assert.ok(bf.loss <= 1e-3, `bf16 DPO loss error ${bf.loss}`);
    assert.ok(bf.worstGrad <= 4e-2, `bf16 gradient of ${bf.worstName}: relative error ${bf.worstGrad}`);
    if (bf16Supported()) {
      assert.ok(bf.logits > 10 * fp.logits, `bf16 does not seem to be in effect: logits error ${bf.logits} vs fp32 ${fp.logits}`);
      assert.ok(bf.worstGrad > 10 * fp.worstGrad, `bf16 does not seem to be in effect: gradient error ${bf.worstGrad} vs fp32 ${fp.worstGrad}`);
    }
  });
}
